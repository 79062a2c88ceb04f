/**
 * The balloon front end: a driver in the guest kernel (after Linux's drivers/xen/balloon.c).
 * It watches the target the host writes in xenstore (memory/target, KiB) and moves the guest's
 * current size towards it:
 * - inflate: take free pages from the guest's own allocator, in batches of 512 (one page of
 *   frame numbers), and hand their gfns to the VMM (decrease_reservation). At the allocator's
 *   minimum free watermark it reclaims only what is cheap, the page cache's unmapped clean pages
 *   (GFP_BALLOON allows direct reclaim; __GFP_NORETRY stops it from retrying or waking the OOM
 *   killer), and stops when none is left;
 * - deflate: give ballooned gfns back to the guest (populate_physmap) and free them to the
 *   allocator.
 * When it cannot go on (no free guest page, no host frame) it backs off and retries after a
 * delay that doubles up to a limit (Linux: 1 s doubling to 32 s). The guest's memory is then
 * what its processes need; if they need more than the target leaves, the kernel's own OOM
 * killer acts when a fault finds no page, as it would on a real guest.
 * It also publishes the guest's free memory (data/meminfo_free) for an automatic host policy.
 */

import type { Gfn } from "../hw/addr.js";
import { C_BALLOON_BACKOFFS } from "../metrics/counters.js";
import type { Kernel } from "./kernel.js";
import { SWAP_CLUSTER_MAX } from "./page-cache.js";

/** The guest's side of xenstore (the VMM's Xenstore satisfies it). */
export interface GuestXenstore {
  read(path: string): number | undefined;
  write(path: string, value: number): void;
  /** Bumped by every write of the target (the driver's watch). */
  readonly targetWrites: number;
}

/** XENMEM op numbers (Xen's public/memory.h). */
export const XENMEM_DECREASE_RESERVATION = 1;
export const XENMEM_POPULATE_PHYSMAP = 6;

/** Pages per hypercall: Linux's frame_list is one page of 8-byte frame numbers. */
export const BALLOON_BATCH = 512;

export interface BalloonOptions {
  /** First retry delay after a back-off, in the domain's cycles. */
  retryDelay: number;
  /** The delay doubles up to this. */
  maxRetryDelay: number;
}

/**
 * Linux's min_free_kbytes for a guest of `frames` pages: 4 * sqrt(lowmem KiB), clamped to
 * 128 KiB .. 256 MiB (mm/page_alloc.c). The balloon never takes the allocator below it.
 */
export function minFreePages(frames: number): number {
  const kib = Math.min(262144, Math.max(128, Math.floor(4 * Math.sqrt(frames * 4))));
  return Math.ceil(kib / 4);
}

export class BalloonDriver {
  /** Ballooned gfns, as a stack (the most recently ballooned comes back first). */
  private readonly list: Int32Array;
  /** Pages in the balloon. */
  count = 0;
  /** 1 where the gfn is in the balloon (for the kernel's checker). */
  readonly inBalloon: Uint8Array;
  /** The pages the allocator keeps for the kernel. */
  readonly minFree: number;
  /** Cycles of the domain at which the driver runs next (after a back-off). */
  nextRun = 0;
  private delay: number;
  private seenTargetWrites = -1;
  private backedOff = false;
  private readonly batch = new Int32Array(BALLOON_BATCH);

  constructor(
    private readonly kernel: Kernel,
    private readonly xs: GuestXenstore,
    private readonly options: BalloonOptions,
  ) {
    this.list = new Int32Array(kernel.memFrames);
    this.inBalloon = new Uint8Array(kernel.memFrames);
    this.minFree = minFreePages(kernel.memFrames);
    this.delay = options.retryDelay;
  }

  /** The guest's current size in pages: its memory less the balloon. */
  get currentPages(): number {
    return this.kernel.memFrames - this.count;
  }

  /** The target in pages, from xenstore (the whole memory when none is set). */
  get targetPages(): number {
    const kib = this.xs.read("memory/target");
    if (kib === undefined) return this.kernel.memFrames;
    return Math.max(0, Math.min(this.kernel.memFrames, Math.floor(kib / 4)));
  }

  /** Announce the driver (control/feature-balloon) and publish the first statistics. */
  start(): void {
    this.xs.write("control/feature-balloon", 1);
    this.publish();
  }

  /**
   * At a safe point of the guest (between two steps of its processes): publish the statistics,
   * and run the balloon worker if the target changed or a retry is due.
   */
  poll(now: number): void {
    this.publish();
    const changed = this.xs.targetWrites !== this.seenTargetWrites;
    if (!changed && (!this.backedOff || now < this.nextRun)) return;
    this.seenTargetWrites = this.xs.targetWrites;
    this.work(now);
  }

  /** Linux's balloon_process: batches until the target is met or a batch comes up short. */
  work(now: number): void {
    for (;;) {
      const credit = this.targetPages - this.currentPages;
      if (credit === 0) break;
      const done = credit > 0 ? this.deflate(credit) : this.inflate(-credit);
      if (!done) {
        this.backOff(now);
        return;
      }
    }
    this.backedOff = false;
    this.delay = this.options.retryDelay;
  }

  private backOff(now: number): void {
    this.kernel.counters[C_BALLOON_BACKOFFS]++;
    this.backedOff = true;
    this.nextRun = now + this.delay;
    this.delay = Math.min(this.delay * 2, this.options.maxRetryDelay);
  }

  /** Give up to one batch of free pages to the VMM. Returns false when it came up short. */
  private inflate(pages: number): boolean {
    const frames = this.kernel.frames;
    const cache = this.kernel.pageCache;
    const want = Math.min(pages, BALLOON_BATCH);
    let n = 0;
    while (n < want) {
      if (frames.freeCount <= this.minFree) {
        cache.reclaim(SWAP_CLUSTER_MAX);
        if (frames.freeCount <= this.minFree) break;
      }
      const gfn = frames.alloc();
      if (gfn < 0) break;
      frames.refcount[gfn] = 1; // the balloon holds it
      this.batch[n++] = gfn;
    }
    const ops = this.kernel.ops;
    if (n > 0) ops.releaseReservation(this.batch, n);
    const done = n > 0 ? this.kernel.cpu.memoryOp(XENMEM_DECREASE_RESERVATION, this.batch, n) : 0;
    const given = Math.max(0, done);
    // The pages the VMM refused are still the guest's: map them again.
    if (given < n) ops.restoreReservation(this.batch.subarray(given, n), n - given);
    for (let i = 0; i < n; i++) {
      const gfn = this.batch[i];
      if (i < given) this.push(gfn);
      else this.kernel.putFrame(gfn); // the VMM refused it: it stays the guest's
    }
    return given === want;
  }

  /** Take up to one batch of pages back from the VMM. Returns false when it came up short. */
  private deflate(pages: number): boolean {
    const want = Math.min(pages, BALLOON_BATCH, this.count);
    if (want === 0) return false; // a target above the guest's memory cannot be met
    for (let i = 0; i < want; i++) this.batch[i] = this.list[this.count - 1 - i];
    const done = Math.max(0, this.kernel.cpu.memoryOp(XENMEM_POPULATE_PHYSMAP, this.batch, want));
    if (done > 0) this.kernel.ops.restoreReservation(this.batch, done);
    for (let i = 0; i < done; i++) {
      const gfn = this.batch[i];
      this.count--;
      this.inBalloon[gfn] = 0;
      this.kernel.putFrame(gfn);
    }
    return done === want;
  }

  private push(gfn: Gfn): void {
    this.list[this.count++] = gfn;
    this.inBalloon[gfn] = 1;
  }

  /** The guest agent's statistics, in KiB. */
  private publish(): void {
    this.xs.write("data/meminfo_free", this.kernel.frames.freeCount * 4);
    this.xs.write("data/meminfo_total", this.currentPages * 4);
  }
}
