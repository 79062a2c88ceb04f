/**
 * The chunks of trace files resident in memory, shared by every process replaying them: keyed
 * by the file (its path, size and time of modification, and how it is cut into chunks) and the
 * chunk's index, the least recently used dropped past a bound. A process replaying a chunk
 * holds it besides, so memory holds at most the bound plus one chunk per trace process.
 */

/** Chunks kept (2 MiB each at the default chunk size: 32 MiB). */
export const RESIDENT_CHUNKS = 16;

export class ChunkCache {
  private readonly chunks = new Map<string, Uint32Array>();
  /** Chunks read from their files (misses), for tests and benchmarks. */
  loads = 0;

  /** The bound: chunks kept (tests lower it). */
  constructor(public limit: number) {}

  /** Chunk `k` of the file `file` (a FileTrace's key), read by `load` when not resident. */
  get(file: string, k: number, load: () => Uint32Array): Uint32Array {
    const key = `${file}#${k}`;
    let words = this.chunks.get(key);
    if (words !== undefined) {
      // Most recently used: to the end of the map's order.
      this.chunks.delete(key);
      this.chunks.set(key, words);
      return words;
    }
    words = load();
    this.loads++;
    this.chunks.set(key, words);
    for (const old of this.chunks.keys()) {
      if (this.chunks.size <= this.limit) break;
      this.chunks.delete(old);
    }
    return words;
  }

  /** Chunks resident now. */
  get size(): number {
    return this.chunks.size;
  }

  /** Drops every chunk (tests). */
  clear(): void {
    this.chunks.clear();
  }
}

export const chunkCache = new ChunkCache(RESIDENT_CHUNKS);
