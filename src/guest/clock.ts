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

import type { CacheGeometry, CacheLevelSpec } from "../config/scenario.js";
import type { Gva } from "../hw/addr.js";
import { LINE_BYTES } from "../hw/cache.js";
import { DOUBLE_ZERO } from "../hw/double-zero.js";

/** Cycles of the guest's own events, from the run's cost model. */
export interface GuestClockPrices {
  /** The stall of a data access whose line was in L2, the LLC or DRAM (an L1d hit adds none). */
  l2: number;
  llc: number;
  dram: number;
}

/** A line store's empty slot: no line's key hashes to it but with odds of one in 2^32. */
const EMPTY = -1;
/** 2^-21: a 21-bit slot as a fraction of a level. */
const SLOT_SCALE = 1 / 2097152;
/**
 * One line in SAMPLING is modelled, its stall counted SAMPLING times: the estimate's mean over a
 * slice is the same, at an eighth of the work (an assumption of the estimate, not a figure).
 */
const SAMPLING = 8;

export class GuestClock {
  /** Cycles of guest time so far. */
  now = DOUBLE_ZERO;
  /**
   * The guest's own view of L1d, L2 and the LLC, each a store of as many lines as the level
   * holds, a line in the slot its key's hash picks (null when the run models no data caches).
   * Placing lines by a hash, not by set and way with LRU, is an assumption that keeps the
   * estimate to a few operations an access (a second set-associative hierarchy cost a quarter
   * of a timed run's speed): a store of this kind behaves as a cache of that capacity with
   * random placement, missing a little more than the profile's associative levels.
   */
  private readonly l1: Int32Array | null;
  private readonly l2: Int32Array;
  private readonly llc: Int32Array;
  /** Stall cycles of a sampled line found in L2, the LLC, or DRAM, for the lines it stands for. */
  private readonly stallL2: number;
  private readonly stallLlc: number;
  private readonly stallDram: number;

  constructor(caches: CacheGeometry | null, prices: GuestClockPrices) {
    const store = (level: CacheLevelSpec | undefined) =>
      new Int32Array(level === undefined ? 0 : level.bytes / LINE_BYTES / SAMPLING).fill(EMPTY);
    this.l1 = caches === null ? null : store(caches.l1);
    this.l2 = store(caches?.l2);
    this.llc = store(caches?.llc);
    this.stallL2 = prices.l2 * SAMPLING;
    this.stallLlc = prices.llc * SAMPLING;
    this.stallDram = prices.dram * SAMPLING;
  }

  /** Whether a data access moves the clock (the run models data caches): see dataAccess. */
  get pricesAccesses(): boolean {
    return this.l1 !== null;
  }

  /** Work of `cycles` (instructions at their base CPI, or a step's fixed cost). */
  advance(cycles: number): void {
    this.now += cycles;
  }

  /** A user access by process `pid` at gva. */
  dataAccess(pid: number, gva: Gva): void {
    if (this.l1 === null) return;
    const hi = Math.floor(gva / 4294967296);
    this.line(pid, (gva - hi * 4294967296) | 0, hi, false);
  }

  /**
   * dataAccess of the address in int32 halves (as an AccessBuffer holds it), each change to the
   * line stores logged: a run prices a batch's accesses before it makes them, and undo() takes
   * back those of the accesses it did not make.
   */
  dataAccessLogged(pid: number, lo: number, hi: number): void {
    if (this.l1 !== null) this.line(pid, lo, hi, true);
  }

  /** Changes logged since clearLog: a mark for undo. */
  get logged(): number {
    return this.logLength;
  }

  /** Forget the log (the changes stay). */
  clearLog(): void {
    this.logLength = 0;
  }

  /** Take back the changes logged after `mark`, the last first (the clock's `now` is the caller's). */
  undo(mark: number): void {
    const log = this.log;
    while (this.logLength > mark) {
      const k = 3 * --this.logLength;
      const level = log[k];
      const store = level === 0 ? this.l1 : level === 1 ? this.l2 : this.llc;
      if (store !== null) store[log[k + 1]] = log[k + 2];
    }
  }

  /** The log: per change, the level (0 L1d, 1 L2, 2 LLC), the slot and its former line. */
  private log = new Int32Array(3 * 64);
  private logLength = 0;

  private logChange(level: number, slot: number, was: number): void {
    if (3 * (this.logLength + 1) > this.log.length) {
      const grown = new Int32Array(2 * this.log.length);
      grown.set(this.log);
      this.log = grown;
    }
    const k = 3 * this.logLength++;
    this.log[k] = level;
    this.log[k + 1] = slot;
    this.log[k + 2] = was;
  }

  /** A user access's line: lo, hi the address's halves (lo as int32 or uint32). */
  private line(pid: number, lo: number, hi: number, logged: boolean): void {
    const l1 = this.l1;
    if (l1 === null) return;
    // The line's key: its virtual page mixed with the process, and the line in the page (two
    // lines share a key with odds of one in 2^32); then a bijective mix of it (MurmurHash3's
    // finalizer), whose bits place it. The address in 32-bit halves, so that every step is on
    // integers.
    let h =
      (Math.imul(Math.imul(pid, 0x9e3779b1) ^ (lo >>> 12) ^ Math.imul(hi, 0x85ebca6b), 64) +
        ((lo & 4095) >>> 6)) |
      0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h ^= h >>> 16;
    // Set sampling: only the lines whose hash falls in one slot of SAMPLING are modelled, each
    // standing for SAMPLING lines (R. Kessler, M. Hill, D. Wood, "A Comparison of
    // Trace-Sampling Techniques for Multi-Megabyte Caches", IEEE Trans. Computers 43(6), 1994:
    // within 10% at least 90% of the time from a tenth of the sets).
    if ((h & (SAMPLING - 1)) !== 0) return;
    // The slot from the hash's top 21 bits, scaled to the level's size (Lemire's multiply-shift
    // in place of a remainder: a level holds at most 2^21 lines, 128 MiB).
    const slot = (h >>> 11) * SLOT_SCALE;
    const i1 = (slot * l1.length) | 0;
    if (l1[i1] === h) return;
    if (logged) this.logChange(0, i1, l1[i1]);
    l1[i1] = h;
    const l2 = this.l2;
    const i2 = (slot * l2.length) | 0;
    if (l2[i2] === h) {
      this.now += this.stallL2;
      return;
    }
    if (logged) this.logChange(1, i2, l2[i2]);
    l2[i2] = h;
    const llc = this.llc;
    const i3 = (slot * llc.length) | 0;
    if (llc[i3] === h) {
      this.now += this.stallLlc;
      return;
    }
    if (logged) this.logChange(2, i3, llc[i3]);
    llc[i3] = h;
    this.now += this.stallDram;
  }
}
