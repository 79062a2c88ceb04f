/**
 * The two-level TLB of one vCPU (Tlb), of set-associative arrays (TlbLevel, tlb-level.ts). Defaults after Intel Skylake: L1 64 entries 4-way for 4 KiB pages beside 32
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

import { DOUBLE_ZERO } from "./double-zero.js";
import { F_FRAME, F_GEN, F_HI, F_PERMS, SLOT } from "./tlb-layout.js";
import { keyHiOf, keyLoOf, TlbLevel } from "./tlb-level.js";

/** Tags in use at once: VPID x PCID pairs, plus one global tag per VPID. */
export const MAX_TAGS = 1 << 15;
/** Tags the per-tag arrays start with room for (they grow to MAX_TAGS as tags are handed out). */
const INITIAL_TAGS = 16;
/** Entries and ways of the L1 large-page (2 MiB / 1 GiB) array. */
export const L1_LARGE_ENTRIES = 32;
export const L1_LARGE_WAYS = 4;

/** Page numbers per entry of each size code, in 4 KiB pages. */
export const PAGES_PER_SIZE = [1, 512, 262144] as const;

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
  /**
   * Current generation of each tag. The per-tag arrays grow with the tags handed out (haveTags),
   * up to MAX_TAGS: a vCPU uses a handful, and MAX_TAGS of each were 640 KiB a vCPU, most of a
   * small domain's memory when a run has hundreds of them.
   */
  tagGens = new Int32Array(INITIAL_TAGS);
  /**
   * Per tag, the range of 4 KiB page numbers covered by large-page entries filled since the
   * tag's last flush: lookups outside it skip the large-page probes (a filter, never a result).
   */
  largeFirst = new Float64Array(INITIAL_TAGS).fill(Number.POSITIVE_INFINITY);
  largeLast = new Float64Array(INITIAL_TAGS).fill(Number.NEGATIVE_INFINITY);
  /** Scratch outputs of lookup(): the 4 KiB frame and permission mask found. */
  frame = DOUBLE_ZERO;
  perms = 0;

  constructor(l1Entries = 64, l1Ways = 4, l2Entries = 1536, l2Ways = 12) {
    this.l1 = new TlbLevel(l1Entries, l1Ways);
    // L2 has way hints (TlbLevel.find): its 12-way scan was most of an L2 hit. L1's 4 ways
    // scan faster than a hint is checked and kept (measured: 1.06x the time per access).
    this.l2 = new TlbLevel(l2Entries, l2Ways, true);
    this.l1Large = new TlbLevel(
      Math.min(L1_LARGE_ENTRIES, l1Entries),
      Math.min(L1_LARGE_WAYS, l1Ways),
    );
    this.l2Large = new TlbLevel(l2Entries, l2Ways);
  }

  /** Tags the per-tag arrays have room for. */
  get tagCapacity(): number {
    return this.tagGens.length;
  }

  /**
   * Room for tags 0..count-1 (TlbTags calls this before handing a tag out, never during an
   * access): the arrays double, a new tag starting at generation 0 with no large pages.
   */
  haveTags(count: number): void {
    let size = this.tagGens.length;
    if (count <= size) return;
    while (size < count) size *= 2;
    size = Math.min(size, MAX_TAGS);
    const gens = new Int32Array(size);
    gens.set(this.tagGens);
    const first = new Float64Array(size).fill(Number.POSITIVE_INFINITY);
    first.set(this.largeFirst);
    const last = new Float64Array(size).fill(Number.NEGATIVE_INFINITY);
    last.set(this.largeLast);
    this.tagGens = gens;
    this.largeFirst = first;
    this.largeLast = last;
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
