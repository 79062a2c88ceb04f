/**
 * Trace files on disk (Node only): reading a lackey file, plain or gzip (streamed, so it may be
 * larger than memory), writing memvisor's binary format, and reading it back.
 */

import {
  closeSync,
  createReadStream,
  openSync,
  readFileSync,
  readSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { createGunzip, gunzipSync } from "node:zlib";
import type { Trace } from "../../config/trace.js";
import {
  decodeTrace,
  encodeRecords,
  TRACE_HEADER_BYTES,
  TRACE_MAGIC,
  TraceBuilder,
  traceHeader,
} from "./format.js";
import { LackeyReader, type TraceBatch, TraceError } from "./lackey.js";

export interface ImportResult {
  lines: number;
  accessLines: number;
  records: number;
  skipped: number;
}

/** Whether the file starts with gzip's magic bytes. */
function isGzip(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const head = new Uint8Array(2);
    const n = readSync(fd, head, 0, 2, 0);
    return n === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

/** Stream a lackey file (plain or gzip) through a reader; batches go to `sink`. */
export async function readLackeyFile(
  path: string,
  options: { skipBad?: boolean },
  sink: (batch: TraceBatch) => void,
): Promise<ImportResult> {
  const reader = new LackeyReader({ file: path, skipBad: options.skipBad }, sink);
  const raw = createReadStream(path, { highWaterMark: 1 << 20 });
  const stream = isGzip(path) ? raw.pipe(createGunzip()) : raw;
  try {
    for await (const chunk of stream) reader.push(chunk as Uint8Array);
  } catch (e) {
    if (e instanceof TraceError) throw e;
    const why = e instanceof Error ? e.message : String(e);
    throw new TraceError(path, reader.lines + 1, `cannot read it: ${why}`);
  }
  reader.end();
  return {
    lines: reader.lines,
    accessLines: reader.accessLines,
    records: reader.records,
    skipped: reader.skipped,
  };
}

/**
 * Convert a lackey file into memvisor's format at `out`. With `overwrite` false an existing
 * `out` is an error (nothing a user has is overwritten without asking).
 */
export async function importLackey(
  path: string,
  out: string,
  options: { skipBad?: boolean; overwrite?: boolean },
): Promise<ImportResult> {
  let fd: number;
  try {
    fd = openSync(out, options.overwrite ? "w" : "wx");
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new TraceError(
      out,
      0,
      code === "EEXIST"
        ? "already exists; give another name, or --force to overwrite it"
        : `cannot write it: ${(e as Error).message}`,
    );
  }
  try {
    let at = TRACE_HEADER_BYTES;
    writeSync(fd, traceHeader(0), 0, TRACE_HEADER_BYTES, 0);
    const result = await readLackeyFile(path, options, (batch) => {
      const bytes = encodeRecords(batch);
      writeSync(fd, bytes, 0, bytes.length, at);
      at += bytes.length;
    });
    if (result.records === 0) {
      throw new TraceError(path, result.lines, "no memory accesses in it: not a lackey trace?");
    }
    writeSync(fd, traceHeader(result.records), 0, TRACE_HEADER_BYTES, 0);
    closeSync(fd);
    return result;
  } catch (e) {
    // Leave no half-written file behind (it was created here).
    closeSync(fd);
    unlinkSync(out);
    throw e;
  }
}

/** Read a file in memvisor's trace format. */
export function loadTraceFile(path: string): Trace {
  return decodeTrace(new Uint8Array(readFileSync(path)), path);
}

const READ_REASONS: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EISDIR: "is a directory, not a trace",
};

/**
 * Read a whole trace for a run, whatever its form: memvisor's format or a lackey file, either
 * of them gzip-compressed (told apart by their first bytes, not their names). Throws TraceError.
 */
export function readTrace(path: string): Trace {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = new Uint8Array(gunzipSync(bytes));
  } catch (e) {
    const code = (e as { code?: string }).code ?? "";
    const why = READ_REASONS[code] ?? (e instanceof Error ? e.message : String(e));
    throw new TraceError(path, 0, `cannot read it: ${why}`);
  }
  let trace: Trace;
  if (startsWithMagic(bytes)) trace = decodeTrace(bytes, path);
  else {
    const builder = new TraceBuilder();
    const reader = new LackeyReader({ file: path }, (batch) => builder.add(batch));
    reader.push(bytes);
    reader.end();
    trace = builder.finish();
  }
  if (trace.count === 0) {
    throw new TraceError(path, 0, "no memory accesses in it: not a trace?");
  }
  return trace;
}

function startsWithMagic(bytes: Uint8Array): boolean {
  for (let i = 0; i < TRACE_MAGIC.length; i++) {
    if (bytes[i] !== TRACE_MAGIC.charCodeAt(i)) return false;
  }
  return true;
}
