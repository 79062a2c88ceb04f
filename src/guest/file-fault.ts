/**
 * Faults on the pages of a file mapping (an area that maps its image whole: isFileMapping), as
 * Linux's do_fault (mm/memory.c) handles a private file mapping. The page cache's frame is
 * what gets mapped, read-only, never a copy, until a write:
 *
 *   not present, read or fetch   do_read_fault: fault-around first (do_fault_around maps the
 *                                cached, unmapped pages of the fault's aligned block), then the
 *                                page itself, found in the cache or read into it (filemap_fault),
 *                                mapped read-only (finish_fault)
 *   not present, write           do_cow_fault: a new anonymous frame, the cache's page copied
 *                                into it, mapped writable and dirty; the cache's page unchanged
 *   present read-only, write     do_wp_page -> wp_page_copy (fault.ts copyOnWrite): the cache's
 *                                reference keeps the frame's count above 1, so it is copied,
 *                                never reused in place
 */

import type { Gfn, Gva } from "../hw/addr.js";
import { isPresent, PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US, pteHi, pteLo } from "../hw/pte.js";
import { C_FAULT_AROUND_PAGES, C_PAGE_CACHE_HITS } from "../metrics/counters.js";
import type { Kernel } from "./kernel.js";
import type { Pgoff } from "./page-cache.js";
import { type Process, VM_EXEC, type Vma } from "./process.js";
import { GuestOutOfMemory } from "./unmap.js";

/**
 * Linux's fault_around_bytes (mm/memory.c): 64 KiB, 16 pages, by default; a power of two of at
 * most a page table's 512 entries (fault_around_bytes_set rounds down to one), 1 turning it off.
 */
export const FAULT_AROUND_PAGES = 16;

/**
 * Flags of a file page's leaf: x86's vm_page_prot, A included (prefaulted entries are young too:
 * x86 does not define arch_wants_old_prefaulted_pte); never RW, a private mapping's write
 * copying the page first.
 */
const FILE_LEAF = PTE_P | PTE_US | PTE_A;

/**
 * An unmapped page of file mapping `vma` at gva, whose entry is `idx` of the L1 table `l1`.
 * Throws GuestOutOfMemory when no frame is left, even after reclaim.
 */
export function fileFault(
  k: Kernel,
  proc: Process,
  vma: Vma,
  gva: Gva,
  l1: Gfn,
  idx: number,
  write: boolean,
): void {
  const pgoff = vma.imageBase + Math.floor((gva - vma.start) / 4096);
  if (write) {
    cowFault(k, proc, vma, l1, idx, pgoff);
    return;
  }
  if (k.faultAroundPages > 1 && faultAround(k, proc, vma, gva, l1, idx, pgoff)) return;
  const gfn = k.pageCache.get(vma.image, pgoff);
  if (gfn < 0) throw new GuestOutOfMemory();
  mapCachedPage(k, proc, vma, l1, idx, gfn);
}

/** do_cow_fault: a private copy of the cache's page, which stays as it is. */
function cowFault(k: Kernel, proc: Process, vma: Vma, l1: Gfn, idx: number, pgoff: Pgoff) {
  // Linux allocates the copy before it looks the page up (do_cow_fault, then __do_fault).
  const copy = k.frames.alloc();
  if (copy < 0) throw new GuestOutOfMemory();
  const src = k.pageCache.get(vma.image, pgoff);
  if (src < 0) {
    k.frames.release(copy);
    throw new GuestOutOfMemory();
  }
  k.copyFrame(copy, src);
  k.frames.refcount[copy] = 1;
  vma.anon = true;
  const nx = (vma.prot & VM_EXEC) === 0;
  k.pt.set(l1, idx, pteLo(copy, FILE_LEAF | PTE_RW | PTE_D), pteHi(copy, nx), false);
  proc.rss++;
}

/**
 * do_fault_around with filemap_map_pages as its map_pages (mm/memory.c, mm/filemap.c): the
 * pages of the fault's naturally aligned block of k.faultAroundPages entries, clamped to the
 * area and to the page table, that are in the page cache and whose entries are empty, are
 * mapped at once, each without a fault of its own; nothing is read. Returns whether the
 * faulting page was one of them (the fault is then done: VM_FAULT_NOPAGE).
 */
function faultAround(
  k: Kernel,
  proc: Process,
  vma: Vma,
  gva: Gva,
  l1: Gfn,
  idx: number,
  pgoff: Pgoff,
): boolean {
  const nr = k.faultAroundPages;
  const vmaOff = Math.floor((gva - vma.start) / 4096);
  const vmaPages = (vma.end - vma.start) / 4096;
  const from = Math.max(idx - (idx % nr), idx - Math.min(idx, vmaOff));
  const to = Math.min(from + nr, 512, idx + vmaPages - vmaOff) - 1;
  let self = false;
  for (let i = from; i <= to; i++) {
    const gfn = k.pageCache.find(vma.image, pgoff + i - idx);
    if (gfn < 0) continue;
    k.pt.read(l1, i);
    if (isPresent(k.pt.lo)) continue;
    mapCachedPage(k, proc, vma, l1, i, gfn);
    if (i === idx) self = true;
    else k.counters[C_FAULT_AROUND_PAGES]++;
  }
  if (self) k.counters[C_PAGE_CACHE_HITS]++;
  return self;
}

/** Map cached frame `gfn` read-only at entry `idx` of `l1` (finish_fault, set_pte_range). */
function mapCachedPage(k: Kernel, proc: Process, vma: Vma, l1: Gfn, idx: number, gfn: Gfn) {
  k.pageCache.map(gfn);
  k.pt.set(l1, idx, pteLo(gfn, FILE_LEAF), pteHi(gfn, (vma.prot & VM_EXEC) === 0), false);
  proc.rss++;
}
