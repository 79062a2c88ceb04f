/**
 * A trace's records as a run reads them: in chunks, in order. Each record is two u32 words
 * (memvisor's trace format, workload/trace/format.ts):
 *
 *   word 0   address bits 0..31
 *   word 1   address bits 32..47 | kind << 16 | (size - 1) << 20     kind: 0 load, 1 store, 2 fetch
 *
 * A trace read whole is one chunk (Trace below); a trace file too large for that is read a chunk
 * at a time as its replay reaches it (workload/trace/stream.ts), so a run holds a few chunks of
 * it, whatever its size.
 */
export interface TraceRecords {
  /** Records in all. */
  readonly count: number;
  /** Chunks the records come in. */
  readonly chunks: number;
  /** The words of chunk k (0 <= k < chunks): shared by every reader, never to be written. */
  chunk(k: number): Uint32Array;
}

/** A whole trace in memory: one chunk. */
export class Trace implements TraceRecords {
  readonly chunks = 1;

  constructor(
    /** Two words per record. */
    readonly words: Uint32Array,
    readonly count: number,
  ) {}

  chunk(_k: number): Uint32Array {
    const n = 2 * this.count;
    return this.words.length === n ? this.words : this.words.subarray(0, n);
  }

  addrLo(i: number): number {
    return this.words[2 * i];
  }

  addrHi(i: number): number {
    return this.words[2 * i + 1] & 0xffff;
  }

  /** The 48-bit address (a number: exact below 2^53). */
  address(i: number): number {
    return this.addrHi(i) * 4294967296 + this.words[2 * i];
  }

  kind(i: number): number {
    return (this.words[2 * i + 1] >>> 16) & 3;
  }

  size(i: number): number {
    return ((this.words[2 * i + 1] >>> 20) & 0xfff) + 1;
  }
}
