/**
 * A hash from non-negative int32 keys to int32 values in one typed array (open addressing,
 * linear probing), for the shadow code's hot lookups: the reverse map's frames (rmap.ts), the
 * pool's frames by slot and the guest frames shadowed as tables (tables.ts). A lookup is a few
 * integer operations and usually one compare; nothing is allocated but the array, which doubles
 * when two-thirds full.
 *
 * A key and its value sit side by side, so that a lookup touches one cache line.
 */

const EMPTY = -1;
const INITIAL_SLOTS = 64;

export class IntMap {
  /** Per slot, [2s] the key (EMPTY for none) and [2s+1] its value. */
  private slots: Int32Array;
  private mask: number;
  /** 32 - log2(slots): a key's home slot is the top bits of a Fibonacci hash. */
  private shift: number;
  /** Keys held. */
  size = 0;

  /** Room for `expected` keys without growing (at least 64 slots). */
  constructor(expected = 0) {
    let slots = INITIAL_SLOTS;
    while (3 * expected > 2 * slots) slots *= 2;
    this.slots = IntMap.emptySlots(slots);
    this.mask = slots - 1;
    this.shift = 32 - Math.log2(slots);
  }

  private static emptySlots(count: number): Int32Array {
    const slots = new Int32Array(2 * count);
    for (let s = 0; s < count; s++) slots[2 * s] = EMPTY;
    return slots;
  }

  /** Bytes of the typed array (for footprint accounting). */
  get bytes(): number {
    return this.slots.byteLength;
  }

  /**
   * key's home slot: the high bits of key times 2^32 / phi, which spread runs and strides of
   * keys alike (the low bits of the product would send keys 512 apart to one slot). Spread
   * matters more than locality: with linear probing, a run of keys kept in neighbouring slots
   * is one long cluster that every lookup of an absent key landing in it walks to its end.
   */
  private home(key: number): number {
    return Math.imul(key, 0x9e3779b1) >>> this.shift;
  }

  /** The slot holding key, or -1 (always for a negative key: -1 marks an empty slot). */
  find(key: number): number {
    if (key < 0) return -1;
    const slots = this.slots;
    const mask = this.mask;
    let s = this.home(key);
    for (;;) {
      const k = slots[2 * s];
      if (k === key) return s;
      if (k === EMPTY) return -1;
      s = (s + 1) & mask;
    }
  }

  /** key's value, or `missing` when it has none. */
  get(key: number, missing = -1): number {
    const s = this.find(key);
    return s < 0 ? missing : this.slots[2 * s + 1];
  }

  /** The value in slot `s` (a slot find or insert gave). */
  valueAt(s: number): number {
    return this.slots[2 * s + 1];
  }

  /** Set the value in slot `s`. */
  setValueAt(s: number, value: number): void {
    this.slots[2 * s + 1] = value;
  }

  /** Give key (which must not be held, and must be a non-negative int32) its value; its slot. */
  insert(key: number, value: number): number {
    if (!(key >= 0 && key <= 0x7fffffff && key === (key | 0))) {
      throw new RangeError(`IntMap: key ${key} is not a non-negative int32`);
    }
    if (3 * (this.size + 1) > 2 * (this.mask + 1)) this.grow();
    const s = this.place(key);
    this.slots[2 * s + 1] = value;
    this.size++;
    return s;
  }

  /** Set key's value, inserting it when not held. */
  set(key: number, value: number): void {
    const s = this.find(key);
    if (s >= 0) this.slots[2 * s + 1] = value;
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
    for (let s = 0; s <= this.mask; s++) {
      if (this.slots[2 * s] !== EMPTY) yield [this.slots[2 * s], this.slots[2 * s + 1]];
    }
  }

  /** The empty slot key goes to (its home or the first empty one after it); sets its key. */
  private place(key: number): number {
    const slots = this.slots;
    let s = this.home(key);
    while (slots[2 * s] !== EMPTY) s = (s + 1) & this.mask;
    slots[2 * s] = key;
    return s;
  }

  /**
   * Empty slot `hole`, moving later members of its probe run back so that every key stays
   * reachable from its home slot without crossing an empty one (linear probing's deletion).
   */
  deleteSlot(hole: number): void {
    const slots = this.slots;
    const mask = this.mask;
    let s = hole;
    for (;;) {
      s = (s + 1) & mask;
      const k = slots[2 * s];
      if (k === EMPTY) break;
      const home = this.home(k);
      // k may move to the hole when its home is not in (hole, s] (cyclically).
      if ((s > hole && (home <= hole || home > s)) || (s < hole && home <= hole && home > s)) {
        slots[2 * hole] = k;
        slots[2 * hole + 1] = slots[2 * s + 1];
        hole = s;
      }
    }
    slots[2 * hole] = EMPTY;
    this.size--;
  }

  private grow(): void {
    const old = this.slots;
    const count = this.mask + 1;
    this.slots = IntMap.emptySlots(2 * count);
    this.mask = 2 * count - 1;
    this.shift--;
    for (let s = 0; s < count; s++) {
      if (old[2 * s] !== EMPTY) this.slots[2 * this.place(old[2 * s]) + 1] = old[2 * s + 1];
    }
  }
}
