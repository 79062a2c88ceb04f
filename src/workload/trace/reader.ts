/**
 * One process's place in a trace: the chunk it is replaying and the next record in it. Readers
 * of one trace share its chunks (a trace read whole is one chunk; a file read in chunks keeps a
 * few of them for all its readers, trace/cache.ts), so each holds no more than a reference.
 */

import type { TraceRecords } from "../../config/trace.js";

const NO_WORDS = new Uint32Array(0);

export class TraceReader {
  /** The chunk being replayed: next() gives the index of a record's first word in it. */
  words: Uint32Array = NO_WORDS;
  private at = 0;
  /** words.length, kept beside `at`: the common step reads no more than this object. */
  private end = 0;
  private nextChunk = 0;

  constructor(private readonly trace: TraceRecords) {}

  /**
   * The index in `words` of the next record's two words (address bits 0..31, then the rest),
   * or -1 at the end of the trace: rewind() starts it again.
   */
  next(): number {
    const j = this.at;
    if (j !== this.end) {
      this.at = j + 2;
      return j;
    }
    return this.nextInChunk();
  }

  /** Records left in the chunk being replayed: next() gives that many without loading a chunk. */
  get left(): number {
    return (this.end - this.at) >> 1;
  }

  /** The second word (address bits 32..47 and the kind) of the record `ahead` places on (< left). */
  metaAhead(ahead: number): number {
    return this.words[this.at + 2 * ahead + 1];
  }

  /** Take the next `count` records of the chunk (count <= left): the index of the first's words. */
  take(count: number): number {
    const j = this.at;
    this.at = j + 2 * count;
    return j;
  }

  /** Back to the first record. */
  rewind(): void {
    this.words = NO_WORDS;
    this.at = 0;
    this.end = 0;
    this.nextChunk = 0;
  }

  /** The first record of the next chunk that has one, or -1 when none is left. */
  private nextInChunk(): number {
    const trace = this.trace;
    while (this.nextChunk < trace.chunks) {
      const words = trace.chunk(this.nextChunk++);
      if (words.length > 0) {
        this.words = words;
        this.at = 2;
        this.end = words.length;
        return 0;
      }
    }
    // The end: hold no chunk while the process waits to loop or exit.
    this.words = NO_WORDS;
    this.at = 0;
    this.end = 0;
    return -1;
  }
}
