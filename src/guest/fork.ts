/**
 * fork: a child with a copy of the parent's address space, sharing every page copy-on-write.
 * As Linux's copy_page_range: writable private pages are write-protected in the parent and the
 * child, the child's entries are marked old (A clear), every frame gains a reference, and the
 * parent's TLB is flushed afterwards since its entries lost write permission. An area with no
 * anonymous page (a program's text, all of it page-cache pages) is not copied: the child's
 * faults map the cached pages again (vma_needs_copy, mm/memory.c: "Don't copy ptes where a page
 * fault will fill them correctly"). Page-cache pages in an area that is copied are shared as
 * mappings: one reference more each, mapped read-only as they were.
 */

import { type Gfn, type Gva, LEVEL_SPAN } from "../hw/addr.js";
import {
  isLeaf,
  isPresent,
  isWritable,
  leafFrame,
  PTE_A,
  PTE_RW,
  pteFrame,
  pteHi,
  pteLo,
} from "../hw/pte.js";
import { C_FORKS } from "../metrics/counters.js";
import type { Kernel } from "./kernel.js";
import { TABLE_FLAGS } from "./pagetable.js";
import { type Process, VM_WRITE } from "./process.js";
import { GuestOutOfMemory, teardown } from "./unmap.js";

function copyLevel(
  k: Kernel,
  src: Gfn,
  dst: Gfn,
  level: number,
  base: Gva,
  start: Gva,
  end: Gva,
  cow: boolean,
  child: Process,
): void {
  const span = LEVEL_SPAN[level];
  const first = Math.max(0, Math.floor((start - base) / span));
  const last = Math.min(511, Math.floor((end - 1 - base) / span));
  for (let idx = first; idx <= last; idx++) {
    k.pt.read(src, idx);
    let lo = k.pt.lo;
    const hi = k.pt.hi;
    if (!isPresent(lo)) continue;
    if (isLeaf(lo, level)) {
      if (cow && isWritable(lo)) {
        lo = (lo & ~PTE_RW) >>> 0;
        k.pt.set(src, idx, lo, hi, true);
      }
      k.pt.read(dst, idx);
      const wasPresent = isPresent(k.pt.lo);
      k.pt.set(dst, idx, (lo & ~PTE_A) >>> 0, hi, wasPresent);
      const pages = level === 1 ? 1 : 512;
      const frame = leafFrame(lo, hi, level);
      for (let i = 0; i < pages; i++) k.frames.refcount[frame + i]++;
      child.rss += pages;
      continue;
    }
    k.pt.read(dst, idx);
    let next: Gfn;
    if (!isPresent(k.pt.lo)) {
      next = k.pt.allocTable(level - 1);
      if (next < 0) throw new GuestOutOfMemory();
      k.pt.set(dst, idx, pteLo(next, TABLE_FLAGS), pteHi(next, false), false);
    } else {
      next = pteFrame(k.pt.lo, k.pt.hi);
    }
    copyLevel(k, pteFrame(lo, hi), next, level - 1, base + idx * span, start, end, cow, child);
  }
}

/** Fork `parent`. Returns the child, or null when the guest ran out of memory (-ENOMEM). */
export function fork(k: Kernel, parent: Process): Process | null {
  const child = k.newChild(parent);
  const l4 = k.newAddressSpace();
  if (l4 < 0) return null;
  child.l4Gfn = l4;
  k.counters[C_FORKS]++;
  try {
    k.ops.enterLazy();
    try {
      for (const vma of parent.vmas) {
        if (!vma.anon) continue;
        const cow = (vma.prot & VM_WRITE) !== 0;
        copyLevel(k, parent.l4Gfn, l4, 4, 0, vma.start, vma.end, cow, child);
      }
    } finally {
      k.ops.leaveLazy();
    }
  } catch (e) {
    if (!(e instanceof GuestOutOfMemory)) throw e;
    teardown(k, l4, child.vmas, null);
    k.pt.freeTable(l4);
    k.flushRange(parent, 0, 2 ** 47, Number.POSITIVE_INFINITY);
    return null;
  }
  k.flushRange(parent, 0, 2 ** 47, Number.POSITIVE_INFINITY);
  k.register(child);
  return child;
}
