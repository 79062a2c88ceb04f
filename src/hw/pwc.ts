/**
 * A small set-associative cache of translations by address prefix, LRU within a set: the model
 * of the paging-structure caches (SDM Vol. 3A 4.10.3: a prefix of the linear address to the
 * table that translates the rest, with the permissions gathered above it), of the EPT's own
 * upper-level caches, and of the nested TLB (a gfn to its host frame). Typed arrays only.
 *
 * An entry belongs to a TLB tag and is valid while that tag's generation (Tlb.tagGens) is the
 * one it was filled under, so that a CR3 write's flush of a tag drops its entries as it drops its
 * TLB entries; flushAll (INVLPG, INVEPT) drops everything at once by bumping an epoch.
 */

export class PrefixCache {
  /** Sets - 1: the set of a key is its low bits (the sets are a power of two). */
  private readonly setMask: number;
  /** Per slot: the key (a prefix, gfn or page number: a non-negative int32), its tag and gen. */
  private readonly keys: Int32Array;
  private readonly tags: Int32Array;
  private readonly gens: Int32Array;
  private readonly epochs: Int32Array;
  private readonly stamps: Float64Array;
  /** Per slot: the cached frame and two words of whatever the user keeps beside it. */
  private readonly frames: Int32Array;
  private readonly aux: Int32Array;
  private readonly aux2: Int32Array;
  private epoch = 1;
  private clock = 0;
  /** Outputs of a hit. */
  frame = 0;
  bits = 0;
  bits2 = 0;

  constructor(
    readonly entries: number,
    readonly ways: number,
  ) {
    const sets = entries / ways;
    if (!Number.isInteger(sets) || sets < 1 || (sets & (sets - 1)) !== 0) {
      throw new RangeError(`a prefix cache needs a power-of-two number of sets, got ${sets}`);
    }
    this.setMask = sets - 1;
    this.keys = new Int32Array(entries);
    this.tags = new Int32Array(entries);
    this.gens = new Int32Array(entries);
    this.epochs = new Int32Array(entries);
    this.stamps = new Float64Array(entries);
    this.frames = new Int32Array(entries);
    this.aux = new Int32Array(entries);
    this.aux2 = new Int32Array(entries);
  }

  /** Whether (tag, key) is cached under generation gen; a hit sets frame, bits and bits2. */
  lookup(tag: number, gen: number, key: number): boolean {
    const ways = this.ways;
    const base = (key & this.setMask) * ways;
    const keys = this.keys;
    for (let s = base; s < base + ways; s++) {
      if (
        keys[s] === key &&
        this.tags[s] === tag &&
        this.epochs[s] === this.epoch &&
        this.gens[s] === gen
      ) {
        this.stamps[s] = ++this.clock;
        this.frame = this.frames[s];
        this.bits = this.aux[s];
        this.bits2 = this.aux2[s];
        return true;
      }
    }
    return false;
  }

  fill(tag: number, gen: number, key: number, frame: number, bits: number, bits2: number): void {
    const ways = this.ways;
    const base = (key & this.setMask) * ways;
    const stamps = this.stamps;
    let victim = base;
    for (let s = base; s < base + ways; s++) {
      const valid = this.epochs[s] === this.epoch;
      if (valid && this.keys[s] === key && this.tags[s] === tag) {
        victim = s;
        break;
      }
      if (!valid) {
        victim = s;
        break;
      }
      if (stamps[s] < stamps[victim]) victim = s;
    }
    this.keys[victim] = key;
    this.tags[victim] = tag;
    this.gens[victim] = gen;
    this.epochs[victim] = this.epoch;
    stamps[victim] = ++this.clock;
    this.frames[victim] = frame;
    this.aux[victim] = bits;
    this.aux2[victim] = bits2;
  }

  /**
   * Every entry of the current epoch, for checkers (cold): its tag, the generation it was
   * filled under (the caller compares it with its tag's), key, frame and the two words. `visit`
   * returns a problem to stop with, or null.
   */
  forEachEntry(
    visit: (
      tag: number,
      gen: number,
      key: number,
      frame: number,
      bits: number,
      bits2: number,
      slot: number,
    ) => string | null,
  ): string | null {
    for (let s = 0; s < this.entries; s++) {
      if (this.epochs[s] !== this.epoch) continue;
      const problem = visit(
        this.tags[s],
        this.gens[s],
        this.keys[s],
        this.frames[s],
        this.aux[s],
        this.aux2[s],
        s,
      );
      if (problem !== null) return problem;
    }
    return null;
  }

  /** Drop every entry (INVLPG drops a PCID's paging-structure entries; INVEPT all of them). */
  flushAll(): void {
    this.epoch++;
  }
}

/** Entries and ways of each level's paging-structure cache (a recent Intel core's order). */
export const PWC_ENTRIES = 32;
export const PWC_WAYS = 4;

/**
 * One cache per upper level, at index 2..4 (the entries of that level: an L2 entry names an L1
 * table); indices 0 and 1 are unused.
 */
export function pwcLevels(): PrefixCache[] {
  const levels: PrefixCache[] = [];
  for (let l = 0; l <= 4; l++) levels.push(new PrefixCache(PWC_ENTRIES, PWC_WAYS));
  return levels;
}
