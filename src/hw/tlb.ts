/**
 * Translation lookaside buffers: one set-associative level (TlbLevel), and the two-level TLB of
 * one vCPU (Tlb). Defaults after Intel Skylake: L1 64 entries 4-way, L2 (STLB) 1536 entries
 * 12-way. Both levels hold every page size (a documented simplification: real L1 DTLBs keep
 * 2 MiB and 1 GiB entries in separate small arrays). Replacement is true LRU by a use stamp.
 *
 * An entry is keyed by one number, exact below 2^53:
 *   key = tag * 2^38 + sizeCode * 2^36 + vpnOfSize
 * where tag identifies the address space (VPID and PCID, or a VPID's global pages), sizeCode is
 * 0/1/2 for 4 KiB/2 MiB/1 GiB and vpnOfSize is the virtual page number in units of that size.
 * The set index is the low bits of vpnOfSize.
 *
 * Invalidation is by generation: an entry is valid while its stored generation equals its tag's
 * current generation, so flushing a tag (a CR3 write, a VPID flush) is one increment and never
 * touches the slots. INVLPG clears the few slots that can hold the address.
 */

import { MASK_ALL, MASK_WRITES } from "./access.js";

/** Tags in use at once: VPID x PCID pairs, plus one global tag per VPID. */
export const MAX_TAGS = 1 << 15;
const TAG_UNIT = 2 ** 38;
const SIZE_UNIT = 2 ** 36;
/** Slot key of an empty slot: matches no lookup. */
const EMPTY = -1;

export class TlbLevel {
  readonly entries: number;
  readonly ways: number;
  readonly sets: number;
  private readonly setMask: number;
  readonly keys: Float64Array;
  readonly gens: Int32Array;
  /** First 4 KiB frame of the page an entry maps. */
  readonly frames: Float64Array;
  /** Permission mask of the entry (writes left out while the page is clean). */
  readonly perms: Uint8Array;
  private readonly stamps: Float64Array;
  private clock = 0;
  /** Whether a 2 MiB or 1 GiB entry was ever filled, so lookups can skip those sizes. */
  hasLarge = false;
  /** Scratch output of lookup(): the slot that hit. */
  slot = -1;

  constructor(entries: number, ways: number) {
    if (!Number.isInteger(entries) || !Number.isInteger(ways) || ways < 1 || entries < ways) {
      throw new RangeError(`a TLB needs entries >= ways >= 1, got ${entries} entries ${ways} ways`);
    }
    const sets = entries / ways;
    if (!Number.isInteger(sets) || (sets & (sets - 1)) !== 0) {
      throw new RangeError(`TLB sets (entries / ways) must be a power of two, got ${sets}`);
    }
    this.entries = entries;
    this.ways = ways;
    this.sets = sets;
    this.setMask = sets - 1;
    this.keys = new Float64Array(entries).fill(EMPTY);
    this.gens = new Int32Array(entries);
    this.frames = new Float64Array(entries);
    this.perms = new Uint8Array(entries);
    this.stamps = new Float64Array(entries);
  }

  /**
   * Find the entry for `key` (or `globalKey`), valid under generation `gen` (or `globalGen`).
   * Returns the slot, or -1. Bumps the slot's LRU stamp on a hit.
   */
  lookup(vpnOfSize: number, key: number, gen: number, globalKey: number, globalGen: number) {
    const base = (vpnOfSize & this.setMask) * this.ways;
    const end = base + this.ways;
    const keys = this.keys;
    for (let s = base; s < end; s++) {
      const k = keys[s];
      if ((k === key && this.gens[s] === gen) || (k === globalKey && this.gens[s] === globalGen)) {
        this.stamps[s] = ++this.clock;
        return s;
      }
    }
    return -1;
  }

  /** Insert an entry, evicting an invalid or the least recently used one in its set. */
  fill(
    vpnOfSize: number,
    key: number,
    gen: number,
    frame: number,
    perms: number,
    tagGens: Int32Array,
  ) {
    const base = (vpnOfSize & this.setMask) * this.ways;
    const end = base + this.ways;
    let same = -1;
    let invalid = -1;
    let lru = base;
    let oldest = Number.POSITIVE_INFINITY;
    for (let s = base; s < end; s++) {
      const k = this.keys[s];
      if (k === key) {
        same = s; // a stale copy of the same page: replace it, never keep two
        break;
      }
      if (k === EMPTY || this.gens[s] !== tagGens[Math.floor(k / TAG_UNIT)]) {
        if (invalid < 0) invalid = s;
      } else if (this.stamps[s] < oldest) {
        oldest = this.stamps[s];
        lru = s;
      }
    }
    const victim = same >= 0 ? same : invalid >= 0 ? invalid : lru;
    this.keys[victim] = key;
    this.gens[victim] = gen;
    this.frames[victim] = frame;
    this.perms[victim] = perms;
    this.stamps[victim] = ++this.clock;
    if (key % TAG_UNIT >= SIZE_UNIT) this.hasLarge = true;
    return victim;
  }

  /** Drop the entry for `key` if its set holds it (INVLPG). */
  invalidate(vpnOfSize: number, key: number): void {
    const base = (vpnOfSize & this.setMask) * this.ways;
    for (let s = base; s < base + this.ways; s++) if (this.keys[s] === key) this.keys[s] = EMPTY;
  }

  /** Valid entries, for reports and tests (walks every slot: not for the hot path). */
  validEntries(tagGens: Int32Array): number {
    let n = 0;
    for (let s = 0; s < this.entries; s++) {
      const k = this.keys[s];
      if (k !== EMPTY && this.gens[s] === tagGens[Math.floor(k / TAG_UNIT)]) n++;
    }
    return n;
  }

  /** The tag, size code and vpnOfSize of a slot's key (for the step API and checks). */
  static decodeKey(key: number): { tag: number; sizeCode: number; vpnOfSize: number } {
    const tag = Math.floor(key / TAG_UNIT);
    const rest = key - tag * TAG_UNIT;
    const sizeCode = Math.floor(rest / SIZE_UNIT);
    return { tag, sizeCode, vpnOfSize: rest - sizeCode * SIZE_UNIT };
  }
}

/** The key of an entry: see the layout at the top of this file. */
export function tlbKey(tag: number, sizeCode: number, vpnOfSize: number): number {
  return tag * TAG_UNIT + sizeCode * SIZE_UNIT + vpnOfSize;
}

/** Permission mask to cache for a walk's result: a clean page gets no write permission, so
 *  that the first write misses and walks again to set D, as the hardware does. */
export function cachedPerms(allowed: number, dirty: boolean): number {
  return dirty ? allowed & MASK_ALL : allowed & ~MASK_WRITES;
}

/** Where a lookup found its translation. */
export const TLB_MISS = 0;
export const TLB_L1 = 1;
export const TLB_L2 = 2;

/**
 * The two TLB levels of one vCPU and the tag generations they share. Tags are allocated by the
 * owner (see cpu.ts); this class only stores and invalidates.
 */
export class Tlb {
  readonly l1: TlbLevel;
  readonly l2: TlbLevel;
  /** Current generation of each tag. */
  readonly tagGens = new Int32Array(MAX_TAGS);
  /** Scratch outputs of lookup(): the frame and permission mask found. */
  frame = 0;
  perms = 0;

  constructor(l1Entries = 64, l1Ways = 4, l2Entries = 1536, l2Ways = 12) {
    this.l1 = new TlbLevel(l1Entries, l1Ways);
    this.l2 = new TlbLevel(l2Entries, l2Ways);
  }

  /** Flush every entry of a tag: one increment, no slot touched. */
  flushTag(tag: number): void {
    this.tagGens[tag]++;
  }

  /**
   * Look up 4 KiB page `vpn` for address-space tag `tag` (global entries under `globalTag`).
   * Returns TLB_L1, TLB_L2 or TLB_MISS; on a hit this.frame is the 4 KiB frame and this.perms
   * the permission mask. An L2 hit is copied into L1.
   */
  lookup(vpn: number, tag: number, globalTag: number): number {
    const gen = this.tagGens[tag];
    const ggen = this.tagGens[globalTag];
    const l1 = this.l1;
    let s = l1.lookup(vpn, tlbKey(tag, 0, vpn), gen, tlbKey(globalTag, 0, vpn), ggen);
    if (s >= 0) {
      this.frame = l1.frames[s];
      this.perms = l1.perms[s];
      return TLB_L1;
    }
    if (l1.hasLarge && this.lookupLarge(l1, vpn, tag, globalTag, gen, ggen)) return TLB_L1;
    const l2 = this.l2;
    s = l2.lookup(vpn, tlbKey(tag, 0, vpn), gen, tlbKey(globalTag, 0, vpn), ggen);
    if (s >= 0) {
      this.frame = l2.frames[s];
      this.perms = l2.perms[s];
      l1.fill(vpn, l2.keys[s], l2.gens[s], this.frame, this.perms, this.tagGens);
      return TLB_L2;
    }
    if (l2.hasLarge && this.lookupLarge(l2, vpn, tag, globalTag, gen, ggen)) {
      const base = l2.frames[this.largeSlot];
      const sizeCode = this.largeSize;
      const vpnOfSize = sizeCode === 1 ? Math.floor(vpn / 512) : Math.floor(vpn / 262144);
      l1.fill(
        vpnOfSize,
        l2.keys[this.largeSlot],
        l2.gens[this.largeSlot],
        base,
        this.perms,
        this.tagGens,
      );
      return TLB_L2;
    }
    return TLB_MISS;
  }

  private largeSlot = -1;
  private largeSize = 0;

  /** Probe a level for a 2 MiB, then a 1 GiB entry covering `vpn`. */
  private lookupLarge(
    level: TlbLevel,
    vpn: number,
    tag: number,
    globalTag: number,
    gen: number,
    ggen: number,
  ): boolean {
    for (let sizeCode = 1; sizeCode <= 2; sizeCode++) {
      const pagesPerEntry = sizeCode === 1 ? 512 : 262144;
      const vpnOfSize = Math.floor(vpn / pagesPerEntry);
      const s = level.lookup(
        vpnOfSize,
        tlbKey(tag, sizeCode, vpnOfSize),
        gen,
        tlbKey(globalTag, sizeCode, vpnOfSize),
        ggen,
      );
      if (s >= 0) {
        this.largeSlot = s;
        this.largeSize = sizeCode;
        this.frame = level.frames[s] + (vpn % pagesPerEntry);
        this.perms = level.perms[s];
        return true;
      }
    }
    return false;
  }

  /**
   * Insert the translation of `vpn` found by a walk: `frame` is the page's first 4 KiB frame,
   * `level` its size (1, 2, 3), into both levels under `tag`.
   */
  fill(vpn: number, tag: number, level: number, firstFrame: number, perms: number): void {
    const sizeCode = level - 1;
    const vpnOfSize =
      sizeCode === 0 ? vpn : sizeCode === 1 ? Math.floor(vpn / 512) : Math.floor(vpn / 262144);
    const key = tlbKey(tag, sizeCode, vpnOfSize);
    const gen = this.tagGens[tag];
    this.l2.fill(vpnOfSize, key, gen, firstFrame, perms, this.tagGens);
    this.l1.fill(vpnOfSize, key, gen, firstFrame, perms, this.tagGens);
  }

  /** Drop any entry for the page of `vpn` under `tag` or `globalTag`, of every size (INVLPG). */
  invalidatePage(vpn: number, tag: number, globalTag: number): void {
    for (let sizeCode = 0; sizeCode <= 2; sizeCode++) {
      const vpnOfSize =
        sizeCode === 0 ? vpn : sizeCode === 1 ? Math.floor(vpn / 512) : Math.floor(vpn / 262144);
      const key = tlbKey(tag, sizeCode, vpnOfSize);
      const globalKey = tlbKey(globalTag, sizeCode, vpnOfSize);
      this.l1.invalidate(vpnOfSize, key);
      this.l1.invalidate(vpnOfSize, globalKey);
      this.l2.invalidate(vpnOfSize, key);
      this.l2.invalidate(vpnOfSize, globalKey);
    }
  }
}
