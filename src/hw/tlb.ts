/**
 * Translation lookaside buffers: one set-associative array (TlbLevel), and the two-level TLB of
 * one vCPU (Tlb). Defaults after Intel Skylake: L1 64 entries 4-way for 4 KiB pages beside 32
 * entries 4-way for 2 MiB and 1 GiB pages; L2 (STLB) 1536 entries 12-way, with a large-page
 * array of the same shape (Skylake's STLB holds 2 MiB pages in its 1536 entries; a separate
 * array keeps 4 KiB sets free of them, a documented simplification). Replacement is true LRU by
 * a use stamp.
 *
 * An entry is keyed by two int32 words, so that a lookup compares small integers only:
 *   keyHi = tag * 2^16 + (page number bits 20..35)     tag: the address space (VPID x PCID,
 *   keyLo = sizeCode * 2^20 + (page number bits 0..19)      or a VPID's global pages)
 * where the page number is in units of the entry's size (sizeCode 0/1/2 = 4 KiB/2 MiB/1 GiB).
 * For a 4 KiB page of gva, bits 0..19 are (gva mod 2^32) >>> 12 and bits 20..35 are gva >> 32.
 * The set index is the low bits of keyLo's page number.
 *
 * Invalidation is by generation: an entry is valid while its stored generation equals its tag's
 * current generation, so flushing a tag (a CR3 write, a VPID flush) is one increment and never
 * touches the slots. INVLPG clears the few slots that can hold the address.
 */

import { MASK_ALL, MASK_WRITES } from "./access.js";

/** Tags in use at once: VPID x PCID pairs, plus one global tag per VPID. */
export const MAX_TAGS = 1 << 15;
/** keyHi of an empty slot: matches no lookup. */
const EMPTY = -1;

/** Entries and ways of the L1 large-page (2 MiB / 1 GiB) array. */
export const L1_LARGE_ENTRIES = 32;
export const L1_LARGE_WAYS = 4;

/** Page numbers per entry of each size code, in 4 KiB pages. */
export const PAGES_PER_SIZE = [1, 512, 262144] as const;

/** keyHi of page number `pn` (in units of the entry's size) under `tag`. */
export function keyHiOf(tag: number, pn: number): number {
  return tag * 65536 + Math.floor(pn / 1048576);
}

/** keyLo of page number `pn` of size `sizeCode`. */
export function keyLoOf(sizeCode: number, pn: number): number {
  return sizeCode * 1048576 + (pn % 1048576);
}

/**
 * Slot layout, in three arrays so that each scan reads only what it compares:
 * - keys[s]: keyLo. A probe scans a set's keyLo words, one or two cache lines for 12 ways.
 * - d[s * SLOT + ...]: [F_HI] keyHi (EMPTY when unused)  [F_GEN] generation
 *   [F_FRAME] first frame  [F_PERMS] permission mask; read once a keyLo matches.
 * - stamps[s]: LRU stamp (larger = more recent); a fill scans a set's stamps for the oldest.
 */
export const SLOT = 4;
export const F_HI = 0;
export const F_GEN = 1;
export const F_FRAME = 2;
export const F_PERMS = 3;
/** LRU stamps are renumbered when the clock reaches 2^30, far from int32 overflow. */
export const CLOCK_LIMIT = 0x40000000;

export class TlbLevel {
  readonly entries: number;
  readonly ways: number;
  readonly sets: number;
  readonly setMask: number;
  /** keyLo of each slot (see the layout above). */
  readonly keys: Int32Array;
  /** The rest of each slot, SLOT words (see the layout above). */
  readonly d: Int32Array;
  /** LRU stamp of each slot. */
  readonly stamps: Int32Array;
  /**
   * Per set: the value of `flushes` when every way of the set last held a valid entry, else -1.
   * While it is current, a fill skips the validity test of each way (a tag lookup per way):
   * entries only become invalid through a flush (which bumps `flushes`) or invalidate() (which
   * clears the mark).
   */
  readonly allValid: Int32Array;
  /** Tag flushes seen (Tlb.flushTag bumps it): an older allValid mark means nothing. */
  flushes = 0;
  /** The LRU clock: the stamp of the latest use. */
  clock = 0;
  /** Whether any entry was ever filled, so lookups of an unused array cost one load. */
  used = false;

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
    this.keys = new Int32Array(entries);
    this.d = new Int32Array(entries * SLOT);
    this.stamps = new Int32Array(entries);
    this.allValid = new Int32Array(sets).fill(-1);
    for (let s = 0; s < entries; s++) this.d[s * SLOT + F_HI] = EMPTY;
  }

  /** Mark slot s as the most recently used (the vCPU's hit path writes this out). */
  touch(s: number): void {
    this.stamps[s] = ++this.clock;
    if (this.clock >= CLOCK_LIMIT) this.renumber();
  }

  /** Compress the stamps to 0..entries-1, keeping their order (every 2^30 uses). */
  renumber(): void {
    const stamps = this.stamps;
    const order = Array.from({ length: this.entries }, (_, s) => s);
    order.sort((x, y) => stamps[x] - stamps[y]);
    order.forEach((s, rank) => {
      stamps[s] = rank;
    });
    this.clock = this.entries;
  }

  /**
   * Find the entry (keyHi, keyLo) or (globalHi, keyLo), valid under generation `gen` (or
   * `globalGen`). Returns the slot, or -1. Bumps the slot's LRU stamp on a hit.
   */
  lookup(keyHi: number, keyLo: number, gen: number, globalHi: number, globalGen: number): number {
    const keys = this.keys;
    const d = this.d;
    const base = (keyLo & this.setMask) * this.ways;
    const end = base + this.ways;
    for (let s = base; s < end; s++) {
      if (keys[s] !== keyLo) continue;
      const i = s * SLOT;
      const hi = d[i + F_HI];
      if (
        (hi === keyHi && d[i + F_GEN] === gen) ||
        (hi === globalHi && d[i + F_GEN] === globalGen)
      ) {
        this.touch(s);
        return s;
      }
    }
    return -1;
  }

  /**
   * Insert an entry, replacing a copy of it (valid or stale), else an invalid slot, else the LRU
   * one. Which invalid slot is taken does not matter: an invalid slot never becomes valid again
   * (generations only grow), so the valid entries and their order are the same either way.
   */
  fill(
    keyHi: number,
    keyLo: number,
    gen: number,
    frame: number,
    perms: number,
    tagGens: Int32Array,
  ): number {
    const keys = this.keys;
    const d = this.d;
    const stamps = this.stamps;
    const set = keyLo & this.setMask;
    const base = set * this.ways;
    const end = base + this.ways;
    let victim = -1;
    let oldest = 0x7fffffff;
    let lru = base;
    // Invalid slots seen, and whether the victim is one of them (for the allValid mark).
    let invalid = 0;
    let victimInvalid = false;
    if (this.allValid[set] === this.flushes) {
      // Every way is valid: a copy of this page, else the LRU way.
      for (let s = base; s < end; s++) {
        if (keys[s] === keyLo && d[s * SLOT + F_HI] === keyHi) {
          victim = s;
          break;
        }
        if (stamps[s] < oldest) {
          oldest = stamps[s];
          lru = s;
        }
      }
    } else {
      for (let s = base; s < end; s++) {
        const i = s * SLOT;
        const hi = d[i + F_HI];
        const stale = hi === EMPTY || d[i + F_GEN] !== tagGens[hi >>> 16];
        if (stale) invalid++;
        if (victim < 0 && hi === keyHi && keys[s] === keyLo) {
          victim = s; // never keep two copies of one page
          victimInvalid = stale;
        } else if (stale) {
          if (oldest >= 0) {
            oldest = -1; // the first invalid slot wins over any valid one
            lru = s;
          }
        } else if (stamps[s] < oldest) {
          oldest = stamps[s];
          lru = s;
        }
      }
      if (victim < 0) victimInvalid = oldest < 0;
    }
    if (victim < 0) victim = lru;
    const i = victim * SLOT;
    keys[victim] = keyLo;
    d[i + F_HI] = keyHi;
    d[i + F_GEN] = gen;
    d[i + F_FRAME] = frame;
    d[i + F_PERMS] = perms;
    this.touch(victim);
    this.used = true;
    if (gen !== tagGens[keyHi >>> 16]) this.allValid[set] = -1;
    else if (invalid === (victimInvalid ? 1 : 0)) this.allValid[set] = this.flushes;
    return victim;
  }

  /**
   * fill() for an entry the caller knows has no valid copy here (a probe just missed it and
   * nothing filled since): in an all-valid set that is the LRU way, found from the stamps alone.
   */
  fillAbsent(
    keyHi: number,
    keyLo: number,
    gen: number,
    frame: number,
    perms: number,
    tagGens: Int32Array,
  ): void {
    const set = keyLo & this.setMask;
    if (this.allValid[set] !== this.flushes) {
      this.fill(keyHi, keyLo, gen, frame, perms, tagGens);
      return;
    }
    const stamps = this.stamps;
    const base = set * this.ways;
    const end = base + this.ways;
    let victim = base;
    for (let s = base + 1; s < end; s++) if (stamps[s] < stamps[victim]) victim = s;
    const i = victim * SLOT;
    this.keys[victim] = keyLo;
    this.d[i + F_HI] = keyHi;
    this.d[i + F_GEN] = gen;
    this.d[i + F_FRAME] = frame;
    this.d[i + F_PERMS] = perms;
    this.touch(victim);
    if (gen !== tagGens[keyHi >>> 16]) this.allValid[set] = -1;
  }

  /** Drop the entry (keyHi, keyLo) if its set holds it (INVLPG). */
  invalidate(keyHi: number, keyLo: number): void {
    const d = this.d;
    const set = keyLo & this.setMask;
    const base = set * this.ways;
    for (let s = base; s < base + this.ways; s++) {
      const i = s * SLOT;
      if (d[i + F_HI] === keyHi && this.keys[s] === keyLo) {
        d[i + F_HI] = EMPTY;
        this.allValid[set] = -1;
      }
    }
  }

  /** Whether slot s holds a valid entry. */
  isValid(s: number, tagGens: Int32Array): boolean {
    const hi = this.d[s * SLOT + F_HI];
    return hi !== EMPTY && this.d[s * SLOT + F_GEN] === tagGens[hi >>> 16];
  }

  /** Valid entries, for reports and tests (walks every slot: not for the hot path). */
  validEntries(tagGens: Int32Array): number {
    let n = 0;
    for (let s = 0; s < this.entries; s++) if (this.isValid(s, tagGens)) n++;
    return n;
  }

  frameOf(s: number): number {
    return this.d[s * SLOT + F_FRAME];
  }

  permsOf(s: number): number {
    return this.d[s * SLOT + F_PERMS];
  }

  /** The tag, size code and page number (in units of its size) of slot s. */
  decode(s: number): { tag: number; sizeCode: number; pageNumber: number } {
    const hi = this.d[s * SLOT + F_HI];
    const lo = this.keys[s];
    return {
      tag: hi >>> 16,
      sizeCode: lo >>> 20,
      pageNumber: (hi & 0xffff) * 1048576 + (lo & 0xfffff),
    };
  }
}

/**
 * Permission mask to cache for a walk's result: a clean page gets no write permission, so that
 * the first write misses and walks again to set D, as the hardware does.
 */
export function cachedPerms(allowed: number, dirty: boolean): number {
  return dirty ? allowed & MASK_ALL : allowed & ~MASK_WRITES;
}

/** Where a lookup found its translation. */
export const TLB_MISS = 0;
export const TLB_L1 = 1;
export const TLB_L2 = 2;

/**
 * The two TLB levels of one vCPU and the tag generations they share. Tags are allocated by the
 * owner (see cpu.ts); this class only stores and invalidates. Lookup order: L1 4 KiB, L2 4 KiB,
 * then the large-page arrays, so that a 4 KiB workload never pays for large-page probes. (The
 * vCPU's access path writes out the two 4 KiB probes of lookup(), which is their reference.)
 */
export class Tlb {
  readonly l1: TlbLevel;
  readonly l2: TlbLevel;
  readonly l1Large: TlbLevel;
  readonly l2Large: TlbLevel;

  /** Every array with a name, for checkers that visit each entry (cold). */
  named(): [string, TlbLevel][] {
    return [
      ["L1", this.l1],
      ["L2", this.l2],
      ["L1 large", this.l1Large],
      ["L2 large", this.l2Large],
    ];
  }
  /** Current generation of each tag. */
  readonly tagGens = new Int32Array(MAX_TAGS);
  /**
   * Per tag, the range of 4 KiB page numbers covered by large-page entries filled since the
   * tag's last flush: lookups outside it skip the large-page probes (a filter, never a result).
   */
  private readonly largeFirst = new Float64Array(MAX_TAGS).fill(Number.POSITIVE_INFINITY);
  private readonly largeLast = new Float64Array(MAX_TAGS).fill(Number.NEGATIVE_INFINITY);
  /** Scratch outputs of lookup(): the 4 KiB frame and permission mask found. */
  frame = 0;
  perms = 0;

  constructor(l1Entries = 64, l1Ways = 4, l2Entries = 1536, l2Ways = 12) {
    this.l1 = new TlbLevel(l1Entries, l1Ways);
    this.l2 = new TlbLevel(l2Entries, l2Ways);
    this.l1Large = new TlbLevel(
      Math.min(L1_LARGE_ENTRIES, l1Entries),
      Math.min(L1_LARGE_WAYS, l1Ways),
    );
    this.l2Large = new TlbLevel(l2Entries, l2Ways);
  }

  /** Flush every entry of a tag: one increment, no slot touched. */
  flushTag(tag: number): void {
    this.tagGens[tag]++;
    this.l1.flushes++;
    this.l2.flushes++;
    this.l1Large.flushes++;
    this.l2Large.flushes++;
    this.largeFirst[tag] = Number.POSITIVE_INFINITY;
    this.largeLast[tag] = Number.NEGATIVE_INFINITY;
  }

  /** Whether a large-page entry of `tag` may cover 4 KiB page `vpn`. */
  mayHaveLarge(vpn: number, tag: number): boolean {
    return vpn >= this.largeFirst[tag] && vpn <= this.largeLast[tag];
  }

  /**
   * Look up the 4 KiB page `vpn` for tag `tag` (global entries under `globalTag`). Returns
   * TLB_L1, TLB_L2 or TLB_MISS; on a hit this.frame and this.perms are set. An L2 hit is copied
   * into L1.
   */
  lookup(vpn: number, tag: number, globalTag: number): number {
    const keyLo = vpn % 1048576;
    const vpnHigh = Math.floor(vpn / 1048576);
    if (
      this.lookupSmall(tag * 65536 + vpnHigh, keyLo, globalTag * 65536 + vpnHigh, tag, globalTag)
    ) {
      return this.where;
    }
    return this.lookupLarge(vpn, tag, globalTag);
  }

  /** Which level the last lookupSmall hit. */
  where = TLB_MISS;

  /** The two 4 KiB probes. */
  lookupSmall(
    keyHi: number,
    keyLo: number,
    globalHi: number,
    tag: number,
    globalTag: number,
  ): boolean {
    const gen = this.tagGens[tag];
    const ggen = this.tagGens[globalTag];
    let s = this.l1.lookup(keyHi, keyLo, gen, globalHi, ggen);
    if (s >= 0) {
      this.frame = this.l1.frameOf(s);
      this.perms = this.l1.permsOf(s);
      this.where = TLB_L1;
      return true;
    }
    const l2 = this.l2;
    s = l2.lookup(keyHi, keyLo, gen, globalHi, ggen);
    if (s >= 0) {
      this.frame = l2.frameOf(s);
      this.perms = l2.permsOf(s);
      const i = s * SLOT;
      this.l1.fill(l2.d[i + F_HI], keyLo, l2.d[i + F_GEN], this.frame, this.perms, this.tagGens);
      this.where = TLB_L2;
      return true;
    }
    this.where = TLB_MISS;
    return false;
  }

  /** The large-page probes (L1, then L2 copied into L1). Returns TLB_L1, TLB_L2 or TLB_MISS. */
  lookupLarge(vpn: number, tag: number, globalTag: number): number {
    if (!this.mayHaveLarge(vpn, tag) && !this.mayHaveLarge(vpn, globalTag)) return TLB_MISS;
    const gen = this.tagGens[tag];
    const ggen = this.tagGens[globalTag];
    for (let level = 1; level <= 2; level++) {
      const array = level === 1 ? this.l1Large : this.l2Large;
      if (!array.used) continue;
      for (let sizeCode = 1; sizeCode <= 2; sizeCode++) {
        const per = PAGES_PER_SIZE[sizeCode];
        const pn = Math.floor(vpn / per);
        const keyLo = keyLoOf(sizeCode, pn);
        const s = array.lookup(keyHiOf(tag, pn), keyLo, gen, keyHiOf(globalTag, pn), ggen);
        if (s < 0) continue;
        const i = s * SLOT;
        const d = array.d;
        this.frame = d[i + F_FRAME] + (vpn % per);
        this.perms = d[i + F_PERMS];
        if (level === 2) {
          this.l1Large.fill(
            d[i + F_HI],
            keyLo,
            d[i + F_GEN],
            d[i + F_FRAME],
            this.perms,
            this.tagGens,
          );
        }
        return level === 1 ? TLB_L1 : TLB_L2;
      }
    }
    return TLB_MISS;
  }

  /** Insert a 4 KiB translation by its key words (the vCPU's miss path has them at hand). */
  fillSmall(keyHi: number, keyLo: number, tag: number, frame: number, perms: number): void {
    const gen = this.tagGens[tag];
    this.l2.fill(keyHi, keyLo, gen, frame, perms, this.tagGens);
    this.l1.fill(keyHi, keyLo, gen, frame, perms, this.tagGens);
  }

  /** fillSmall() of a page that neither 4 KiB level holds a valid copy of (see fillAbsent). */
  fillSmallAbsent(keyHi: number, keyLo: number, tag: number, frame: number, perms: number): void {
    const gen = this.tagGens[tag];
    this.l2.fillAbsent(keyHi, keyLo, gen, frame, perms, this.tagGens);
    this.l1.fillAbsent(keyHi, keyLo, gen, frame, perms, this.tagGens);
  }

  /**
   * Insert the translation of `vpn` found by a walk: `firstFrame` is the page's first 4 KiB
   * frame, `level` its size (1, 2, 3), into both levels under `tag`.
   */
  fill(vpn: number, tag: number, level: number, firstFrame: number, perms: number): void {
    const sizeCode = level - 1;
    const pn = Math.floor(vpn / PAGES_PER_SIZE[sizeCode]);
    const keyHi = keyHiOf(tag, pn);
    const keyLo = keyLoOf(sizeCode, pn);
    const gen = this.tagGens[tag];
    if (sizeCode === 0) {
      this.l2.fill(keyHi, keyLo, gen, firstFrame, perms, this.tagGens);
      this.l1.fill(keyHi, keyLo, gen, firstFrame, perms, this.tagGens);
      return;
    }
    const first = pn * PAGES_PER_SIZE[sizeCode];
    const last = first + PAGES_PER_SIZE[sizeCode] - 1;
    if (first < this.largeFirst[tag]) this.largeFirst[tag] = first;
    if (last > this.largeLast[tag]) this.largeLast[tag] = last;
    this.l2Large.fill(keyHi, keyLo, gen, firstFrame, perms, this.tagGens);
    this.l1Large.fill(keyHi, keyLo, gen, firstFrame, perms, this.tagGens);
  }

  /** Drop any entry for the page of `vpn` under `tag` or `globalTag`, of every size (INVLPG). */
  invalidatePage(vpn: number, tag: number, globalTag: number): void {
    for (let sizeCode = 0; sizeCode <= 2; sizeCode++) {
      const pn = Math.floor(vpn / PAGES_PER_SIZE[sizeCode]);
      const keyLo = keyLoOf(sizeCode, pn);
      const l1 = sizeCode === 0 ? this.l1 : this.l1Large;
      const l2 = sizeCode === 0 ? this.l2 : this.l2Large;
      l1.invalidate(keyHiOf(tag, pn), keyLo);
      l1.invalidate(keyHiOf(globalTag, pn), keyLo);
      l2.invalidate(keyHiOf(tag, pn), keyLo);
      l2.invalidate(keyHiOf(globalTag, pn), keyLo);
    }
  }
}
