/**
 * A whole trace in memory, as a scenario's trace process carries it: two u32 words per record
 * (memvisor's trace format, workload/trace/format.ts):
 *
 *   word 0   address bits 0..31
 *   word 1   address bits 32..47 | kind << 16 | (size - 1) << 20     kind: 0 load, 1 store, 2 fetch
 */
export class Trace {
  constructor(
    /** Two words per record. */
    readonly words: Uint32Array,
    readonly count: number,
  ) {}

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
