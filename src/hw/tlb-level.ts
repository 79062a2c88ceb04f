/**
 * One set-associative TLB array: lookups, fills with true LRU replacement by a use stamp,
 * invalidation, and read-only views for checkers. The key layout is tlb.ts's (two int32 words),
 * the slot layout tlb-layout.ts's.
 */

import { MASK_ALL, MASK_WRITES } from "./access.js";
import type * as Layout from "./tlb-layout.js";

/** keyHi of an empty slot: matches no lookup. */
const EMPTY = -1;

/** keyHi of page number `pn` (in units of the entry's size) under `tag`. */
export function keyHiOf(tag: number, pn: number): number {
  return tag * 65536 + Math.floor(pn / 1048576);
}

/** keyLo of page number `pn` of size `sizeCode`. */
export function keyLoOf(sizeCode: number, pn: number): number {
  return sizeCode * 1048576 + (pn % 1048576);
}

// Local copies of the layout (tlb-layout.ts says why); each copy's type is the original's literal
// type, so the compiler rejects a copy that disagrees with its original.
const SLOT: typeof Layout.SLOT = 4;
const F_HI: typeof Layout.F_HI = 0;
const F_GEN: typeof Layout.F_GEN = 1;
const F_FRAME: typeof Layout.F_FRAME = 2;
const F_PERMS: typeof Layout.F_PERMS = 3;
const CLOCK_LIMIT: typeof Layout.CLOCK_LIMIT = 0x40000000;

/** The fewest way hints a hinted level has (TlbLevel.hints). */
const MIN_HINTS = 4096;

/** The widest set whose valid ways fit one int32 mask (TlbLevel.validWays). */
const MASK_WAYS = 31;

/**
 * The way of base..end-1 with the smallest stamp (the first such): the LRU way of a set. Without
 * branches: which way is older is random, so a compare-and-branch loop mispredicts about once
 * per fill. Stamps lie in 0..CLOCK_LIMIT, so a difference of two fits in int32 and its sign bit
 * says which is smaller.
 */
export function lruWay(stamps: Int32Array, base: number, end: number): number {
  let victim = base;
  let oldest = stamps[base];
  for (let s = base + 1; s < end; s++) {
    const diff = stamps[s] - oldest;
    const older = diff >> 31; // -1 when stamps[s] < oldest, else 0
    victim ^= (victim ^ s) & older;
    oldest += diff & older;
  }
  return victim;
}

export class TlbLevel {
  readonly entries: number;
  readonly ways: number;
  readonly sets: number;
  readonly setMask: number;
  /** keyLo of each slot (see tlb-layout.ts). */
  readonly keys: Int32Array;
  /** The rest of each slot, SLOT words (see tlb-layout.ts). */
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
  /**
   * Per set of at most MASK_WAYS ways: bit w set when way w holds a valid entry. Exact while
   * validAt[set] === flushes, for allValid's reason; an older mask is read again from the tags
   * by the next fill (once per set and flush, where reading them on each fill into a set not
   * all valid cost a shadow fault 14% of its instructions: a shadow resync flushes often).
   */
  readonly validWays: Int32Array;
  /** Per set: the value of `flushes` when validWays[set] was last exact, else -1. */
  readonly validAt: Int32Array;
  /** The mask of all the ways of a set, or 0 when a set is too wide for one (fillScan). */
  readonly full: number;
  /** Tag flushes seen (Tlb.flushTag bumps it): an older allValid or validAt mark means nothing. */
  flushes = 0;
  /** The LRU clock: the stamp of the latest use. */
  clock = 0;
  /** Whether any entry was ever filled, so lookups of an unused array cost one load. */
  used = false;
  /**
   * Way hints, when the level has them (see find()): per index (keyLo & hintMask), a slot of the
   * set of every keyLo with that index. Invariant: if the slot holds a valid entry with keyLo and
   * keyHi as stored, no earlier way of its set matches a lookup of that (keyHi, keyLo) under the
   * tag's global key. A scan stores the first way it found for a tagged key (the scan makes it
   * true); write() resets the index of the key it writes to the set's first way (trivially true),
   * since a new entry may come before the hinted way. Nothing else can make an earlier way match:
   * INVLPG only empties slots, and an invalid entry never becomes valid again. This needs every
   * lookup of one keyHi to come with the same globalHi: a TLB's tag fixes its VPID, and so its
   * global tag (tlb-tags.ts), until the tags run out, which flushes every entry.
   */
  readonly hints: Int32Array;
  /** hints.length - 1 (at least setMask, so that an index fixes the set); 0 without hints. */
  readonly hintMask: number;

  constructor(entries: number, ways: number, hinted = false) {
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
    this.validWays = new Int32Array(sets);
    this.validAt = new Int32Array(sets).fill(-1);
    // Built with int32 operations, so that the field holds a small integer, never a double.
    this.full = ways <= MASK_WAYS ? ((1 << ways) - 1) | 0 : 0;
    for (let s = 0; s < entries; s++) this.d[s * SLOT + F_HI] = EMPTY;
    // Twice the entries (rounded up to a power of two), so that few hot keys share an index.
    const hintSize = hinted ? Math.max(MIN_HINTS, 2 ** Math.ceil(Math.log2(2 * entries))) : 1;
    this.hintMask = hintSize - 1;
    this.hints = new Int32Array(hintSize);
    for (let h = 0; h < hintSize; h++) this.hints[h] = (h & this.setMask) * ways;
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
    const s = this.scan(keyHi, keyLo, gen, globalHi, globalGen);
    if (s >= 0) this.touch(s);
    return s;
  }

  /** The first way of keyLo's set holding (keyHi, keyLo) or (globalHi, keyLo), valid; or -1. */
  private scan(
    keyHi: number,
    keyLo: number,
    gen: number,
    globalHi: number,
    globalGen: number,
  ): number {
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
        return s;
      }
    }
    return -1;
  }

  /**
   * The slot lookup() finds for (keyHi, keyLo) or (globalHi, keyLo), without the LRU stamp: the
   * hinted way when it holds the tagged entry, valid (see `hints`), else the first way that
   * matches, which becomes the hint when it is the tagged entry. On a level without hints, a
   * scan. Returns the slot or -1. In a 12-way set the scan costs a compare and a mispredicted
   * exit per way up to the entry; the hint finds a hot page's way with one compare.
   */
  find(keyHi: number, keyLo: number, gen: number, globalHi: number, globalGen: number): number {
    const d = this.d;
    const index = keyLo & this.hintMask;
    const hint = this.hints[index];
    if (
      this.keys[hint] === keyLo &&
      d[hint * SLOT + F_HI] === keyHi &&
      d[hint * SLOT + F_GEN] === gen
    ) {
      return hint;
    }
    const s = this.scan(keyHi, keyLo, gen, globalHi, globalGen);
    if (s >= 0 && this.hintMask !== 0 && d[s * SLOT + F_HI] === keyHi) this.hints[index] = s;
    return s;
  }

  /**
   * Insert an entry, replacing a copy of it (valid or stale), else an invalid slot, else the LRU
   * one. Which invalid slot is taken does not matter: an invalid slot never becomes valid again
   * (generations only grow), so the valid entries and their order are the same either way. It is
   * the first invalid way, so that sets of any width choose alike.
   */
  fill(
    keyHi: number,
    keyLo: number,
    gen: number,
    frame: number,
    perms: number,
    tagGens: Int32Array,
  ): number {
    if (this.full === 0) return this.fillScan(keyHi, keyLo, gen, frame, perms, tagGens);
    const set = keyLo & this.setMask;
    const base = set * this.ways;
    const end = base + this.ways;
    const flushes = this.flushes;
    let valid =
      this.validAt[set] === flushes ? this.validWays[set] : this.validOf(base, end, tagGens);
    let victim = this.copyOf(base, end, keyHi, keyLo); // never keep two copies of one page
    if (victim < 0) {
      const invalid = ~valid & this.full;
      // The lowest invalid way (x & -x isolates the lowest set bit), else the LRU one.
      victim =
        invalid !== 0 ? base + 31 - Math.clz32(invalid & -invalid) : lruWay(this.stamps, base, end);
    }
    this.write(victim, keyHi, keyLo, gen, frame, perms);
    const bit = 1 << (victim - base);
    valid = gen === tagGens[keyHi >>> 16] ? valid | bit : valid & ~bit;
    this.validWays[set] = valid;
    this.validAt[set] = flushes;
    this.allValid[set] = valid === this.full ? flushes : -1;
    return victim;
  }

  /** The slot of base..end-1 holding (keyHi, keyLo), valid or stale, or -1. */
  private copyOf(base: number, end: number, keyHi: number, keyLo: number): number {
    const keys = this.keys;
    const d = this.d;
    for (let s = base; s < end; s++) {
      if (keys[s] === keyLo && d[s * SLOT + F_HI] === keyHi) return s;
    }
    return -1;
  }

  /** Write an entry into slot s and make it the most recently used (every fill's last step). */
  private write(
    s: number,
    keyHi: number,
    keyLo: number,
    gen: number,
    frame: number,
    perms: number,
  ): void {
    const i = s * SLOT;
    this.keys[s] = keyLo;
    // An entry of keyLo may now come before its hinted way: back to the set's first way.
    if (this.hintMask !== 0) this.hints[keyLo & this.hintMask] = (keyLo & this.setMask) * this.ways;
    this.d[i + F_HI] = keyHi;
    this.d[i + F_GEN] = gen;
    this.d[i + F_FRAME] = frame;
    this.d[i + F_PERMS] = perms;
    this.touch(s);
    this.used = true;
  }

  /** The valid ways of the set base..end-1 as a mask (bit w: way w), read from the tags. */
  private validOf(base: number, end: number, tagGens: Int32Array): number {
    const d = this.d;
    let valid = 0;
    for (let s = base; s < end; s++) {
      const i = s * SLOT;
      const hi = d[i + F_HI];
      if (hi !== EMPTY && d[i + F_GEN] === tagGens[hi >>> 16]) valid |= 1 << (s - base);
    }
    return valid;
  }

  /**
   * fill() for sets wider than a mask (more than MASK_WAYS ways): unless the set is all valid,
   * one pass over it reads each way's validity from the tags, finding the copy, the first
   * invalid way and the LRU way.
   */
  private fillScan(
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
      victim = this.copyOf(base, end, keyHi, keyLo);
      if (victim < 0) lru = lruWay(stamps, base, end);
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
    this.write(victim, keyHi, keyLo, gen, frame, perms);
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
    const victim = lruWay(stamps, base, end);
    this.write(victim, keyHi, keyLo, gen, frame, perms);
    if (gen !== tagGens[keyHi >>> 16]) {
      this.allValid[set] = -1;
      this.validWays[set] &= ~(1 << (victim - base));
    }
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
        this.validWays[set] &= ~(1 << (s - base));
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
