/**
 * Host swapping, the last resort of memory overcommit (after ESX: a swap file per domain,
 * victims chosen at random, since the VMM knows nothing of what the guest uses). A swapped gfn
 * keeps its content in the domain's swap file, its P2M type becomes ram_paged and its shadow and
 * TLB entries go; the guest's next touch brings it back at the cost of a swap-in (P2m.resolve).
 *
 * The pager acts in three cases:
 * - the host's free memory falls below its low watermark: it swaps out pages until the free
 *   memory is back at the high watermark, from the domains furthest above their targets first;
 * - a domain stays above its balloon target (memory/target) for longer than the grace period,
 *   in its own cycles (at once when it has no balloon driver): the excess is swapped out, as
 *   ESX does when the balloon cannot reach the target;
 * - an allocation finds the host empty in the middle of a domain's exit: frames are taken from
 *   the other domains only, whose vCPUs are stopped at a safe point, never from the domain whose
 *   operation is in flight.
 * Page tables the paging mode pins (shadowed guest tables) are never chosen.
 */

import type { HostFrames } from "../frames.js";
import type { P2m } from "../p2m.js";
import { type Xenstore, XS_FEATURE_BALLOON, XS_TARGET } from "../xenstore.js";

export interface SwapOptions {
  /** Whether the host may swap at all. */
  enabled: boolean;
  /** Free frames below which the pager swaps out... */
  lowWater: number;
  /** ...until this many frames are free. */
  highWater: number;
  /** Host cycles a domain with a balloon driver may stay above its target before swapping. */
  grace: number;
}

/** What the pager needs of a domain. */
export interface SwapDomain {
  p2m: P2m;
  xenstore: Xenstore;
  /** The domain's own cycles so far (its share of the CPU, for the grace period). */
  clock: () => number;
}

/** Random probes for a victim gfn before a linear scan from a random start. */
const PROBES = 64;

export class HostSwap {
  /**
   * The domain's own time when it was first seen above its target (-1: not above). The grace
   * is counted in the domain's cycles, so that other domains' turns do not eat its chance to
   * balloon.
   */
  private readonly overSince: number[] = [];

  constructor(
    private readonly frames: HostFrames,
    private readonly domains: readonly SwapDomain[],
    readonly options: SwapOptions,
    /** A uniform integer below n (the pager's own random stream). */
    private readonly randomBelow: (n: number) => number,
  ) {}

  /** Frames the domain holds above its target (0 when none is set or it is below). */
  excess(d: SwapDomain): number {
    const kib = d.xenstore.read(XS_TARGET);
    if (kib === undefined) return 0;
    return Math.max(0, d.p2m.populated - Math.floor(kib / 4));
  }

  /** At a safe point of every domain (between two of its steps): keep the free watermark. */
  keepFree(): void {
    if (!this.options.enabled || this.frames.free >= this.options.lowWater) return;
    this.reclaim(this.options.highWater - this.frames.free, null);
  }

  /**
   * Between domain turns (every domain at a safe point): swap out what domains hold above their
   * targets once the grace is over, then keep the free watermark.
   */
  enforceTargets(): void {
    if (!this.options.enabled) return;
    this.domains.forEach((d, i) => {
      const now = d.clock();
      const excess = this.excess(d);
      if (excess === 0) {
        this.overSince[i] = -1;
        return;
      }
      let since = this.overSince[i] ?? -1;
      if (since < 0) {
        since = now;
        this.overSince[i] = now;
      }
      const hasBalloon = d.xenstore.read(XS_FEATURE_BALLOON) === 1;
      if (!hasBalloon || now - since >= this.options.grace) this.swapOut(d, excess);
    });
    this.keepFree();
  }

  /**
   * Free at least `frames` host frames by swapping, from domains other than `busy` (whose
   * operation is in flight). Returns whether any frame was freed.
   */
  reclaim(frames: number, busy: SwapDomain | null): boolean {
    if (!this.options.enabled) return false;
    let freed = 0;
    // Domains left out: the busy one, and each that had fewer pages to give than asked (all it
    // has left may be pinned page tables), so that the next one is asked.
    const skip = new Set<SwapDomain>();
    if (busy !== null) skip.add(busy);
    while (freed < frames) {
      const victim = this.pickVictim(skip);
      if (victim === null) break;
      const want = Math.min(frames - freed, 64);
      const n = this.swapOut(victim, want);
      if (n < want) skip.add(victim);
      freed += n;
    }
    return freed > 0;
  }

  /** The domain furthest above its target, else the one with the most swappable memory. */
  private pickVictim(skip: Set<SwapDomain>): SwapDomain | null {
    let best: SwapDomain | null = null;
    let bestExcess = 0;
    let bestPopulated = 0;
    for (const d of this.domains) {
      if (skip.has(d) || d.p2m.populated === 0) continue;
      const excess = this.excess(d);
      if (
        best === null ||
        excess > bestExcess ||
        (excess === bestExcess && d.p2m.populated > bestPopulated)
      ) {
        best = d;
        bestExcess = excess;
        bestPopulated = d.p2m.populated;
      }
    }
    return best;
  }

  /** Swap out up to `pages` random gfns of d. Returns how many went. */
  swapOut(d: SwapDomain, pages: number): number {
    const p2m = d.p2m;
    let n = 0;
    while (n < pages) {
      const gfn = this.randomVictim(p2m);
      if (gfn < 0) break;
      p2m.pageOut(gfn);
      n++;
    }
    return n;
  }

  /** A random gfn that may be paged out, or -1 when there is none (ESX's random replacement). */
  private randomVictim(p2m: P2m): number {
    for (let i = 0; i < PROBES; i++) {
      const gfn = this.randomBelow(p2m.gfns);
      if (p2m.canPageOut(gfn)) return gfn;
    }
    const start = this.randomBelow(p2m.gfns);
    for (let i = 0; i < p2m.gfns; i++) {
      const gfn = (start + i) % p2m.gfns;
      if (p2m.canPageOut(gfn)) return gfn;
    }
    return -1;
  }
}
