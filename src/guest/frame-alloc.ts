/**
 * The guest's physical page allocator over its gfns, with 2 MiB blocks kept whole where possible
 * so that transparent huge pages can be had: 4 KiB allocations come from partly used blocks
 * first, and a free block is broken only when no partly used one is left.
 * Also the per-frame reference count (Linux's struct page _refcount), for copy-on-write.
 */

import type { Gfn } from "../hw/addr.js";

const BLOCK = 512;

export class FrameAllocator {
  readonly frames: number;
  /**
   * 1 where the gfn is not free (reserved or allocated): 0 for free, so that the array costs
   * memory only for frames the guest has used (a zeroed array's pages are mapped at first write).
   */
  private readonly used: Uint8Array;
  /** Free frames in each 2 MiB block. */
  private readonly blockFree: Int16Array;
  /** Blocks that may have free frames but are not wholly free (checked when popped). */
  private partial: number[] = [];
  private readonly inPartial: Uint8Array;
  /** Blocks that may be wholly free (checked when popped). */
  private whole: number[] = [];
  /** Where to start looking for a free frame inside each block. */
  private readonly hint: Int16Array;
  /** Mappings of each frame (user PTEs and kernel references, the page cache's own). */
  readonly refcount: Int32Array;
  freeCount = 0;
  /**
   * Direct reclaim: called when no frame is free, before alloc gives up (Linux's
   * __alloc_pages_slowpath tries __alloc_pages_direct_reclaim before __alloc_pages_may_oom,
   * mm/page_alloc.c). Frees what it can and returns how many frames it freed.
   */
  reclaim: (() => number) | null = null;

  constructor(frames: number, reserved: number) {
    this.frames = frames;
    this.used = new Uint8Array(frames);
    const blocks = Math.ceil(frames / BLOCK);
    this.blockFree = new Int16Array(blocks);
    this.inPartial = new Uint8Array(blocks);
    this.hint = new Int16Array(blocks);
    this.refcount = new Int32Array(frames);
    this.used.fill(1, 0, reserved);
    for (let b = 0; b < blocks; b++) {
      const start = Math.max(b * BLOCK, reserved);
      this.blockFree[b] = Math.max(0, Math.min(frames, (b + 1) * BLOCK) - start);
    }
    this.freeCount = frames - reserved;
    for (let b = blocks - 1; b >= 0; b--) {
      if (this.blockFree[b] === BLOCK) this.whole.push(b);
      else if (this.blockFree[b] > 0) this.pushPartial(b);
    }
  }

  isFree(gfn: Gfn): boolean {
    return this.used[gfn] === 0;
  }

  /** One 4 KiB frame, or -1 when memory is exhausted even after reclaim. */
  alloc(): Gfn {
    const gfn = this.allocFree();
    if (gfn >= 0 || this.reclaim === null || this.reclaim() === 0) return gfn;
    return this.allocFree();
  }

  /** One 4 KiB frame from the free ones, or -1. */
  private allocFree(): Gfn {
    let block = -1;
    while (this.partial.length > 0) {
      const b = this.partial[this.partial.length - 1];
      if (this.blockFree[b] > 0 && this.blockFree[b] < BLOCK) {
        block = b;
        break;
      }
      this.partial.pop();
      this.inPartial[b] = 0;
    }
    if (block < 0) {
      while (this.whole.length > 0) {
        const b = this.whole.pop()!;
        if (this.blockFree[b] === BLOCK) {
          block = b;
          this.pushPartial(b);
          break;
        }
      }
    }
    if (block < 0) return -1;
    const base = block * BLOCK;
    const end = Math.min(base + BLOCK, this.frames);
    for (let i = 0; i < BLOCK; i++) {
      const gfn = base + ((this.hint[block] + i) % BLOCK);
      if (gfn < end && this.used[gfn] === 0) {
        this.take(gfn);
        this.hint[block] = (gfn - base + 1) % BLOCK;
        return gfn;
      }
    }
    throw new Error(`frame allocator: block ${block} counted free frames it does not have`);
  }

  /** 512 contiguous frames aligned to 2 MiB (a huge page), or -1 when no whole block is free. */
  alloc2M(): Gfn {
    while (this.whole.length > 0) {
      const b = this.whole.pop()!;
      if (this.blockFree[b] === BLOCK) {
        const base = b * BLOCK;
        for (let gfn = base; gfn < base + BLOCK; gfn++) this.take(gfn);
        return base;
      }
    }
    return -1;
  }

  /** Return a frame. Freeing a free frame is a kernel bug and throws. */
  release(gfn: Gfn): void {
    if (this.used[gfn] === 0) throw new Error(`frame allocator: double free of gfn ${gfn}`);
    this.used[gfn] = 0;
    this.refcount[gfn] = 0;
    this.freeCount++;
    const b = Math.floor(gfn / BLOCK);
    const n = ++this.blockFree[b];
    if (n === BLOCK) this.whole.push(b);
    else this.pushPartial(b);
  }

  private take(gfn: Gfn): void {
    this.used[gfn] = 1;
    this.refcount[gfn] = 0;
    this.freeCount--;
    this.blockFree[Math.floor(gfn / BLOCK)]--;
  }

  private pushPartial(b: number): void {
    if (this.inPartial[b] === 1) return;
    this.inPartial[b] = 1;
    this.partial.push(b);
  }
}
