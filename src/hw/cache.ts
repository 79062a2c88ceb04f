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
 * Each level is set-associative with true LRU (a use stamp per way). Modelling choices, each an
 * assumption: fills are inclusive (every level missed gets the line; Skylake-SP's LLC is a
 * non-inclusive victim cache); stores allocate like loads and write-backs are not modelled;
 * there is no prefetcher. The caches are physically tagged: nothing is flushed on a CR3 write
 * or a VM exit, and domains on one physical CPU share them.
 */

/** Where access() found a line. */
export const CACHE_L1 = 0;
export const CACHE_L2 = 1;
export const CACHE_LLC = 2;
export const CACHE_DRAM = 3;

/** Bytes in a cache line; lines per 4 KiB frame. */
export const LINE_BYTES = 64;
export const LINES_PER_FRAME = 64;

/** The shape of one cache level. */
export interface CacheLevelSpec {
  /** Capacity in bytes: ways x sets x 64, with sets a power of two. */
  bytes: number;
  ways: number;
}

export interface CacheGeometry {
  l1: CacheLevelSpec;
  l2: CacheLevelSpec;
  llc: CacheLevelSpec;
}

/** A tag no line has. */
const EMPTY = -1;
/** Stamps are renumbered before they reach 2^30, far from int32 overflow. */
const CLOCK_LIMIT = 0x40000000;

/** One set-associative level. */
export class CacheLevel {
  readonly ways: number;
  readonly sets: number;
  readonly setMask: number;
  /** The line held by each way (set * ways + way), EMPTY when none. */
  readonly lines: Float64Array;
  /** LRU stamp of each way (larger: more recent). */
  readonly stamps: Int32Array;
  private clock = 0;

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
    this.lines = new Float64Array(sets * spec.ways).fill(EMPTY);
    this.stamps = new Int32Array(sets * spec.ways);
  }

  /** Whether the level holds `line` (in set `set`); a hit makes it the most recent of its set. */
  probe(line: number, set: number): boolean {
    const lines = this.lines;
    const base = set * this.ways;
    const end = base + this.ways;
    for (let w = base; w < end; w++) {
      if (lines[w] === line) {
        this.stamps[w] = this.tick();
        return true;
      }
    }
    return false;
  }

  /** Put `line` in set `set` in place of its least recently used way. */
  fill(line: number, set: number): void {
    const stamps = this.stamps;
    const base = set * this.ways;
    const end = base + this.ways;
    let victim = base;
    for (let w = base + 1; w < end; w++) if (stamps[w] < stamps[victim]) victim = w;
    this.lines[victim] = line;
    stamps[victim] = this.tick();
  }

  /** Whether `line` is held, changing nothing (for tests and checkers). */
  holds(line: number): boolean {
    const base = (line % this.sets) * this.ways;
    for (let w = base; w < base + this.ways; w++) if (this.lines[w] === line) return true;
    return false;
  }

  private tick(): number {
    if (this.clock + 1 >= CLOCK_LIMIT) this.renumber();
    return ++this.clock;
  }

  /** Renumber each set's stamps 1..ways in their order, so the clock can restart at ways. */
  private renumber(): void {
    const ways = this.ways;
    const order = new Int32Array(ways);
    for (let base = 0; base < this.lines.length; base += ways) {
      for (let w = 0; w < ways; w++) order[w] = base + w;
      order.sort((a, b) => this.stamps[a] - this.stamps[b]);
      for (let k = 0; k < ways; k++) this.stamps[order[k]] = k + 1;
    }
    this.clock = ways;
  }
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
    const line = mfn * LINES_PER_FRAME + lineInFrame;
    // The set index is the line's low bits: int32 arithmetic keeps them exact.
    const low = (mfn << 6) | lineInFrame;
    const l1 = this.l1;
    const s1 = low & l1.setMask;
    if (l1.probe(line, s1)) return CACHE_L1;
    const l2 = this.l2;
    const s2 = low & l2.setMask;
    if (l2.probe(line, s2)) {
      l1.fill(line, s1);
      return CACHE_L2;
    }
    const llc = this.llc;
    const s3 = low & llc.setMask;
    let level = CACHE_DRAM;
    if (llc.probe(line, s3)) level = CACHE_LLC;
    else llc.fill(line, s3);
    l2.fill(line, s2);
    l1.fill(line, s1);
    return level;
  }

  /** The 64 lines of a 4 KiB frame, in order (a page zeroed or copied): each line's level. */
  accessFrame(mfn: number, counts: Float64Array, base: number): void {
    for (let line = 0; line < LINES_PER_FRAME; line++) counts[base + this.access(mfn, line)]++;
  }
}
