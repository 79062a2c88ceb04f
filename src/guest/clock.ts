/**
 * The guest's clock: the time its own processes' work takes, by which its scheduler measures
 * slices (Linux's CFS and EEVDF measure a slice in time). It is the same in every paging mode,
 * so that every mode runs the guest through the same schedule and `compare` compares like for
 * like; what a mode adds (walks, exits, the VMM's work) shows in the host's cycles, not here.
 *
 * It counts, as a machine of the guest's own would take them:
 * - the instructions' cycles at their base CPI (advance);
 * - each user data access's stall: the level of the caches that held its line, in a model of
 *   the CPU profile's caches that sees only the guest's own user accesses, each line named by
 *   its process and virtual address (dataAccess). The host's caches also hold page-walk entries
 *   and the VMM's data, which differ by mode, and name lines by host frame, which differ by
 *   mode, by kernel (a PV kernel lays its memory out otherwise) and with the balloon; these
 *   names do not, so the guest's time depends only on what its processes do. The price is that
 *   a page two processes share (a program's text, a page after fork) is two lines here. Without
 *   the stalls a memory-bound process's slice would last its CPI over its base CPI times
 *   longer than Linux's.
 * The guest kernel's own work (its page faults, zeroing, system calls) is left out, an
 * assumption: Linux charges it to the process, but a ballooned guest faults where a host-swapped
 * one does not, and a guest whose schedule moved with the host's memory management could not be
 * compared with itself under another.
 */

import type { CacheGeometry } from "../config/scenario.js";
import { type Gva, PAGE_SIZE } from "../hw/addr.js";
import { CACHE_DRAM, CACHE_L2, CACHE_LLC, DataCache } from "../hw/cache.js";

/** Cycles of the guest's own events, from the run's cost model. */
export interface GuestClockPrices {
  /** The stall of a data access whose line was in L2, the LLC or DRAM (an L1d hit adds none). */
  l2: number;
  llc: number;
  dram: number;
}

export class GuestClock {
  /** Cycles of guest time so far. */
  now = 0;
  /** The guest's own view of the caches; null when the run models no data caches. */
  private readonly view: DataCache | null;
  /** Stall cycles by the level that held a line (CACHE_L1 .. CACHE_DRAM). */
  private readonly stall = new Float64Array(4);

  constructor(caches: CacheGeometry | null, prices: GuestClockPrices) {
    this.view = caches === null ? null : new DataCache(caches);
    this.stall[CACHE_L2] = prices.l2;
    this.stall[CACHE_LLC] = prices.llc;
    this.stall[CACHE_DRAM] = prices.dram;
  }

  /** Work of `cycles` (instructions at their base CPI, or a step's fixed cost). */
  advance(cycles: number): void {
    this.now += cycles;
  }

  /** A user access by process `pid` at gva. */
  dataAccess(pid: number, gva: Gva): void {
    const view = this.view;
    if (view === null) return;
    // The line's name: the virtual page mixed with the process (31 bits, so that no name is a
    // cache's empty tag; two pages share a name with odds of one in 2^31), and its line.
    const vpn = Math.floor(gva / PAGE_SIZE);
    const name =
      (Math.imul(pid, 0x9e3779b1) ^ vpn ^ Math.imul((vpn / 4294967296) | 0, 0x85ebca6b)) &
      0x7fffffff;
    this.now += this.stall[view.access(name, ((gva >>> 0) & 4095) >>> 6)];
  }
}
