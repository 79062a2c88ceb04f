/**
 * A hash from non-negative int32 keys to int32 values in two typed arrays (open addressing,
 * linear probing), for the shadow code's hot lookups: the reverse map's frames (rmap.ts), the
 * pool's frames by slot and the guest frames shadowed as tables (tables.ts). A lookup is a
 * multiply, a shift and usually one compare; nothing is allocated but the arrays, which double
 * when two-thirds full.
 */

const EMPTY = -1;
const INITIAL_SLOTS = 64;

export class IntMap {
  /** The key in each slot (EMPTY for none). */
  private keys: Int32Array;
  /** The value in each slot: read and written by slot (find, insert) on hot paths. */
  values: Int32Array;
  private mask: number;
  /** 32 - log2(slots): a key's home slot is the top bits of a Fibonacci hash. */
  private shift: number;
  /** Keys held. */
  size = 0;

  /** Room for `expected` keys without growing (at least 64 slots). */
  constructor(expected = 0) {
    let slots = INITIAL_SLOTS;
    while (3 * expected > 2 * slots) slots *= 2;
    this.keys = new Int32Array(slots).fill(EMPTY);
    this.values = new Int32Array(slots);
    this.mask = slots - 1;
    this.shift = 32 - Math.log2(slots);
  }

  /** Bytes of the typed arrays (for footprint accounting). */
  get bytes(): number {
    return this.keys.byteLength + this.values.byteLength;
  }

  /**
   * key's home slot: the high bits of key times 2^32 / phi, which spread runs and strides of
   * keys alike (the low bits of the product would send keys 512 apart to one slot).
   */
  private home(key: number): number {
    return Math.imul(key, 0x9e3779b1) >>> this.shift;
  }

  /** The slot holding key, or -1 (always for a negative key: -1 marks an empty slot). */
  find(key: number): number {
    if (key < 0) return -1;
    const keys = this.keys;
    const mask = this.mask;
    let s = this.home(key);
    for (;;) {
      const k = keys[s];
      if (k === key) return s;
      if (k === EMPTY) return -1;
      s = (s + 1) & mask;
    }
  }

  /** key's value, or `missing` when it has none. */
  get(key: number, missing = -1): number {
    const s = this.find(key);
    return s < 0 ? missing : this.values[s];
  }

  /** Give key (which must not be held, and must be a non-negative int32) its value; its slot. */
  insert(key: number, value: number): number {
    if (!(key >= 0 && key <= 0x7fffffff && key === (key | 0))) {
      throw new RangeError(`IntMap: key ${key} is not a non-negative int32`);
    }
    if (3 * (this.size + 1) > 2 * this.keys.length) this.grow();
    const s = this.place(key);
    this.values[s] = value;
    this.size++;
    return s;
  }

  /** Set key's value, inserting it when not held. */
  set(key: number, value: number): void {
    const s = this.find(key);
    if (s >= 0) this.values[s] = value;
    else this.insert(key, value);
  }

  /** Remove key; false when it was not held. */
  delete(key: number): boolean {
    const s = this.find(key);
    if (s < 0) return false;
    this.deleteSlot(s);
    return true;
  }

  /** Every (key, value) pair, in no particular order. */
  *entries(): IterableIterator<[number, number]> {
    for (let s = 0; s < this.keys.length; s++) {
      if (this.keys[s] !== EMPTY) yield [this.keys[s], this.values[s]];
    }
  }

  /** The empty slot key goes to (its home or the first empty one after it); sets its key. */
  private place(key: number): number {
    const keys = this.keys;
    let s = this.home(key);
    while (keys[s] !== EMPTY) s = (s + 1) & this.mask;
    keys[s] = key;
    return s;
  }

  /**
   * Empty slot `hole`, moving later members of its probe run back so that every key stays
   * reachable from its home slot without crossing an empty one (linear probing's deletion).
   */
  deleteSlot(hole: number): void {
    const keys = this.keys;
    const values = this.values;
    const mask = this.mask;
    let s = hole;
    for (;;) {
      s = (s + 1) & mask;
      const k = keys[s];
      if (k === EMPTY) break;
      const home = this.home(k);
      // k may move to the hole when its home is not in (hole, s] (cyclically).
      if ((s > hole && (home <= hole || home > s)) || (s < hole && home <= hole && home > s)) {
        keys[hole] = k;
        values[hole] = values[s];
        hole = s;
      }
    }
    keys[hole] = EMPTY;
    this.size--;
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldValues = this.values;
    this.keys = new Int32Array(oldKeys.length * 2).fill(EMPTY);
    this.values = new Int32Array(oldKeys.length * 2);
    this.mask = this.keys.length - 1;
    this.shift--;
    for (let s = 0; s < oldKeys.length; s++) {
      if (oldKeys[s] !== EMPTY) this.values[this.place(oldKeys[s])] = oldValues[s];
    }
  }
}
