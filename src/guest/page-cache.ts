/**
 * The guest's page cache, after Linux's (mm/filemap.c): the frames holding pages of program
 * images, one frame per (image id, page index), whoever maps them. Every process that maps a
 * page of an image maps the cache's frame: the first fault reads it from the image (a device
 * write, `page_reads`), later faults by any process find it (file-fault.ts).
 *
 * References, as Linux counts a folio's: the cache holds one reference on each of its frames
 * (the page-cache reference filemap_add_folio takes), and every leaf entry mapping it one more
 * (its mapcount). So munmap, exit and exec drop mappings, never the frame, and a cached page
 * stays when no process maps it any more, as Linux keeps it. Such unmapped pages are what
 * reclaim takes when the guest runs out of free frames (direct reclaim, before the OOM killer):
 * they are clean (a private mapping's writes go to copies), so they are dropped, not written,
 * and the next fault reads them again.
 */

import type { Gfn } from "../hw/addr.js";
import { imagePageDigest } from "../hw/memory.js";
import type { GuestCpu } from "../hw/vcpu-interfaces.js";
import {
  C_PAGE_CACHE_EVICTIONS,
  C_PAGE_CACHE_HITS,
  C_PAGE_CACHE_MISSES,
} from "../metrics/counters.js";
import type { FrameAllocator } from "./frame-alloc.js";

/** A page's index in its image (Linux's pgoff, the page offset in the file). */
export type Pgoff = number;

/**
 * Linux's SWAP_CLUSTER_MAX (include/linux/swap.h): the pages one reclaim pass tries to free
 * (the nr_to_reclaim of try_to_free_pages, mm/vmscan.c).
 */
export const SWAP_CLUSTER_MAX = 32;

export class PageCache {
  /** image id -> pgoff -> gfn: each image's pages (Linux: its address_space's i_pages). */
  private readonly files = new Map<number, Map<Pgoff, Gfn>>();
  /** The image and pgoff of each cached gfn, to find it again when it is dropped. */
  private readonly keys = new Map<Gfn, { image: number; pgoff: Pgoff }>();
  /** 1 where the gfn holds a cached page (Linux: folio->mapping set); read on every unmap. */
  readonly cached: Uint8Array;
  /**
   * Cached pages that no process maps, in the order they became so, oldest first: what reclaim
   * takes (Linux's inactive file LRU, reduced to its unmapped pages; a Set keeps the order).
   */
  private readonly unmapped = new Set<Gfn>();

  constructor(
    private readonly frames: FrameAllocator,
    private readonly cpu: GuestCpu,
    private readonly counters: Float64Array,
    frameCount: number,
  ) {
    this.cached = new Uint8Array(frameCount);
  }

  /** Pages in the cache. */
  get pages(): number {
    return this.keys.size;
  }

  /** Cached pages no process maps (reclaimable). */
  get unmappedPages(): number {
    return this.unmapped.size;
  }

  /** The frame caching page `pgoff` of image `image`, or -1 (Linux's filemap_get_folio). */
  find(image: number, pgoff: Pgoff): Gfn {
    return this.files.get(image)?.get(pgoff) ?? -1;
  }

  /**
   * The frame of page `pgoff` of `image` for a fault (Linux's filemap_fault): the cached one
   * (a hit), or a new frame the page is read into and that joins the cache (a miss; Linux's
   * major fault). -1 when no frame is left even after reclaim.
   */
  get(image: number, pgoff: Pgoff): Gfn {
    let gfn = this.find(image, pgoff);
    if (gfn >= 0) {
      this.counters[C_PAGE_CACHE_HITS]++;
      return gfn;
    }
    gfn = this.frames.alloc();
    if (gfn < 0) return -1;
    this.counters[C_PAGE_CACHE_MISSES]++;
    this.cpu.dmaWrite(gfn, imagePageDigest(image, pgoff));
    let file = this.files.get(image);
    if (file === undefined) {
      file = new Map();
      this.files.set(image, file);
    }
    file.set(pgoff, gfn);
    this.keys.set(gfn, { image, pgoff });
    this.cached[gfn] = 1;
    this.frames.refcount[gfn] = 1; // the cache's own reference
    this.unmapped.add(gfn);
    return gfn;
  }

  /** A leaf entry now maps cached frame `gfn` (Linux: folio_add_file_rmap_ptes). */
  map(gfn: Gfn): void {
    if (++this.frames.refcount[gfn] === 2) this.unmapped.delete(gfn);
  }

  /** The last mapping of cached frame `gfn` went (its count is back to the cache's own). */
  lastUnmapped(gfn: Gfn): void {
    this.unmapped.add(gfn);
  }

  /**
   * Drop up to `max` cached pages that no process maps, oldest first, and free their frames
   * (Linux's shrink_folio_list, mm/vmscan.c, for clean unmapped file folios: removed from the
   * cache by __remove_mapping, freed at once). Returns how many were freed.
   */
  reclaim(max: number): number {
    let freed = 0;
    for (const gfn of this.unmapped) {
      if (freed === max) break;
      const key = this.keys.get(gfn);
      if (key === undefined || this.frames.refcount[gfn] !== 1) {
        throw new Error(`page cache: gfn ${gfn} is listed unmapped but is not`);
      }
      this.unmapped.delete(gfn);
      this.files.get(key.image)?.delete(key.pgoff);
      this.keys.delete(gfn);
      this.cached[gfn] = 0;
      this.frames.release(gfn);
      this.counters[C_PAGE_CACHE_EVICTIONS]++;
      freed++;
    }
    return freed;
  }

  /**
   * Check the cache against the leaf mappings counted in live address spaces (`mappings`, by
   * gfn): each cached frame is allocated, found under its key, and listed unmapped exactly when
   * nothing maps it. Returns the first inconsistency, or null.
   */
  check(mappings: Int32Array): string | null {
    for (const [gfn, key] of this.keys) {
      if (this.find(key.image, key.pgoff) !== gfn) {
        return `page cache: gfn ${gfn} is not found under its key (image ${key.image}, pgoff ${key.pgoff})`;
      }
      if (this.cached[gfn] !== 1 || this.frames.isFree(gfn)) {
        return `page cache: gfn ${gfn} is cached but free or unmarked`;
      }
      if (this.unmapped.has(gfn) !== (mappings[gfn] === 0)) {
        return `page cache: gfn ${gfn} has ${mappings[gfn]} mappings but is${this.unmapped.has(gfn) ? "" : " not"} listed unmapped`;
      }
    }
    let marked = 0;
    for (let gfn = 0; gfn < this.cached.length; gfn++) marked += this.cached[gfn];
    if (marked !== this.keys.size) {
      return `page cache: ${marked} frames marked cached, ${this.keys.size} cached`;
    }
    return null;
  }
}
