/**
 * The data-cache hierarchy of one physical CPU: L1d, L2 and the last-level cache, through which
 * data accesses, page-walk references (guest, shadow and EPT entries: eight 8-byte entries share
 * a 64-byte line) and the VMM's own table work go, so that a reference costs what the level
 * that holds its line costs.
 *
 *   access(mfn, line) ─> L1d ─hit─> CACHE_L1
 *                         └miss─> L2 ─hit─> CACHE_L2 ──────────────┐
 *                                  └miss─> LLC ─hit─> CACHE_LLC ───┤ the line is filled into
 *                                           └miss─> CACHE_DRAM ────┘ every level it missed
 *
 * A line is named by its host-physical address / 64: mfn * 64 + the line within the frame.
 * Each level is set-associative with true LRU. Modelling choices, each an
 * assumption: fills are inclusive (every level missed gets the line; Skylake-SP's LLC is a
 * non-inclusive victim cache); stores allocate like loads and write-backs are not modelled;
 * there is no prefetcher. The caches are physically tagged: nothing is flushed on a CR3 write
 * or a VM exit, and domains on one physical CPU share them.
 */

import type { CacheGeometry, CacheLevelSpec } from "../config/scenario.js";

/** Where access() found a line. */
export const CACHE_L1 = 0;
export const CACHE_L2 = 1;
export const CACHE_LLC = 2;
export const CACHE_DRAM = 3;

/** Bytes in a cache line; lines per 4 KiB frame. */
export const LINE_BYTES = 64;
export const LINES_PER_FRAME = 64;

/** The tag of an empty way: no line's (a tag is below 2^32 - 1 for any frame number). */
const EMPTY = 0xffffffff;

/**
 * One set-associative level with true LRU. Each set keeps its ways' tags in order of use, the
 * most recent first: a hit moves its tag to the front, a miss drops the last and puts the new
 * tag first. A set is one run of `ways` words, so a lookup reads one or two host cache lines
 * and keeps no stamps.
 */
export class CacheLevel {
  readonly ways: number;
  readonly sets: number;
  readonly setMask: number;
  /**
   * The tags of each set, most recently used first (set * ways + rank): a tag is the line /
   * sets, the line's bits above the set index (with 64 sets or more, at most the frame
   * number); EMPTY where a way holds nothing.
   */
  readonly tags: Uint32Array;
  /**
   * log2(sets) - 6: how the frame number gives the tag. With 64 sets or more, the tag is the
   * frame number shifted right by this; below, shifted left, with the line's high bits.
   */
  private readonly frameShift: number;

  constructor(spec: CacheLevelSpec) {
    const sets = spec.bytes / LINE_BYTES / spec.ways;
    if (!Number.isInteger(sets) || sets < 1 || (sets & (sets - 1)) !== 0) {
      throw new RangeError(
        `a cache of ${spec.bytes} bytes and ${spec.ways} ways has ${sets} sets; it needs a power of two`,
      );
    }
    this.ways = spec.ways;
    this.sets = sets;
    this.setMask = sets - 1;
    this.tags = new Uint32Array(sets * spec.ways).fill(EMPTY);
    this.frameShift = Math.log2(sets) - 6;
  }

  /**
   * Whether the level holds line `lineInFrame` of frame `mfn`; either way the line is then the
   * most recently used of its set (a miss evicts the least recent). Integer operations only.
   */
  lookupOrFill(mfn: number, lineInFrame: number): boolean {
    const set = ((mfn << 6) | lineInFrame) & this.setMask;
    const shift = this.frameShift;
    const tag =
      shift >= 0 ? mfn >>> shift : ((mfn << -shift) | (lineInFrame >>> (shift + 6))) >>> 0;
    return moveToFront(this.tags, set * this.ways, this.ways, tag);
  }

  /**
   * Where line 0 of frame `mfn` goes, as the first of the frame's 64 consecutive sets (with 64
   * sets or more the set index is the line number's low bits, and the frame's lines take 64
   * sets in a row): that set's first way. -1 with fewer sets.
   */
  frameBase(mfn: number): number {
    return this.frameShift >= 0 ? ((mfn << 6) & this.setMask) * this.ways : -1;
  }

  /** The tag of every line of frame `mfn` when the level has 64 sets or more. */
  frameTag(mfn: number): number {
    return mfn >>> this.frameShift;
  }

  /** Whether line `lineInFrame` of frame `mfn` is held, changing nothing (tests, checkers). */
  holds(mfn: number, lineInFrame: number): boolean {
    const line = mfn * LINES_PER_FRAME + lineInFrame;
    const set = line % this.sets;
    const tag = (line - set) / this.sets;
    const base = set * this.ways;
    for (let w = base; w < base + this.ways; w++) if (this.tags[w] === tag) return true;
    return false;
  }
}

/**
 * Looks `tag` up in the set of `ways` tags at `base` (most recently used first) and makes it the
 * first: on a hit the tags before it move down one, on a miss all of them do and the last goes.
 * One pass, each way read and written once. Whether it was there.
 */
function moveToFront(tags: Uint32Array, base: number, ways: number, tag: number): boolean {
  let prev = tags[base];
  if (prev === tag) return true;
  tags[base] = tag;
  const end = base + ways;
  for (let w = base + 1; w < end; w++) {
    const t = tags[w];
    tags[w] = prev;
    if (t === tag) return true;
    prev = t;
  }
  return false;
}

export class DataCache {
  readonly l1: CacheLevel;
  readonly l2: CacheLevel;
  readonly llc: CacheLevel;

  constructor(geometry: CacheGeometry) {
    this.l1 = new CacheLevel(geometry.l1);
    this.l2 = new CacheLevel(geometry.l2);
    this.llc = new CacheLevel(geometry.llc);
  }

  /**
   * An access to line `lineInFrame` (0..63) of host frame `mfn`: the level that held it
   * (CACHE_L1 .. CACHE_DRAM); afterwards every level holds it.
   */
  access(mfn: number, lineInFrame: number): number {
    if (this.l1.lookupOrFill(mfn, lineInFrame)) return CACHE_L1;
    if (this.l2.lookupOrFill(mfn, lineInFrame)) return CACHE_L2;
    if (this.llc.lookupOrFill(mfn, lineInFrame)) return CACHE_LLC;
    return CACHE_DRAM;
  }

  /** The 64 lines of a 4 KiB frame, in order (a page zeroed or copied), counted in `counts`. */
  accessFrame(mfn: number, counts: Float64Array, base: number): void {
    for (let line = 0; line < LINES_PER_FRAME; line++) counts[base + this.access(mfn, line)]++;
  }

  /**
   * The 64 lines of a 4 KiB frame come into every level (a page zeroed or copied whole), in
   * order, as 64 calls of access() would. When every level has 64 sets or more (any real
   * geometry), the frame's lines have one tag per level and take consecutive sets, so the loop
   * steps through them without working out a set and tag per line.
   */
  touchFrame(mfn: number): void {
    const { l1, l2, llc } = this;
    let b1 = l1.frameBase(mfn);
    let b2 = l2.frameBase(mfn);
    let b3 = llc.frameBase(mfn);
    if (b1 < 0 || b2 < 0 || b3 < 0) {
      for (let line = 0; line < LINES_PER_FRAME; line++) this.access(mfn, line);
      return;
    }
    const t1 = l1.frameTag(mfn);
    const t2 = l2.frameTag(mfn);
    const t3 = llc.frameTag(mfn);
    const w1 = l1.ways;
    const w2 = l2.ways;
    const w3 = llc.ways;
    for (let line = 0; line < LINES_PER_FRAME; line++, b1 += w1, b2 += w2, b3 += w3) {
      if (moveToFront(l1.tags, b1, w1, t1)) continue;
      if (moveToFront(l2.tags, b2, w2, t2)) continue;
      moveToFront(llc.tags, b3, w3, t3);
    }
  }
}
