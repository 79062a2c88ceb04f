/**
 * The walk memo: for the batched access path's native and shadow walks, per 2 MiB region of
 * address space under one root table, the pool slot of the L1 table its upper three levels lead
 * to and the combined bits of those three entries (the AND of their low halves, the OR of their
 * high halves). A walk that finds its region here reads only the leaf entry. It is a simulator
 * shortcut, not a model of the paging-structure caches (pwc.ts): the walk still counts its
 * four references, and the memo is never used with data caches modelled or the step log on.
 *
 * An entry is good only while no table anywhere changed: it records HostMemory's tableEpoch,
 * which every change to a materialized frame's words (a table entry written, an A/D bit set, a
 * frame zeroed, copied, restored or released) moves on. So a stale entry can never lead a walk
 * through a table that was changed or freed (isolation: a freed table's frame may belong to
 * another domain by now). After a burst of page-table writes the memo is simply cold.
 *
 * Why: a random walk over a large address space is a chain of four dependent reads, each of a
 * table-slot lookup and a pool read; the leaf read misses the host's caches anyway, the three
 * above it mostly hit but still come one after another.
 */

import type { HostMemory } from "./memory.js";

/** An entry's words: the region, the root, the epoch, then what a walk reuses (its payload). */
const W_REGION = 0;
const W_ROOT = 1;
const W_EPOCH = 2;
/** The payload of the native and shadow walk's memo (Walker): the L1 table's pool slot, the
 * AND of the low halves and the OR of the high halves of the three entries above it. */
export const MEMO_SLOT = 3;
export const MEMO_AND = 4;
export const MEMO_OR = 5;
/** Payload words of the native and shadow walk's memo. */
export const WALK_PAYLOAD = 3;
/**
 * Entries a memo starts with and grows to. A memo grows (doubling, emptied) once it has evicted
 * twice its size of entries that were still good: a small domain's memo stays at 1.5 KiB, one
 * walking 2^20 pages (2,048 regions) grows to hold them.
 */
const MIN_ENTRIES = 64;
const MAX_ENTRIES = 4096;

/**
 * The memo's key of an address given as halves (bits 0..31 as int32, 32..47): its 2 MiB region
 * number, bits 21..47 (27 bits, an int32).
 */
export function regionOf(gvaLo: number, gvaHi: number): number {
  return (gvaHi << 11) | (gvaLo >>> 21);
}

export class WalkMemo {
  /** Words an entry takes: the key and the epoch, then `payload` words for the walk. */
  private readonly size: number;
  words: Int32Array;
  private shift = 32 - Math.log2(MIN_ENTRIES);
  private evictions = 0;
  /** HostMemory.tableEpochWraps when the memo was last emptied. */
  private wraps = 0;

  constructor(payload: number) {
    this.size = 3 + payload;
    this.words = new Int32Array(MIN_ENTRIES * this.size);
  }

  /** Entries the memo has room for. */
  get entries(): number {
    return this.words.length / this.size;
  }

  /**
   * Direct mapped by the region's low bits (offset per root), as a hardware cache is indexed:
   * an address space is a few runs of consecutive regions, and a run no longer than the memo
   * takes distinct entries. A multiplicative hash of the region collided inside one run: 4.3%
   * of the HAP walks of 2^20 random pages (2,048 regions, 4,096 entries) missed the memo,
   * against none once it had grown to 2,048 entries indexed so (measured by counting).
   */
  private index(region: number, root: number): number {
    return ((region + Math.imul(root, 0x9e3779b1)) & ((1 << (32 - this.shift)) - 1)) * this.size;
  }

  /** The word index of the good entry for (region, root), or -1. */
  find(mem: HostMemory, region: number, root: number): number {
    if (mem.tableEpochWraps !== this.wraps) this.clear(mem);
    const w = this.words;
    const e = this.index(region, root);
    return w[e + W_EPOCH] === mem.tableEpoch && w[e + W_REGION] === region && w[e + W_ROOT] === root
      ? e
      : -1;
  }

  /**
   * Make the entry of (region, root), good at the current epoch, and return its word index: the
   * caller writes the payload after it, in `words` as it is now (the memo may have grown).
   */
  store(mem: HostMemory, region: number, root: number): number {
    let w = this.words;
    let e = this.index(region, root);
    if (w[e + W_EPOCH] === mem.tableEpoch && ++this.evictions > 2 * this.entries) {
      if (this.entries < MAX_ENTRIES) {
        this.words = w = new Int32Array(w.length * 2);
        this.shift--;
        e = this.index(region, root);
      }
      this.evictions = 0;
    }
    w[e + W_REGION] = region;
    w[e + W_ROOT] = root;
    w[e + W_EPOCH] = mem.tableEpoch;
    return e;
  }

  /** Forget every entry (after the epoch wrapped, when an old epoch could come round again). */
  private clear(mem: HostMemory): void {
    this.words.fill(0);
    this.wraps = mem.tableEpochWraps;
  }
}
