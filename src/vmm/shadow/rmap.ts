/**
 * The reverse map of one shadow-paged domain: guest frame (a host mfn) -> the leaf shadow
 * entries that map it (each an int32 the caller chooses: ShadowTables gives slot * 512 + index).
 * Its memory follows what is mapped, not the size of the host: an int32 hash (int-map.ts) from
 * mfn to the head of a chain, and the chains in a pool of nodes (typed arrays that grow by
 * doubling, freed nodes reused). A frame with one mapping costs one hash slot and one node;
 * each further mapping (shared pages, aliases, the kernel's direct map beside a user mapping)
 * one node more.
 */

import type { Mfn } from "../../hw/addr.js";
import { IntMap } from "./int-map.js";

/** Nodes at the start; the pool doubles when it is full. */
const INITIAL_NODES = 64;

export class ReverseMap {
  /** mfn -> the first node of its chain, for frames with at least one mapping. */
  private readonly heads = new IntMap();
  /** Chain nodes: the location, and the next node (-1 at the end, or the next free node). */
  private locs = new Int32Array(INITIAL_NODES);
  private next = new Int32Array(INITIAL_NODES);
  private freeNode = -1;
  private nodesUsed = 0;
  /** Locations held (one per present leaf entry that maps memory). */
  size = 0;

  /** Frames that have a mapping. */
  get frameCount(): number {
    return this.heads.size;
  }

  /** Bytes of the typed arrays (for the footprint's accounting in tests and benchmarks). */
  get bytes(): number {
    return this.heads.bytes + this.locs.byteLength + this.next.byteLength;
  }

  /** Record that leaf `loc` maps mfn. */
  add(mfn: Mfn, loc: number): void {
    const node = this.newNode(loc);
    this.size++;
    const slot = this.heads.find(mfn);
    if (slot >= 0) {
      // After the head, so that the first mapping stays first (it is usually the only one).
      const head = this.heads.values[slot];
      this.next[node] = this.next[head];
      this.next[head] = node;
      return;
    }
    this.next[node] = -1;
    this.heads.insert(mfn, node);
  }

  /** Forget that leaf `loc` maps mfn; false when it was not recorded. */
  remove(mfn: Mfn, loc: number): boolean {
    const slot = this.heads.find(mfn);
    if (slot < 0) return false;
    const next = this.next;
    let prev = -1;
    let node = this.heads.values[slot];
    while (node >= 0 && this.locs[node] !== loc) {
      prev = node;
      node = next[node];
    }
    if (node < 0) return false;
    if (prev >= 0) next[prev] = next[node];
    else if (next[node] >= 0) this.heads.values[slot] = next[node];
    else this.heads.deleteSlot(slot);
    this.freeNodeAt(node);
    this.size--;
    return true;
  }

  /** The locations mapping mfn, first recorded first (empty when none). */
  mappingsOf(mfn: Mfn): number[] {
    const out: number[] = [];
    for (let node = this.heads.get(mfn); node >= 0; node = this.next[node]) {
      out.push(this.locs[node]);
    }
    return out;
  }

  /** Every (mfn, locations) pair, in no particular order (for checks). */
  *entries(): IterableIterator<[Mfn, number[]]> {
    for (const [mfn] of this.heads.entries()) yield [mfn, this.mappingsOf(mfn)];
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
