/**
 * The reverse map of one shadow-paged domain: guest frame (a host mfn) -> the leaf shadow
 * entries that map it (each an int32 the caller chooses: ShadowTables gives slot * 512 + index). Its memory follows what is mapped, not
 * the size of the host: an open-addressing hash from mfn to the head of a chain, and the chains
 * in a pool of nodes (typed arrays that grow by doubling, freed nodes reused). A frame with one
 * mapping costs one hash slot and one node; each further mapping (shared pages, aliases, the
 * kernel's direct map beside a user mapping) one node more.
 */

import type { Mfn } from "../../hw/addr.js";

/** Hash slots at the start; the table doubles when it is two-thirds full. */
const INITIAL_SLOTS = 64;
/** Nodes at the start; the pool doubles when it is full. */
const INITIAL_NODES = 64;
const EMPTY = -1;

export class ReverseMap {
  /** Hash slots: the mfn (EMPTY for none) and the first node of its chain. */
  private keys = new Int32Array(INITIAL_SLOTS).fill(EMPTY);
  private heads = new Int32Array(INITIAL_SLOTS);
  private mask = INITIAL_SLOTS - 1;
  /** 32 - log2(slots): the home slot is the top bits of a Fibonacci hash. */
  private shift = 32 - Math.log2(INITIAL_SLOTS);
  /** Frames with at least one mapping (occupied slots). */
  private frames = 0;
  /** Chain nodes: the location, and the next node (-1 at the end, or the next free node). */
  private locs = new Int32Array(INITIAL_NODES);
  private next = new Int32Array(INITIAL_NODES);
  private freeNode = -1;
  private nodesUsed = 0;
  /** Locations held (one per present leaf entry that maps memory). */
  size = 0;

  /** Frames that have a mapping. */
  get frameCount(): number {
    return this.frames;
  }

  /** Bytes of the typed arrays (for the footprint's accounting in tests and benchmarks). */
  get bytes(): number {
    return (
      this.keys.byteLength + this.heads.byteLength + this.locs.byteLength + this.next.byteLength
    );
  }

  /**
   * mfn's home slot: the high bits of mfn times 2^32 / phi, which spread runs and strides of
   * mfns alike (the low bits of the product would send mfns 512 apart to one slot).
   */
  private home(mfn: Mfn): number {
    return Math.imul(mfn, 0x9e3779b1) >>> this.shift;
  }

  /** The slot holding mfn, or -1. */
  private find(mfn: Mfn): number {
    const keys = this.keys;
    let s = this.home(mfn);
    for (;;) {
      const k = keys[s];
      if (k === mfn) return s;
      if (k === EMPTY) return -1;
      s = (s + 1) & this.mask;
    }
  }

  /** Record that leaf `loc` maps mfn. */
  add(mfn: Mfn, loc: number): void {
    const node = this.newNode(loc);
    this.size++;
    const slot = this.find(mfn);
    if (slot >= 0) {
      // After the head, so that the first mapping stays first (it is usually the only one).
      const head = this.heads[slot];
      this.next[node] = this.next[head];
      this.next[head] = node;
      return;
    }
    if (3 * (this.frames + 1) > 2 * this.keys.length) this.grow();
    this.next[node] = -1;
    this.insert(mfn, node);
    this.frames++;
  }

  /** Forget that leaf `loc` maps mfn; false when it was not recorded. */
  remove(mfn: Mfn, loc: number): boolean {
    const slot = this.find(mfn);
    if (slot < 0) return false;
    const next = this.next;
    let prev = -1;
    let node = this.heads[slot];
    while (node >= 0 && this.locs[node] !== loc) {
      prev = node;
      node = next[node];
    }
    if (node < 0) return false;
    if (prev >= 0) next[prev] = next[node];
    else if (next[node] >= 0) this.heads[slot] = next[node];
    else this.deleteSlot(slot);
    this.freeNodeAt(node);
    this.size--;
    return true;
  }

  /** The locations mapping mfn, first recorded first (empty when none). */
  mappingsOf(mfn: Mfn): number[] {
    const slot = this.find(mfn);
    const out: number[] = [];
    if (slot < 0) return out;
    for (let node = this.heads[slot]; node >= 0; node = this.next[node]) out.push(this.locs[node]);
    return out;
  }

  /** Every (mfn, locations) pair, in no particular order (for checks). */
  *entries(): IterableIterator<[Mfn, number[]]> {
    for (let s = 0; s < this.keys.length; s++) {
      if (this.keys[s] !== EMPTY) yield [this.keys[s], this.mappingsOf(this.keys[s])];
    }
  }

  private insert(mfn: Mfn, node: number): void {
    const keys = this.keys;
    let s = this.home(mfn);
    while (keys[s] !== EMPTY) s = (s + 1) & this.mask;
    keys[s] = mfn;
    this.heads[s] = node;
  }

  /**
   * Empty slot `hole`, moving later members of its probe run back so that every key stays
   * reachable from its home slot without crossing an empty one (linear probing's deletion).
   */
  private deleteSlot(hole: number): void {
    const keys = this.keys;
    const heads = this.heads;
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
        heads[hole] = heads[s];
        hole = s;
      }
    }
    keys[hole] = EMPTY;
    this.frames--;
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldHeads = this.heads;
    this.keys = new Int32Array(oldKeys.length * 2).fill(EMPTY);
    this.heads = new Int32Array(oldKeys.length * 2);
    this.mask = this.keys.length - 1;
    this.shift--;
    for (let s = 0; s < oldKeys.length; s++) {
      if (oldKeys[s] !== EMPTY) this.insert(oldKeys[s], oldHeads[s]);
    }
  }

  private newNode(loc: number): number {
    let node = this.freeNode;
    if (node >= 0) this.freeNode = this.next[node];
    else {
      if (this.nodesUsed === this.locs.length) {
        const locs = new Int32Array(this.locs.length * 2);
        locs.set(this.locs);
        this.locs = locs;
        const next = new Int32Array(this.next.length * 2);
        next.set(this.next);
        this.next = next;
      }
      node = this.nodesUsed++;
    }
    this.locs[node] = loc;
    return node;
  }

  private freeNodeAt(node: number): void {
    this.next[node] = this.freeNode;
    this.freeNode = node;
  }
}
