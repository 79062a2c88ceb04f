/**
 * Taking mappings away: munmap, mprotect and the teardown of a whole address space (exit and
 * exec). As Linux does (unmap_vmas, then free_pgtables): leaf entries are cleared one by one
 * through PagingOps, the frames are put, then page tables left empty are freed and their parent
 * entries cleared, then the TLB range is flushed.
 */

import { type Gfn, type Gva, LEVEL_SPAN } from "../hw/addr.js";
import {
  isLarge,
  isLeaf,
  isNoExec,
  isPresent,
  leafFrame,
  PTE_HI_NX,
  PTE_PS,
  PTE_RW,
  pteFrame,
  pteHi,
  pteLo,
} from "../hw/pte.js";
import type { Kernel } from "./kernel.js";
import { TABLE_FLAGS } from "./pagetable.js";
import { type Process, VM_EXEC, VM_WRITE, type Vma } from "./process.js";

const ZAP = 0;
const PROTECT = 1;

/** What a range walk did: pages cleared or changed (for the TLB flush and the RSS). */
interface RangeWalk {
  mode: number;
  /** PROTECT: whether leaves keep write permission, and whether they become executable. */
  keepWrite: boolean;
  exec: boolean;
  pages: number;
  proc: Process | null;
}

/**
 * Visit the present leaves of [start, end) under the table `table` of `level` (covering the
 * addresses from `base`), clearing (ZAP) or re-protecting (PROTECT) them. A 2 MiB leaf that the
 * range covers only in part is split first.
 */
function walkRange(
  k: Kernel,
  table: Gfn,
  level: number,
  base: Gva,
  start: Gva,
  end: Gva,
  w: RangeWalk,
) {
  const span = LEVEL_SPAN[level];
  const first = Math.max(0, Math.floor((start - base) / span));
  const last = Math.min(511, Math.floor((end - 1 - base) / span));
  for (let idx = first; idx <= last; idx++) {
    const entryStart = base + idx * span;
    k.pt.read(table, idx);
    let lo = k.pt.lo;
    let hi = k.pt.hi;
    if (!isPresent(lo)) continue;
    const leaf = isLeaf(lo, level);
    if (leaf && level === 2 && (start > entryStart || end < entryStart + span)) {
      splitHuge(k, w.proc, table, idx, entryStart);
      k.pt.read(table, idx);
      lo = k.pt.lo;
      hi = k.pt.hi;
      walkRange(k, pteFrame(lo, hi), 1, entryStart, start, end, w);
      continue;
    }
    if (!leaf) {
      walkRange(k, pteFrame(lo, hi), level - 1, entryStart, start, end, w);
      continue;
    }
    const pages = level === 1 ? 1 : 512;
    if (w.mode === ZAP) {
      k.pt.set(table, idx, 0, 0, true);
      const frame = leafFrame(lo, hi, level);
      for (let i = 0; i < pages; i++) k.putFrame(frame + i);
      if (w.proc) w.proc.rss -= pages;
      w.pages += pages;
    } else {
      let newLo = lo;
      if (!w.keepWrite) newLo &= ~PTE_RW;
      const newHi = w.exec ? hi & ~PTE_HI_NX : hi | PTE_HI_NX;
      if (newLo >>> 0 !== lo || newHi >>> 0 !== hi) {
        k.pt.set(table, idx, newLo >>> 0, newHi >>> 0, true);
        w.pages += pages;
      }
    }
  }
}

/**
 * Free the page tables under `table` that have no present entry left in [start, end), clearing
 * the entries that pointed at them (pmd_clear and friends).
 */
function freeEmptyTables(k: Kernel, table: Gfn, level: number, base: Gva, start: Gva, end: Gva) {
  const span = LEVEL_SPAN[level];
  const first = Math.max(0, Math.floor((start - base) / span));
  const last = Math.min(511, Math.floor((end - 1 - base) / span));
  for (let idx = first; idx <= last; idx++) {
    k.pt.read(table, idx);
    const lo = k.pt.lo;
    if (!isPresent(lo) || (level === 2 && isLarge(lo))) continue;
    const child = pteFrame(lo, k.pt.hi);
    const childBase = base + idx * span;
    if (level > 2) freeEmptyTables(k, child, level - 1, childBase, start, end);
    if (k.pt.used[child] === 0) {
      k.pt.set(table, idx, 0, 0, true);
      k.pt.freeTable(child);
    }
  }
}

/** Replace a 2 MiB leaf by a page table of 512 4 KiB entries with the same frames and bits. */
export function splitHuge(k: Kernel, proc: Process | null, l2: Gfn, idx: number, gva: Gva): void {
  k.pt.read(l2, idx);
  const lo = k.pt.lo;
  const hi = k.pt.hi;
  const l1 = k.pt.allocTable(1);
  if (l1 < 0) throw new GuestOutOfMemory();
  const base = leafFrame(lo, hi, 2);
  const flags = lo & 0xfff & ~PTE_PS;
  const nx = isNoExec(hi);
  for (let i = 0; i < 512; i++) k.pt.set(l1, i, pteLo(base + i, flags), pteHi(base + i, nx), false);
  k.pt.set(l2, idx, pteLo(l1, TABLE_FLAGS), pteHi(l1, false), true);
  if (proc) k.flushRange(proc, gva, gva + 2 ** 21, 512);
}

/** Thrown where the kernel needs a frame and none is left; the caller runs the OOM killer. */
export class GuestOutOfMemory extends Error {
  constructor() {
    super("guest out of memory");
  }
}

/** Split the VMAs of `proc` so that `start` and `end` are VMA boundaries. */
function splitVmasAt(proc: Process, start: Gva, end: Gva): void {
  const out: Vma[] = [];
  for (const vma of proc.vmas) {
    const cuts = [vma.start];
    if (start > vma.start && start < vma.end) cuts.push(start);
    if (end > vma.start && end < vma.end) cuts.push(end);
    cuts.push(vma.end);
    for (let i = 0; i + 1 < cuts.length; i++) {
      // A piece keeps reading the image where it did: its first page is further in.
      const imageBase = vma.imageBase + (cuts[i] - vma.start) / 4096;
      out.push({ ...vma, start: cuts[i], end: cuts[i + 1], imageBase });
    }
  }
  proc.vmas = out;
}

function zapAndFree(k: Kernel, l4: Gfn, start: Gva, end: Gva, proc: Process | null): number {
  const w: RangeWalk = { mode: ZAP, keepWrite: false, exec: false, pages: 0, proc };
  k.ops.enterLazy();
  walkRange(k, l4, 4, 0, start, end, w);
  freeEmptyTables(k, l4, 4, 0, start, end);
  k.ops.leaveLazy();
  return w.pages;
}

/** munmap: remove the VMAs in [start, end), their pages and their empty page tables. */
export function unmapRange(k: Kernel, proc: Process, start: Gva, end: Gva): void {
  splitVmasAt(proc, start, end);
  proc.vmas = proc.vmas.filter((v) => v.end <= start || v.start >= end);
  const pages = zapAndFree(k, proc.l4Gfn, start, end, proc);
  k.flushRange(proc, start, end, pages);
}

/** mprotect: new permissions for the VMAs in [start, end) and the pages mapped there. */
export function protectRange(k: Kernel, proc: Process, start: Gva, end: Gva, prot: number): void {
  splitVmasAt(proc, start, end);
  for (const vma of proc.vmas) if (vma.start >= start && vma.end <= end) vma.prot = prot;
  // Write permission is only taken away here; it comes back through a write fault (which
  // reuses or copies the page), as Linux does for private anonymous memory.
  const w: RangeWalk = {
    mode: PROTECT,
    keepWrite: (prot & VM_WRITE) !== 0,
    exec: (prot & VM_EXEC) !== 0,
    pages: 0,
    proc,
  };
  k.ops.enterLazy();
  for (const vma of proc.vmas) {
    if (vma.start >= start && vma.end <= end) walkRange(k, proc.l4Gfn, 4, 0, vma.start, vma.end, w);
  }
  k.ops.leaveLazy();
  k.flushRange(proc, start, end, w.pages);
}

/**
 * Tear down a whole address space (exit, or the old mm of exec): zap every VMA, free every
 * user page table, and flush when the address space is still loaded (`loaded`).
 */
export function teardown(k: Kernel, l4: Gfn, vmas: Vma[], loaded: Process | null): void {
  const w: RangeWalk = { mode: ZAP, keepWrite: false, exec: false, pages: 0, proc: loaded };
  k.ops.enterLazy();
  for (const vma of vmas) walkRange(k, l4, 4, 0, vma.start, vma.end, w);
  for (const vma of vmas) freeEmptyTables(k, l4, 4, 0, vma.start, vma.end);
  k.ops.leaveLazy();
  if (loaded) k.flushRange(loaded, 0, 2 ** 47, Number.POSITIVE_INFINITY);
}
