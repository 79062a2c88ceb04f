/**
 * Who sets the balloon targets (xenstore memory/target, KiB):
 * - fixed: each domain starts at its scenario target and changes at given points of the run
 *   (counted in user accesses of all domains since the start, warm-up included);
 * - auto: oVirt MOM's balloon rules, run every `interval` host cycles. When the host's free
 *   memory is below pressure_threshold (20%), every guest is shrunk towards what it uses plus a
 *   free margin that shrinks with the host's free memory (negative under critical pressure,
 *   5%), by at most max_change (5%) of its size a step; otherwise every ballooned guest grows
 *   by max_change, towards what it uses plus min_guest_free (20%) of its boot size. A change
 *   smaller than min_change (0.25%) is not made. Unlike MOM, a target never goes below the
 *   domain's guaranteed floor, a guest never grows by more than max_change of its boot size a
 *   step (MOM jumps to its use plus the margin), and the latest statistics are used rather than
 *   a moving average.
 */

import type { AutoPolicySettings } from "../../config/scenario.js";
import type { P2m } from "../p2m.js";
import { type Xenstore, XS_MEMINFO_FREE, XS_TARGET } from "../xenstore.js";

/** What a policy needs of a domain. */
export interface PolicyDomain {
  p2m: P2m;
  xenstore: Xenstore;
  /** The target may never go below this (pages). */
  floorPages: number;
  /** Fixed target changes, in order of `at` (user accesses since the start). */
  schedule: readonly { at: number; targetPages: number }[];
}

/** Write a target (pages) as the toolstack would (KiB). */
export function setTarget(d: PolicyDomain, pages: number): void {
  d.xenstore.write(XS_TARGET, Math.round(pages) * 4);
}

/** The current target in pages. */
export function targetOf(d: PolicyDomain): number {
  return Math.floor((d.xenstore.read(XS_TARGET) ?? d.p2m.gfns * 4) / 4);
}

/** The fixed policy: applies each domain's schedule as the run passes its points. */
export class FixedTargets {
  private readonly next: number[];

  constructor(private readonly domains: readonly PolicyDomain[]) {
    this.next = domains.map(() => 0);
  }

  /** The access count of the next change after `accesses` (Infinity when none is left). */
  nextAt(): number {
    let at = Number.POSITIVE_INFINITY;
    this.domains.forEach((d, i) => {
      if (this.next[i] < d.schedule.length) at = Math.min(at, d.schedule[this.next[i]].at);
    });
    return at;
  }

  /** Apply every change due at `accesses`. */
  apply(accesses: number): void {
    this.domains.forEach((d, i) => {
      while (this.next[i] < d.schedule.length && d.schedule[this.next[i]].at <= accesses) {
        setTarget(d, d.schedule[this.next[i]].targetPages);
        this.next[i]++;
      }
    });
  }
}

/** The automatic policy, after oVirt MOM's balloon rules. */
export class AutoBalloonPolicy {
  /** Host cycles at which the rules run next. */
  nextRun = 0;
  /** Times the rules ran. */
  ticks = 0;

  constructor(
    private readonly domains: readonly PolicyDomain[],
    readonly options: AutoPolicySettings,
  ) {}

  /** Run the rules if their interval has passed. */
  maybeRun(now: number, hostFree: number, hostTotal: number): void {
    if (now < this.nextRun) return;
    this.nextRun = now + this.options.interval;
    this.run(hostFree / hostTotal);
  }

  run(hostFreeFraction: number): void {
    this.ticks++;
    const o = this.options;
    for (const d of this.domains) {
      const free = d.xenstore.read(XS_MEMINFO_FREE);
      if (free === undefined) continue; // no guest statistics: MOM leaves such a guest alone
      const max = d.p2m.gfns;
      const current = max - d.p2m.ballooned;
      const used = current - free / 4;
      let size: number;
      if (hostFreeFraction < o.pressureThreshold) {
        const guestFree =
          hostFreeFraction <= o.pressureCritical
            ? hostFreeFraction - 0.05
            : o.minGuestFree * (hostFreeFraction / o.pressureThreshold);
        size = Math.max(current * (1 - o.maxChange), used + guestFree * current);
        if (size > current) continue;
      } else {
        if (current >= max) continue;
        // MOM grows by max_change, or at once to what the guest uses plus min_guest_free of its
        // memory; here never by more than max_change of its memory a step, as it shrinks.
        size = Math.min(
          Math.max(current * (1 + o.maxChange), used + o.minGuestFree * max),
          current + o.maxChange * max,
        );
      }
      size = Math.floor(Math.min(max, Math.max(d.floorPages, size)));
      if (Math.abs(size - current) <= o.minChange * current) continue;
      if (size !== targetOf(d)) setTarget(d, size);
    }
  }
}
