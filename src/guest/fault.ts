/**
 * The guest kernel's page-fault handler (Linux's handle_mm_fault, much reduced): find the VMA,
 * check the access against it, then demand-page (allocate, zero, map; a 2 MiB page where the VMA
 * allows it; a file mapping's page from the page cache, file-fault.ts), or break copy-on-write
 * (reuse the page when this is its only mapping, else copy). A fault the guest tables do not
 * explain (a stale TLB entry) is spurious: nothing to do.
 */

import { isFetchKind, isWriteKind } from "../hw/access.js";
import { type Gva, tableIndex } from "../hw/addr.js";
import {
  isLarge,
  isNoExec,
  isPresent,
  isWritable,
  leafFrame,
  PFEC_RSVD,
  PTE_A,
  PTE_D,
  PTE_P,
  PTE_PS,
  PTE_RW,
  PTE_US,
  pteFrame,
  pteHi,
  pteLo,
} from "../hw/pte.js";
import { XLATE_EMULATED } from "../hw/vcpu-interfaces.js";
import {
  C_GUEST_COW_FAULTS,
  C_GUEST_DEMAND_FAULTS,
  C_GUEST_OOM,
  C_GUEST_PAGE_FAULTS,
  C_GUEST_SEGV,
  C_GUEST_SPURIOUS_FAULTS,
} from "../metrics/counters.js";
import { fileFault } from "./file-fault.js";
import type { Kernel } from "./kernel.js";
import { entryIndex } from "./pagetable.js";
import { findVma, isFileMapping, type Process, VM_EXEC, VM_WRITE, type Vma } from "./process.js";
import { GuestOutOfMemory, splitHuge } from "./unmap.js";

/** The faulting access can be retried. */
export const FAULT_FIXED = 0;
/** The faulting process was killed (SIGSEGV, or chosen by the OOM killer). */
export const FAULT_KILLED = 1;

const HUGE = 2 ** 21;

/** Faults in a row on one access before the kernel is declared stuck (a simulator bug). */
const MAX_FAULT_RETRIES = 16;

/**
 * One user access by `proc` (the running process), as the CPU executes it: on a #PF the kernel
 * handles the fault and the instruction restarts. Returns the frame reached (or XLATE_EMULATED),
 * or -1 when the process was killed. The value read is left in the vCPU's readValue.
 */
export function userAccess(
  k: Kernel,
  proc: Process,
  gva: Gva,
  kind: number,
  value: number,
): number {
  return finishUserAccess(k, proc, gva, kind, value, k.cpu.access(gva, kind, value));
}

/**
 * userAccess() after its first try, whose answer was `first` (the vCPU's batched path makes the
 * first try of each access itself): the kernel handles each #PF and the access is tried again.
 */
export function finishUserAccess(
  k: Kernel,
  proc: Process,
  gva: Gva,
  kind: number,
  value: number,
  first: number,
): number {
  const cpu = k.cpu;
  let frame = first;
  for (let tries = 1; ; tries++) {
    if (frame >= 0 || frame === XLATE_EMULATED) return frame;
    if (handlePageFault(k, proc, gva, kind, cpu.faultCode) === FAULT_KILLED) return -1;
    if (tries === MAX_FAULT_RETRIES) break;
    frame = cpu.access(gva, kind, value);
  }
  throw new Error(`guest kernel: access to ${gva.toString(16)} by pid ${proc.pid} keeps faulting`);
}

export function handlePageFault(k: Kernel, proc: Process, gva: Gva, kind: number, pfec: number) {
  k.counters[C_GUEST_PAGE_FAULTS]++;
  proc.faults++;
  if ((pfec & PFEC_RSVD) !== 0) {
    throw new Error(`guest kernel: reserved-bit fault at ${gva.toString(16)} (corrupt page table)`);
  }
  const vma = findVma(proc, gva);
  const write = isWriteKind(kind);
  if (
    vma === null ||
    (write && (vma.prot & VM_WRITE) === 0) ||
    (isFetchKind(kind) && (vma.prot & VM_EXEC) === 0)
  ) {
    k.counters[C_GUEST_SEGV]++;
    k.cpu.events?.push({ kind: "guest-fault", gva, code: pfec, gfn: -1, note: "segv" });
    k.exit(proc, "segv");
    return FAULT_KILLED;
  }
  try {
    const how = fixFault(k, proc, vma, gva, write);
    // The gfn it mapped is read by the step API (a read here would go through the CPU).
    k.cpu.events?.push({ kind: "guest-fault", gva, code: pfec, index: proc.l4Gfn, note: how });
    return FAULT_FIXED;
  } catch (e) {
    if (!(e instanceof GuestOutOfMemory)) throw e;
    return oomKill(k, proc);
  }
}

/**
 * Linux's OOM killer, reduced: kill the live process with the largest resident set. Reached
 * only when direct reclaim found nothing to drop (FrameAllocator.reclaim: the page cache's
 * unmapped pages are gone).
 */
function oomKill(k: Kernel, faulting: Process): number {
  let victim = faulting;
  for (const p of k.processes) if (p.alive && p.rss > victim.rss) victim = p;
  k.counters[C_GUEST_OOM]++;
  k.exit(victim, "oom");
  return victim === faulting ? FAULT_KILLED : FAULT_FIXED;
}

/** How the kernel fixed a fault, for a traced step. */
type FaultFix = "huge" | "file" | "demand" | "cow" | "spurious";

function fixFault(k: Kernel, proc: Process, vma: Vma, gva: Gva, write: boolean): FaultFix {
  const l4 = proc.l4Gfn;
  // A file mapping's pages are the page cache's 4 KiB frames: no anonymous huge page there
  // (Linux's do_huge_pmd_anonymous_page is for anonymous areas only).
  const file = k.usePageCache && isFileMapping(vma);
  if (vma.huge && !file && k.ops.largePages && hugeFault(k, proc, vma, gva, write)) return "huge";
  let l1 = k.pt.tableFor(l4, gva, 1, true);
  if (l1 === -2) {
    // A 2 MiB leaf maps gva: a write to it while read-only is copy-on-write.
    const l2 = k.pt.tableFor(l4, gva, 2, false);
    splitHuge(k, proc, l2, tableIndex(gva, 2), Math.floor(gva / HUGE) * HUGE);
    l1 = k.pt.tableFor(l4, gva, 1, false);
  }
  if (l1 < 0) throw new GuestOutOfMemory();
  const idx = entryIndex(gva, 1);
  k.pt.read(l1, idx);
  const lo = k.pt.lo;
  const hi = k.pt.hi;
  if (!isPresent(lo)) {
    if (file) fileFault(k, proc, vma, gva, l1, idx, write);
    else demandPage(k, proc, vma, gva, l1, idx, write);
    k.counters[C_GUEST_DEMAND_FAULTS]++;
    return file ? "file" : "demand";
  }
  if (write && !isWritable(lo)) {
    copyOnWrite(k, vma, l1, idx, gva, lo, hi);
    return "cow";
  }
  k.counters[C_GUEST_SPURIOUS_FAULTS]++;
  return "spurious";
}

/** Flags of a new anonymous leaf: x86 vm_page_prot includes A; a write fault maps it dirty. */
function anonFlags(vma: Vma, write: boolean): number {
  let flags = PTE_P | PTE_US | PTE_A;
  if ((vma.prot & VM_WRITE) !== 0) flags |= PTE_RW;
  if (write) flags |= PTE_D;
  return flags;
}

function demandPage(
  k: Kernel,
  proc: Process,
  vma: Vma,
  gva: Gva,
  l1: number,
  idx: number,
  write: boolean,
) {
  const gfn = k.frames.alloc();
  if (gfn < 0) throw new GuestOutOfMemory();
  k.fillFrame(gfn, vma, gva);
  k.frames.refcount[gfn] = 1;
  const nx = (vma.prot & VM_EXEC) === 0;
  k.pt.set(l1, idx, pteLo(gfn, anonFlags(vma, write)), pteHi(gfn, nx), false);
  proc.rss++;
  vma.anon = true;
}

function copyOnWrite(
  k: Kernel,
  vma: Vma,
  l1: number,
  idx: number,
  gva: Gva,
  lo: number,
  hi: number,
) {
  k.counters[C_GUEST_COW_FAULTS]++;
  const old = pteFrame(lo, hi);
  const nx = isNoExec(hi);
  if (k.frames.refcount[old] === 1) {
    // The only mapping left: make it writable in place (wp_page_reuse); raising permissions
    // needs no TLB flush on x86, a stale entry just faults once more. A page-cache frame never
    // gets here: the cache's own reference keeps its count above 1, so it is copied.
    k.pt.set(l1, idx, (lo | PTE_RW | PTE_D | PTE_A) >>> 0, hi, true);
    return;
  }
  const gfn = k.frames.alloc();
  if (gfn < 0) throw new GuestOutOfMemory();
  k.copyFrame(gfn, old);
  k.frames.refcount[gfn] = 1;
  vma.anon = true;
  const flags = (lo & 0xfff) | PTE_RW | PTE_D | PTE_A;
  k.pt.set(l1, idx, pteLo(gfn, flags), pteHi(gfn, nx), true);
  k.ops.flushTlbOne(gva);
  k.putFrame(old);
}

/**
 * Try to handle the fault with a 2 MiB page: a fresh huge page where an aligned 2 MiB range of
 * the VMA is unmapped, or copy-on-write of a huge page that is its only mapping. Returns false
 * to fall back to 4 KiB pages.
 */
function hugeFault(k: Kernel, proc: Process, vma: Vma, gva: Gva, write: boolean): boolean {
  const start = Math.floor(gva / HUGE) * HUGE;
  if (start < vma.start || start + HUGE > vma.end) return false;
  const l2 = k.pt.tableFor(proc.l4Gfn, gva, 2, true);
  if (l2 < 0) throw new GuestOutOfMemory();
  const idx = tableIndex(gva, 2);
  k.pt.read(l2, idx);
  const lo = k.pt.lo;
  const hi = k.pt.hi;
  if (!isPresent(lo)) {
    const gfn = k.frames.alloc2M();
    if (gfn < 0) return false;
    for (let i = 0; i < 512; i++) {
      k.fillFrame(gfn + i, vma, start + i * 4096);
      k.frames.refcount[gfn + i] = 1;
    }
    const nx = (vma.prot & VM_EXEC) === 0;
    k.pt.set(l2, idx, pteLo(gfn, anonFlags(vma, write) | PTE_PS), pteHi(gfn, nx), false);
    proc.rss += 512;
    vma.anon = true;
    k.counters[C_GUEST_DEMAND_FAULTS]++;
    return true;
  }
  if (!isLarge(lo)) return false;
  if (!write || isWritable(lo)) {
    k.counters[C_GUEST_SPURIOUS_FAULTS]++;
    return true;
  }
  const base = leafFrame(lo, hi, 2);
  for (let i = 0; i < 512; i++) if (k.frames.refcount[base + i] !== 1) return false;
  k.counters[C_GUEST_COW_FAULTS]++;
  k.pt.set(l2, idx, (lo | PTE_RW | PTE_D | PTE_A) >>> 0, hi, true);
  return true;
}
