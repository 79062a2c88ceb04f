/**
 * The guest kernel's own consistency, checked from outside (reads guest memory directly, so a
 * check changes no counter and no TLB): every frame is free exactly when nothing references it;
 * every page-table page is referenced once; every data frame's reference count equals the number
 * of leaf entries mapping it in live address spaces, plus one for a page-cache frame (the
 * cache's own), which is listed reclaimable exactly when nothing maps it; user leaves map only
 * allocated frames.
 */

import type { Gfn } from "../hw/addr.js";
import type { GuestMemoryPeek } from "../hw/peek.js";
import { isLeaf, isPresent, isUser, leafFrame, pteFrame } from "../hw/pte.js";
import { KERNEL_RESERVED_FRAMES, type Kernel } from "./kernel.js";

/** Returns a description of the first inconsistency, or null. */
export function checkGuest(k: Kernel, mem: GuestMemoryPeek): string | null {
  const frames = k.memFrames;
  const mappings = new Int32Array(frames);
  const tableRefs = new Int32Array(frames);
  const visit = (table: Gfn, level: number, owner: string): string | null => {
    if (table < 0 || table >= frames)
      return `${owner}: a level-${level} table at gfn ${table} is outside memory`;
    if (k.pt.level[table] !== level) {
      return `${owner}: gfn ${table} is used as a level-${level} table but the kernel has it as level ${k.pt.level[table]}`;
    }
    tableRefs[table]++;
    let present = 0;
    const last = level === 4 ? 256 : 512; // the kernel half of a PML4 is shared, not owned
    for (let i = 0; i < 512; i++) {
      mem.peek64(table, i);
      const lo = mem.lo;
      const hi = mem.hi;
      if (!isPresent(lo)) continue;
      present++;
      if (i >= last) continue;
      const leaf = isLeaf(lo, level);
      const target = leaf ? leafFrame(lo, hi, level) : pteFrame(lo, hi);
      if (!leaf) {
        const err = visit(target, level - 1, owner);
        if (err) return err;
        continue;
      }
      const pages = level === 1 ? 1 : 512;
      for (let p = 0; p < pages; p++) {
        const gfn = target + p;
        if (gfn >= frames || k.frames.isFree(gfn)) {
          return `${owner}: a ${isUser(lo) ? "user" : "kernel"} leaf maps gfn ${gfn}, which is free or outside memory`;
        }
        mappings[gfn]++;
      }
    }
    if (present !== k.pt.used[table]) {
      return `${owner}: table gfn ${table} has ${present} present entries, the kernel counts ${k.pt.used[table]}`;
    }
    return null;
  };
  for (const proc of k.processes) {
    if (!proc.alive) continue;
    const err = visit(proc.l4Gfn, 4, `pid ${proc.pid}`);
    if (err) return err;
  }
  for (let gfn = KERNEL_RESERVED_FRAMES; gfn < frames; gfn++) {
    const free = k.frames.isFree(gfn);
    const ref = k.frames.refcount[gfn];
    if (free !== (ref === 0)) return `gfn ${gfn}: free=${free} but refcount ${ref}`;
    if (k.pt.level[gfn] !== 0) {
      if (tableRefs[gfn] > 1) return `page table gfn ${gfn} is linked ${tableRefs[gfn]} times`;
      continue;
    }
    if (k.balloon?.inBalloon[gfn] === 1) {
      // The balloon holds it (one reference); nothing may map it: its frame is gone.
      if (ref !== 1 || mappings[gfn] !== 0) {
        return `ballooned gfn ${gfn}: refcount ${ref} and ${mappings[gfn]} mappings (expected 1 and 0)`;
      }
      continue;
    }
    const expected = mappings[gfn] + k.pageCache.cached[gfn];
    if (!free && expected !== ref && !k.isKernelFrame(gfn)) {
      const cached = k.pageCache.cached[gfn] === 1 ? " (and the page cache's)" : "";
      return `gfn ${gfn}: refcount ${ref} but ${mappings[gfn]} mappings in live address spaces${cached}`;
    }
  }
  return k.pageCache.check(mappings);
}
