/**
 * Trace files on disk (Node only): what a path is (a file; a pipe where the reader streams; never
 * a directory or a device, which would never end), a lackey file read as a stream, plain or gzip,
 * into memvisor's binary format written safely (checked before any work, written beside the
 * target and moved into place only when complete), and a whole trace read for a run in chunks.
 */

import {
  closeSync,
  createReadStream,
  fstatSync,
  linkSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { Socket } from "node:net";
import { basename, dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, gunzipSync } from "node:zlib";
import type { Trace } from "../../config/trace.js";
import { inflated, traceFromChunks } from "./chunks.js";
import { encodeRecords, STREAMED_RECORDS_MAX, TRACE_HEADER_BYTES, traceHeader } from "./format.js";
import { LackeyReader, type TraceBatch, TraceError } from "./lackey.js";

export interface ImportResult {
  lines: number;
  accessLines: number;
  records: number;
  skipped: number;
  /** Whether the log ends with valgrind's end-of-run summary (the program ran to its end). */
  complete: boolean;
}

/**
 * Stream a lackey file (plain or gzip; a file or a pipe) through a reader; batches go to `sink`.
 * The input is already open (see openTraceInput); it is closed here.
 */
async function readLackeyInput(
  path: string,
  input: TraceInput,
  options: { skipBad?: boolean; maxRecords?: number },
  sink: (batch: TraceBatch) => void,
): Promise<ImportResult> {
  const reader = new LackeyReader(
    { file: path, skipBad: options.skipBad, maxRecords: options.maxRecords },
    sink,
  );
  // A pipe is read as a socket (polled): a blocked read of a file descriptor would hold the
  // process past an interrupt until the writer wrote again.
  const raw = input.pipe
    ? new Socket({ fd: input.fd, readable: true, writable: false })
    : createReadStream("", { fd: input.fd, highWaterMark: 1 << 20 });
  const chunks = raw[Symbol.asyncIterator]();
  try {
    const first = await chunks.next();
    if (!first.done) {
      const head = first.value as Uint8Array;
      // The first chunk, then the rest: gzip is told by its first two bytes, not the name.
      const source = Readable.from(
        (async function* () {
          yield head;
          for (let c = await chunks.next(); !c.done; c = await chunks.next()) yield c.value;
        })(),
      );
      const parse = async (stream: AsyncIterable<Uint8Array>) => {
        for await (const chunk of stream) reader.push(chunk);
      };
      if (head[0] === 0x1f && head[1] === 0x8b) await pipeline(source, createGunzip(), parse);
      else await pipeline(source, parse);
    }
  } catch (e) {
    if (e instanceof TraceError) throw e;
    throw new TraceError(path, reader.lines + 1, `cannot read it: ${readReason(e)}`);
  } finally {
    raw.destroy();
  }
  reader.end();
  return {
    lines: reader.lines,
    accessLines: reader.accessLines,
    records: reader.records,
    skipped: reader.skipped,
    complete: reader.sawExitCode,
  };
}

/** Stream a lackey file (plain or gzip) through a reader; batches go to `sink`. */
export async function readLackeyFile(
  path: string,
  options: { skipBad?: boolean; maxRecords?: number },
  sink: (batch: TraceBatch) => void,
): Promise<ImportResult> {
  return readLackeyInput(path, openTraceInput(path, true), options, sink);
}

/**
 * Convert a lackey file (plain or gzip; a file, or a pipe such as /dev/stdin) into memvisor's
 * format at `out`. `out` is checked before anything is read: with `overwrite` false an existing
 * file is an error (nothing a user has is overwritten without asking), and it may never be the
 * input. The trace is written to a temporary file beside `out` and moved into place when
 * complete: a failure or an interrupt (see discardPendingOutputs) leaves `out` as it was.
 * Throws TraceError for a bad input or a refused output, OutputError when writing fails.
 */
export async function importLackey(
  path: string,
  out: string,
  options: { skipBad?: boolean; overwrite?: boolean; maxRecords?: number },
): Promise<ImportResult> {
  const input = openTraceInput(path, true);
  let file: OutputFile;
  try {
    checkOutput(out, options.overwrite ?? false, [{ path, dev: input.dev, ino: input.ino }]);
    file = new OutputFile(out, options.overwrite ?? false);
  } catch (e) {
    closeSync(input.fd);
    throw e;
  }
  try {
    let at = TRACE_HEADER_BYTES;
    file.write(traceHeader(0), 0);
    // A run streams a trace file, whatever its size: the import is not bounded by memory.
    const limits = { ...options, maxRecords: options.maxRecords ?? STREAMED_RECORDS_MAX };
    const result = await readLackeyInput(path, input, limits, (batch) => {
      const bytes = encodeRecords(batch);
      file.write(bytes, at);
      at += bytes.length;
    });
    if (result.records === 0) {
      throw new TraceError(path, result.lines, "no memory accesses in it: not a lackey trace?");
    }
    file.write(traceHeader(result.records), 0);
    file.commit();
    return result;
  } catch (e) {
    file.discard();
    throw e;
  }
}

/**
 * Read a whole trace into memory, whatever its form: memvisor's format or a lackey file, either
 * of them gzip-compressed (told apart by their first bytes, not their names). The file is read
 * in chunks (a gzip one inflated as it is read), so memory holds the records and a chunk, and
 * at most MAX_TRACE_RECORDS of them. A run reads its traces with openTrace (stream.ts) instead,
 * which holds a few chunks whatever the size. Throws TraceError.
 */
export function readTrace(path: string): Trace {
  const input = openTraceInput(path, false);
  let trace: Trace;
  try {
    trace = traceFromChunks(traceChunks(input, path), path);
  } finally {
    closeSync(input.fd);
  }
  if (trace.count === 0) {
    throw new TraceError(path, 0, "no memory accesses in it: not a trace?");
  }
  return trace;
}

/** Read a file in memvisor's trace format (see readTrace). */
export function loadTraceFile(path: string): Trace {
  return readTrace(path);
}

// Reading: what a path is, and its bytes in chunks.

/** Bytes read from a file at a time. */
export const CHUNK_BYTES = 1 << 20;
const GZIP_CHUNK_BYTES = 64 << 10;
/**
 * A gzip file this small is inflated by zlib in one call (4 to 6 times faster than streaming in
 * JavaScript), if it inflates to at most INFLATE_AT_ONCE_MAX; a larger one is streamed.
 */
const DEFLATED_AT_ONCE_MAX = 8 << 20;
const INFLATE_AT_ONCE_MAX = 64 << 20;

const OPEN_REASONS: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "is a directory, not a trace",
  ENOTDIR: "a part of the path is not a directory",
  ELOOP: "too many symbolic links",
  ENAMETOOLONG: "the file name is too long",
  EIO: "an input/output error",
};

/** Why reading failed, in words. */
export function readReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code ?? "";
  return OPEN_REASONS[code] ?? (e instanceof Error ? e.message : String(e));
}

/** An open trace input: its descriptor, and whether it is a pipe (no size, read once). */
export interface TraceInput {
  fd: number;
  pipe: boolean;
  /** The file's device and inode (to tell an output that is the input). */
  dev: number;
  ino: number;
}

/**
 * Opens `path` to read a trace; `pipes` allows a FIFO or socket (stdin's, a process
 * substitution's). Throws TraceError naming the path and why.
 */
export function openTraceInput(path: string, pipes: boolean): TraceInput {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new TraceError(path, 0, `cannot read it: ${readReason(e)}`);
  }
  const stat = fstatSync(fd);
  const pipe = stat.isFIFO() || stat.isSocket();
  let what = "";
  if (stat.isDirectory()) what = "is a directory, not a trace";
  else if (pipe && !pipes) what = "is a pipe; a run reads its traces from files";
  else if (!stat.isFile() && !pipe) what = "is a device, not a trace";
  if (what !== "") {
    closeSync(fd);
    throw new TraceError(path, 0, `cannot read it: ${what}`);
  }
  return { fd, pipe, dev: stat.dev, ino: stat.ino };
}

/**
 * The file's bytes from offset 0, chunk by chunk (a chunk is only valid until the next). Gzip is
 * read in smaller chunks: an inflater turns each into up to 1,000 times as many bytes at once.
 */
function* fileChunks(fd: number, path: string, chunkBytes: number): Generator<Uint8Array> {
  const buf = new Uint8Array(chunkBytes);
  for (let position = 0; ; ) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, position);
    } catch (e) {
      throw new TraceError(path, 0, `cannot read it: ${readReason(e)}`);
    }
    if (n === 0) return;
    position += n;
    yield buf.subarray(0, n);
  }
}

/**
 * The contents of an open, regular trace file as chunks, inflated when it is gzip: memory holds
 * a chunk or two, whatever the file's size or its ratio of compression.
 */
export function* traceChunks(input: TraceInput, path: string): Generator<Uint8Array> {
  const head = new Uint8Array(2);
  const n = readSync(input.fd, head, 0, 2, 0);
  if (n < 2 || head[0] !== 0x1f || head[1] !== 0x8b) {
    yield* fileChunks(input.fd, path, CHUNK_BYTES);
    return;
  }
  if (fstatSync(input.fd).size <= DEFLATED_AT_ONCE_MAX) {
    const whole = Array.from(fileChunks(input.fd, path, DEFLATED_AT_ONCE_MAX + 1))[0];
    try {
      yield gunzipSync(whole, { maxOutputLength: INFLATE_AT_ONCE_MAX });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ERR_BUFFER_TOO_LARGE") {
        throw new TraceError(path, 0, `cannot read it: not valid gzip (${(e as Error).message})`);
      }
      // Inflates to more than INFLATE_AT_ONCE_MAX: stream it instead.
    }
  }
  yield* inflated(fileChunks(input.fd, path, GZIP_CHUNK_BYTES), path);
}

// Writing: the output checked first, written beside, moved into place.

const WRITE_REASONS: Record<string, string> = {
  ENOENT: "its folder does not exist",
  ENOTDIR: "a part of the path is not a folder",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EROFS: "the file system is read-only",
  EISDIR: "it is a folder",
  ENOSPC: "no space left on the device",
  EDQUOT: "the disk quota is exceeded",
  EFBIG: "the file is too large for the file system",
  EIO: "an input/output error",
  ENAMETOOLONG: "the file name is too long",
};

/**
 * A file that could not be written, and why in words. Distinct from a bad input: the CLI
 * exits 74 (EX_IOERR) for it; a refused output (an input, or a file not to replace) is a
 * TraceError.
 */
export class OutputError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`cannot write ${file}: ${reason}`);
    this.name = "OutputError";
  }
}

/** Why a write failed, in words. */
function writeReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code ?? "";
  return WRITE_REASONS[code] ?? (e instanceof Error ? e.message : String(e));
}

/** Errors of the device (a full disk, a failing one), not of the path the user gave. */
const DEVICE_ERRORS = new Set(["ENOSPC", "EDQUOT", "EFBIG", "EIO"]);

/** A failure to write `out`: an OutputError for the device's errors, else a TraceError. */
function writeFailure(out: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException).code ?? "";
  return DEVICE_ERRORS.has(code)
    ? new OutputError(out, writeReason(e))
    : new TraceError(out, 0, `cannot write it: ${writeReason(e)}`);
}

/** A file the output must not be: an input, by device and inode. */
export interface InputIdentity {
  path: string;
  dev: number;
  ino: number;
}

/**
 * Checks `out` before any work is done: its folder is there, it is not one of `inputs` (the same
 * file under another name or link too), and it does not exist unless `overwrite`.
 */
export function checkOutput(out: string, overwrite: boolean, inputs: InputIdentity[]): void {
  let folder: ReturnType<typeof statSync>;
  try {
    folder = statSync(dirname(out));
  } catch (e) {
    throw writeFailure(out, e);
  }
  if (!folder.isDirectory())
    throw new TraceError(out, 0, "cannot write it: a part of the path is not a folder");
  let existing: ReturnType<typeof statSync> | undefined;
  try {
    existing = statSync(out);
  } catch {
    return; // not there: fine
  }
  for (const input of inputs) {
    if (existing.dev === input.dev && existing.ino === input.ino) {
      throw new TraceError(
        out,
        0,
        `is the input ${input.path === out ? "file" : `(${input.path})`}; write to another file`,
      );
    }
  }
  if (existing.isDirectory()) throw new TraceError(out, 0, "is a folder; name a file");
  if (!overwrite) {
    throw new TraceError(out, 0, "already exists; give another name, or --force to overwrite it");
  }
  if (!existing.isFile()) {
    throw new TraceError(out, 0, "is not a regular file; name a file to write");
  }
}

/** Temporary files being written, to remove on an interrupt (see discardPendingOutputs). */
const pending = new Set<string>();

/** Removes every temporary file still being written (for a SIGINT or SIGTERM handler). */
export function discardPendingOutputs(): void {
  for (const tmp of pending) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
  }
  pending.clear();
}

/** A file being written: positional writes, then commit (into place) or discard. */
export class OutputFile {
  readonly tmp: string;
  private readonly fd: number;
  private done = false;

  /** Creates the temporary file beside `out`; check with checkOutput first. */
  constructor(
    readonly out: string,
    private readonly overwrite: boolean,
  ) {
    this.tmp = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
    try {
      this.fd = openSync(this.tmp, "wx");
    } catch (e) {
      throw writeFailure(out, e);
    }
    pending.add(this.tmp);
  }

  write(bytes: Uint8Array, position: number): void {
    try {
      let at = 0;
      while (at < bytes.length) {
        at += writeSync(this.fd, bytes, at, bytes.length - at, position + at);
      }
    } catch (e) {
      throw writeFailure(this.out, e);
    }
  }

  /** Bytes written so far (the file's size). */
  size(): number {
    return fstatSync(this.fd).size;
  }

  /**
   * Moves the complete file into place: over `out` when overwriting, else only if `out` still
   * does not exist (a hard link fails if it does; where links are not supported, a rename).
   */
  commit(): void {
    this.close();
    try {
      if (this.overwrite) {
        renameSync(this.tmp, this.out);
      } else {
        try {
          linkSync(this.tmp, this.out);
          unlinkSync(this.tmp);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === "EEXIST") {
            throw new TraceError(this.out, 0, "appeared while it was being written; not replaced");
          }
          if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") throw e;
          renameSync(this.tmp, this.out);
        }
      }
    } catch (e) {
      this.discard();
      if (e instanceof TraceError) throw e;
      throw writeFailure(this.out, e);
    }
    pending.delete(this.tmp);
  }

  /** Removes the temporary file (after a failure). */
  discard(): void {
    this.close();
    try {
      unlinkSync(this.tmp);
    } catch {
      // already gone
    }
    pending.delete(this.tmp);
  }

  private close(): void {
    if (this.done) return;
    this.done = true;
    closeSync(this.fd);
  }
}
