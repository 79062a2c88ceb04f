/**
 * The reverse map of one shadow-paged domain: guest frame (a host mfn) -> the leaf shadow
 * entries that map it (each an int32 the caller chooses: ShadowTables gives slot * 512 + index).
 * Its memory follows what is mapped, not the size of the host.
 *
 * Each frame's entries are a chain of nodes (typed arrays that grow by doubling, freed nodes
 * reused), and the head of each frame's chain sits in a chunk of CHUNK neighbouring frames'
 * heads, found by an int32 hash of mfn / CHUNK (int-map.ts). Chunks, not a hash slot per frame,
 * so that frames handed out in order (a guest touching fresh memory) find their heads in the
 * cache line their neighbours used, where a hash sent each frame to a random line of a table
 * megabytes long (a cache miss per demand fault). A frame with one mapping costs one node and
 * its share of a chunk; each further mapping (shared pages, aliases, the kernel's direct map
 * beside a user mapping) one node more. Chunks stay once made.
 */

import type { Mfn } from "../../hw/addr.js";
import { IntMap } from "./int-map.js";

/** Frames per chunk of heads: 8 int32 heads, half a cache line. */
const CHUNK_BITS = 3;
const CHUNK = 1 << CHUNK_BITS;
/** Chunks and nodes at the start; each pool doubles when it is full. */
const INITIAL_CHUNKS = 8;
const INITIAL_NODES = 64;

export class ReverseMap {
  /** mfn >>> CHUNK_BITS -> the chunk holding the heads of those frames. */
  private readonly chunks = new IntMap();
  /** Per chunk, CHUNK heads: the first node of each frame's chain, -1 for none. */
  private heads = new Int32Array(INITIAL_CHUNKS * CHUNK).fill(-1);
  private chunksUsed = 0;
  /** Frames that have a mapping. */
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
    return this.chunks.bytes + this.heads.byteLength + this.locs.byteLength + this.next.byteLength;
  }

  /** Where mfn's head is kept in `heads`, or -1 when its chunk has none. */
  private headAt(mfn: Mfn): number {
    const chunk = this.chunks.get(mfn >>> CHUNK_BITS);
    return chunk < 0 ? -1 : chunk * CHUNK + (mfn & (CHUNK - 1));
  }

  /** headAt, making mfn's chunk when it has none. */
  private headFor(mfn: Mfn): number {
    const at = this.headAt(mfn);
    if (at >= 0) return at;
    if (this.chunksUsed * CHUNK === this.heads.length) {
      const heads = new Int32Array(this.heads.length * 2).fill(-1);
      heads.set(this.heads);
      this.heads = heads;
    }
    const chunk = this.chunksUsed++;
    this.chunks.insert(mfn >>> CHUNK_BITS, chunk);
    return chunk * CHUNK + (mfn & (CHUNK - 1));
  }

  /** Record that leaf `loc` maps mfn. */
  add(mfn: Mfn, loc: number): void {
    const node = this.newNode(loc);
    this.size++;
    const at = this.headFor(mfn);
    const head = this.heads[at];
    if (head >= 0) {
      // After the head, so that the first mapping stays first (it is usually the only one).
      this.next[node] = this.next[head];
      this.next[head] = node;
      return;
    }
    this.next[node] = -1;
    this.heads[at] = node;
    this.frames++;
  }

  /** Forget that leaf `loc` maps mfn; false when it was not recorded. */
  remove(mfn: Mfn, loc: number): boolean {
    const at = this.headAt(mfn);
    if (at < 0) return false;
    const next = this.next;
    let prev = -1;
    let node = this.heads[at];
    while (node >= 0 && this.locs[node] !== loc) {
      prev = node;
      node = next[node];
    }
    if (node < 0) return false;
    if (prev >= 0) next[prev] = next[node];
    else {
      this.heads[at] = next[node];
      if (next[node] < 0) this.frames--;
    }
    this.freeNodeAt(node);
    this.size--;
    return true;
  }

  /** The locations mapping mfn, first recorded first (empty when none). */
  mappingsOf(mfn: Mfn): number[] {
    const out: number[] = [];
    const at = this.headAt(mfn);
    if (at < 0) return out;
    for (let node = this.heads[at]; node >= 0; node = this.next[node]) out.push(this.locs[node]);
    return out;
  }

  /** Every (mfn, locations) pair, in no particular order (for checks). */
  *entries(): IterableIterator<[Mfn, number[]]> {
    for (const [key, chunk] of this.chunks.entries()) {
      for (let i = 0; i < CHUNK; i++) {
        if (this.heads[chunk * CHUNK + i] >= 0) {
          const mfn = key * CHUNK + i;
          yield [mfn, this.mappingsOf(mfn)];
        }
      }
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
