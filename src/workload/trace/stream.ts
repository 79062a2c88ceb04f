/**
 * A trace file for a run, of any size (Node only): read through once when the scenario is
 * loaded, to check every record, count them, cut them into chunks and find the address space
 * they touch (trace/layout.ts, which needs all of them); then replayed a chunk at a time,
 * each chunk read again from the file when a replay reaches it and kept in the shared cache
 * (trace/cache.ts) for the processes replaying the same trace. A trace small enough
 * (WHOLE_RECORDS) is kept whole from that first reading instead: one chunk, read once.
 *
 * memvisor's format is cut every chunkRecords records, read at its byte position. A lackey
 * text is cut at line boundaries, every chunkRecords records or a little more, and the first
 * reading keeps each chunk's byte position, first line and first record; a chunk is parsed again
 * when it is replayed. A gzip file, either format, is inflated again from the start, by a few
 * inflaters kept at the places the replays reached (a gzip stream cannot be entered midway).
 *
 * Positions are numbers (exact to 2^53 bytes), never 32-bit offsets, and no buffer is larger
 * than a chunk, so a file of any size is read. The file is checked to be the one first read
 * (size, time of modification, inode) each time it is opened again: one changed under a run
 * stops it with a TraceError naming the file, as a bad line found at any time does.
 */

import { closeSync, fstatSync, openSync, readSync, type Stats } from "node:fs";
import { Gunzip } from "fflate";
import type { TraceRecords } from "../../config/trace.js";
import { chunkCache } from "./cache.js";
import { startsWithMagic, withWholeHeader } from "./chunks.js";
import { openTraceInput, readReason, traceChunks } from "./file.js";
import {
  checkRecords,
  encodeRecords,
  headerCount,
  STREAMED_RECORDS_MAX,
  TRACE_HEADER_BYTES,
  TRACE_RECORD_BYTES,
} from "./format.js";
import { LackeyReader, type TraceBatch, TraceError } from "./lackey.js";
import { knownLayout, LayoutScan, type TraceLayout } from "./layout.js";

/** Records per chunk: 2 MiB of them. */
export const CHUNK_RECORDS = 1 << 18;
/** A trace of at most so many records is kept whole in memory (32 MiB). */
export const WHOLE_RECORDS = 1 << 22;
/** Bytes of lackey text handed to the reader at a time in the first reading. */
const PIECE_BYTES = 1 << 20;
/** Compressed bytes read at a time when a gzip file is inflated again. */
const GZIP_READ_BYTES = 64 << 10;

/** How a file is cut (internal: tests cut small files into many chunks). */
export interface TraceCut {
  /** Records per chunk. */
  chunkRecords?: number;
  /** Records up to which a trace is kept whole. */
  wholeRecords?: number;
  /** Lackey bytes parsed at a time in the first reading (a chunk boundary falls between). */
  pieceBytes?: number;
}

/** What the first reading found: everything a FileTrace is (a structured clone keeps it). */
export interface FileTraceFacts {
  path: string;
  /** The chunk cache's key for this file and its cut. */
  key: string;
  format: "mvtr" | "lackey";
  gzip: boolean;
  /** The file as first read: a file found otherwise later has changed. */
  size: number;
  mtimeMs: number;
  ino: number;
  count: number;
  chunks: number;
  /** mvtr: records per chunk (the last may have fewer). */
  chunkRecords: number;
  /**
   * lackey: chunk k's first byte (in the inflated text), the lines before it and the records
   * before it; entry `chunks` is the end of the text.
   */
  offsets: Float64Array | null;
  lines: Float64Array | null;
  firsts: Float64Array | null;
  /** The records, when kept whole. */
  whole: Uint32Array | null;
  /** Records by kind: load, store, fetch. */
  kinds: number[];
  /** Why a trace process cannot replay it ("" when it can). */
  problem: string;
  layout: TraceLayout | null;
}

/** A trace file read in chunks as it is replayed. */
export class FileTrace implements TraceRecords {
  readonly facts: FileTraceFacts;
  readonly count: number;
  readonly chunks: number;

  constructor(facts: FileTraceFacts) {
    this.facts = facts;
    this.count = facts.count;
    this.chunks = facts.chunks;
    knownLayout(this, facts.problem, facts.layout);
  }

  /** A FileTrace again from a structured clone of one (a worker thread's task). */
  static revive(data: unknown): TraceRecords | null {
    const facts = (data as { facts?: FileTraceFacts } | null)?.facts;
    return facts && typeof facts.key === "string" ? new FileTrace(facts) : null;
  }

  get path(): string {
    return this.facts.path;
  }

  chunk(k: number): Uint32Array {
    const whole = this.facts.whole;
    if (whole !== null) return whole;
    return chunkCache.get(this.facts.key, k, () => this.load(k));
  }

  private load(k: number): Uint32Array {
    const f = this.facts;
    if (f.format === "mvtr") {
      const first = k * f.chunkRecords;
      const words = new Uint32Array(2 * Math.min(f.chunkRecords, f.count - first));
      readAt(f, new Uint8Array(words.buffer), TRACE_HEADER_BYTES + first * TRACE_RECORD_BYTES);
      // Checked again (a record's cost is a nanosecond): what reaches a run is always valid.
      checkRecords(words, words.length / 2, f.path, first);
      return words;
    }
    return parseLackeyChunk(f, k);
  }
}

/** The records of lackey chunk k, parsed from its text again. */
function parseLackeyChunk(f: FileTraceFacts, k: number): Uint32Array {
  const offsets = f.offsets as Float64Array;
  const firsts = f.firsts as Float64Array;
  const text = new Uint8Array(offsets[k + 1] - offsets[k]);
  readAt(f, text, offsets[k]);
  const words = new Uint32Array(2 * (firsts[k + 1] - firsts[k]));
  let at = 0;
  const reader = new LackeyReader({ file: f.path, maxRecords: STREAMED_RECORDS_MAX }, (batch) => {
    if (at + 2 * batch.count > words.length) changed(f);
    words.set(new Uint32Array(encodeRecords(batch).buffer), at);
    at += 2 * batch.count;
  });
  reader.lines = (f.lines as Float64Array)[k];
  reader.push(text);
  reader.end();
  if (at !== words.length) changed(f);
  return words;
}

function changed(f: FileTraceFacts): never {
  throw new TraceError(
    f.path,
    0,
    "it changed while the run replayed it (it was read when the run started); run again",
  );
}

/** Opens the file again for a replay: the file first read, or a TraceError. */
function reopen(f: FileTraceFacts): number {
  let fd: number;
  try {
    fd = openSync(f.path, "r");
  } catch (e) {
    throw new TraceError(f.path, 0, `cannot read it again to replay it: ${readReason(e)}`);
  }
  const stat = fstatSync(fd);
  if (stat.size !== f.size || stat.mtimeMs !== f.mtimeMs || stat.ino !== f.ino) {
    closeSync(fd);
    changed(f);
  }
  return fd;
}

/** Fills `target` with the file's bytes (inflated, for gzip) from `position`. */
function readAt(f: FileTraceFacts, target: Uint8Array, position: number): void {
  const fd = reopen(f);
  try {
    if (f.gzip) inflateAt(f, fd, target, position);
    else {
      for (let got = 0; got < target.length; ) {
        const n = readBytes(f, fd, target, got, position + got);
        if (n === 0) changed(f);
        got += n;
      }
    }
  } finally {
    closeSync(fd);
  }
}

function readBytes(
  f: FileTraceFacts,
  fd: number,
  target: Uint8Array,
  at: number,
  position: number,
): number {
  try {
    return readSync(fd, target, at, target.length - at, position);
  } catch (e) {
    throw new TraceError(f.path, 0, `cannot read it again to replay it: ${readReason(e)}`);
  }
}

// Gzip: inflaters at the places replays reached.

/** An inflater part way through a file: `inflated` bytes of it given out, `read` read in. */
interface Inflater {
  key: string;
  gunzip: Gunzip;
  /** Inflated bytes not yet given out, oldest first. */
  ready: Uint8Array[];
  inflated: number;
  read: number;
  ended: boolean;
  used: number;
}

/** Inflaters kept (32 KiB of window and a little state each). */
const INFLATERS = 8;
const inflaters: Inflater[] = [];
let uses = 0;

function newInflater(key: string): Inflater {
  const inflater: Inflater = {
    key,
    gunzip: new Gunzip(),
    ready: [],
    inflated: 0,
    read: 0,
    ended: false,
    used: 0,
  };
  inflater.gunzip.ondata = (data) => inflater.ready.push(data);
  if (inflaters.length >= INFLATERS) {
    let oldest = 0;
    for (let i = 1; i < inflaters.length; i++) {
      if (inflaters[i].used < inflaters[oldest].used) oldest = i;
    }
    inflaters.splice(oldest, 1);
  }
  inflaters.push(inflater);
  return inflater;
}

/** The inflater of this file furthest along at or before `position`, or a new one. */
function inflaterFor(key: string, position: number): Inflater {
  let best: Inflater | null = null;
  for (const i of inflaters) {
    if (i.key === key && i.inflated <= position && (best === null || i.inflated > best.inflated)) {
      best = i;
    }
  }
  return best ?? newInflater(key);
}

function inflateAt(f: FileTraceFacts, fd: number, target: Uint8Array, position: number): void {
  const inflater = inflaterFor(f.key, position);
  inflater.used = ++uses;
  const input = new Uint8Array(GZIP_READ_BYTES);
  let got = 0;
  while (got < target.length) {
    const piece = inflater.ready[0];
    if (piece === undefined) {
      if (inflater.ended) changed(f);
      const n = readBytes(f, fd, input, 0, inflater.read);
      inflater.read += n;
      inflater.ended = n === 0;
      try {
        inflater.gunzip.push(input.slice(0, n), inflater.ended);
      } catch (e) {
        throw new TraceError(f.path, 0, `cannot read it: not valid gzip (${(e as Error).message})`);
      }
      continue;
    }
    // Skip what lies before `position`, then copy.
    const skip = Math.max(0, position - inflater.inflated);
    const from = Math.min(skip, piece.length);
    const n = Math.min(piece.length - from, target.length - got);
    target.set(piece.subarray(from, from + n), got);
    got += n;
    const usedUp = from + n;
    if (usedUp === piece.length) inflater.ready.shift();
    else inflater.ready[0] = piece.subarray(usedUp);
    inflater.inflated += usedUp;
  }
}

// The first reading.

/**
 * Reads a trace file for a run (memvisor's format or lackey, either gzip-compressed: told by
 * their first bytes): every record checked, its layout found, cut into chunks for the replay;
 * memory holds a chunk, and the pages the trace touches. Throws TraceError.
 */
export function openTrace(path: string, cut: TraceCut = {}): FileTrace {
  const input = openTraceInput(path, false);
  try {
    const stat = fstatSync(input.fd);
    const pieces = traceChunks(input, path);
    const first = pieces.next();
    if (first.done) throw new TraceError(path, 0, "no memory accesses in it: the file is empty");
    const head = new Uint8Array(2);
    const gzip = readSync(input.fd, head, 0, 2, 0) === 2 && head[0] === 0x1f && head[1] === 0x8b;
    const scan = new FactScan(path, stat, gzip, cut);
    const facts = startsWithMagic(first.value)
      ? scan.binary(first.value, pieces)
      : scan.lackey(first.value, pieces);
    if (facts.count === 0) {
      throw new TraceError(path, 0, "no memory accesses in it: not a trace?");
    }
    return new FileTrace(facts);
  } finally {
    closeSync(input.fd);
  }
}

/** The first reading's findings as records go by, a chunk at a time. */
class FactScan {
  private readonly layout = new LayoutScan();
  private readonly chunkRecords: number;
  private readonly wholeRecords: number;
  private readonly pieceBytes: number;

  constructor(
    private readonly path: string,
    private readonly stat: Stats,
    private readonly gzip: boolean,
    cut: TraceCut,
  ) {
    this.chunkRecords = cut.chunkRecords ?? CHUNK_RECORDS;
    this.wholeRecords = cut.wholeRecords ?? WHOLE_RECORDS;
    this.pieceBytes = cut.pieceBytes ?? PIECE_BYTES;
  }

  private fail(problem: string): never {
    throw new TraceError(this.path, 0, problem);
  }

  /** Records seen, in order. */
  private see(words: Uint32Array): void {
    this.layout.add(words);
  }

  private facts(
    format: "mvtr" | "lackey",
    count: number,
    chunks: number,
    rest: Partial<FileTraceFacts>,
  ): FileTraceFacts {
    const { stat, layout } = this;
    const problem = layout.problem;
    return {
      path: this.path,
      key: `${this.path}\n${stat.size}\n${stat.mtimeMs}\n${stat.ino}\n${this.chunkRecords}\n${this.pieceBytes}`,
      format,
      gzip: this.gzip,
      size: stat.size,
      mtimeMs: stat.mtimeMs,
      ino: stat.ino,
      count,
      // A trace kept whole is one chunk.
      chunks: rest.whole ? 1 : chunks,
      chunkRecords: this.chunkRecords,
      offsets: null,
      lines: null,
      firsts: null,
      whole: null,
      kinds: layout.kinds.slice(0, 3),
      problem,
      layout: problem === "" ? layout.layout() : null,
      ...rest,
    };
  }

  /** memvisor's format: the header's count, then exactly that many valid records. */
  binary(first: Uint8Array, rest: Iterator<Uint8Array>): FileTraceFacts {
    const header = withWholeHeader(first, rest);
    const count = headerCount(header.subarray(0, TRACE_HEADER_BYTES));
    if (typeof count === "string") return this.fail(count);
    const expected = TRACE_HEADER_BYTES + count * TRACE_RECORD_BYTES;
    const sizeProblem = (size: number | string) =>
      this.fail(
        `the header says ${count} records (${expected} bytes) but the file has ${size} bytes`,
      );
    if (!this.gzip && this.stat.size !== expected) sizeProblem(this.stat.size);
    if (count > STREAMED_RECORDS_MAX) sizeProblem("fewer");
    const keep = count <= this.wholeRecords;
    const windowRecords = keep ? count : Math.min(count, this.chunkRecords);
    const buffer = new Uint32Array(2 * windowRecords);
    const bytes = new Uint8Array(buffer.buffer);
    const chunkBytes = this.chunkRecords * TRACE_RECORD_BYTES;
    let done = 0; // records checked
    let have = 0; // bytes of the chunk being filled
    const base = () => (keep ? done * TRACE_RECORD_BYTES : 0);
    const chunkDone = () => {
      const words = buffer.subarray(base() / 4, (base() + have) / 4);
      checkRecords(words, have / TRACE_RECORD_BYTES, this.path, done);
      this.see(words);
      done += have / TRACE_RECORD_BYTES;
      have = 0;
    };
    const take = (piece: Uint8Array) => {
      for (let at = 0; at < piece.length; ) {
        if (done * TRACE_RECORD_BYTES + have + piece.length - at > count * TRACE_RECORD_BYTES) {
          sizeProblem("more");
        }
        const n = Math.min(piece.length - at, chunkBytes - have);
        bytes.set(piece.subarray(at, at + n), base() + have);
        have += n;
        at += n;
        if (have === chunkBytes) chunkDone();
      }
    };
    take(header.subarray(TRACE_HEADER_BYTES));
    for (let c = rest.next(); !c.done; c = rest.next()) take(c.value);
    const total = TRACE_HEADER_BYTES + done * TRACE_RECORD_BYTES + have;
    if (total !== expected) sizeProblem(total);
    if (have > 0) chunkDone();
    return this.facts("mvtr", count, Math.ceil(count / this.chunkRecords), {
      whole: keep ? buffer : null,
    });
  }

  /** A lackey text: parsed, cut at line boundaries every chunkRecords records or so. */
  lackey(first: Uint8Array, rest: Iterator<Uint8Array>): FileTraceFacts {
    let whole: Uint32Array | null = new Uint32Array(1 << 16);
    let records = 0;
    const reader = new LackeyReader(
      { file: this.path, maxRecords: STREAMED_RECORDS_MAX },
      (batch: TraceBatch) => {
        const words = new Uint32Array(encodeRecords(batch).buffer);
        this.see(words);
        if (whole !== null) {
          if (records + batch.count > this.wholeRecords) whole = null;
          else {
            if (2 * (records + batch.count) > whole.length) {
              // Doubled, but never past the most kept whole.
              const size = Math.min(2 * whole.length, 2 * this.wholeRecords);
              const grown = new Uint32Array(Math.max(2 * (records + batch.count), size));
              grown.set(whole.subarray(0, 2 * records));
              whole = grown;
            }
            whole.set(words, 2 * records);
          }
        }
        records += batch.count;
      },
    );
    const offsets = [0];
    const lines = [0];
    const firsts = [0];
    let consumed = 0;
    const take = (piece: Uint8Array) => {
      for (let at = 0; at < piece.length; at += this.pieceBytes) {
        const part = piece.subarray(at, at + this.pieceBytes);
        reader.push(part);
        consumed += part.length;
        // A chunk ends before the line the reader has not finished.
        if (reader.records - firsts[firsts.length - 1] >= this.chunkRecords) {
          offsets.push(consumed - reader.pendingBytes);
          lines.push(reader.lines);
          firsts.push(reader.records);
        }
      }
    };
    take(first);
    for (let c = rest.next(); !c.done; c = rest.next()) take(c.value);
    reader.end();
    if (reader.records === firsts[firsts.length - 1] && firsts.length > 1) {
      // Nothing after the last cut: it is the end.
      offsets.pop();
      lines.pop();
      firsts.pop();
    }
    offsets.push(consumed);
    lines.push(reader.lines);
    firsts.push(reader.records);
    const count = reader.records;
    return this.facts("lackey", count, firsts.length - 1, {
      offsets: new Float64Array(offsets),
      lines: new Float64Array(lines),
      firsts: new Float64Array(firsts),
      whole: whole === null ? null : whole.slice(0, 2 * count),
    });
  }
}
