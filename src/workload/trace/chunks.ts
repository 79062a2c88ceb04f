/**
 * A whole trace from its bytes in chunks (a file read piece by piece), with no copy of the input
 * held: memvisor's format into one array sized by its header, a lackey text through the reader;
 * and gzip inflated as a stream. No node imports: browsers could use it too.
 */

import { Gunzip } from "fflate";
import { MAX_TRACE_RECORDS } from "../../config/limits.js";
import { Trace } from "../../config/trace.js";
import {
  checkRecords,
  headerCount,
  TRACE_HEADER_BYTES,
  TRACE_MAGIC,
  TRACE_RECORD_BYTES,
  TraceBuilder,
} from "./format.js";
import { LackeyReader, TOO_MANY_RECORDS, TraceError } from "./lackey.js";

/** The chunks inflated, streaming: memory stays a chunk or two whatever the ratio. */
export function* inflated(chunks: Iterable<Uint8Array>, path: string): Generator<Uint8Array> {
  const out: Uint8Array[] = [];
  const gunzip = new Gunzip((data) => out.push(data));
  const push = (chunk: Uint8Array, final: boolean) => {
    try {
      gunzip.push(chunk, final);
    } catch (e) {
      throw new TraceError(path, 0, `cannot read it: not valid gzip (${(e as Error).message})`);
    }
  };
  for (const chunk of chunks) {
    push(chunk.slice(), false);
    yield* out.splice(0);
  }
  push(new Uint8Array(0), true);
  yield* out.splice(0);
}

/**
 * The trace in `chunks` (each valid until the next is taken), memvisor's format or lackey, told
 * by the first bytes; errors name `path`.
 */
export function traceFromChunks(chunks: Iterator<Uint8Array>, path: string): Trace {
  const first = chunks.next();
  if (first.done) throw new TraceError(path, 0, "no memory accesses in it: the file is empty");
  return startsWithMagic(first.value)
    ? readBinary(first.value, chunks, path)
    : readLackey(first.value, chunks, path);
}

/** A lackey trace's records, from its chunks. */
function readLackey(first: Uint8Array, rest: Iterator<Uint8Array>, path: string): Trace {
  const builder = new TraceBuilder();
  const reader = new LackeyReader({ file: path }, (batch) => builder.add(batch));
  reader.push(first);
  for (let c = rest.next(); !c.done; c = rest.next()) reader.push(c.value);
  reader.end();
  return builder.finish();
}

/** A memvisor trace's records, from its chunks: the header's count, then exactly that many. */
function readBinary(first: Uint8Array, rest: Iterator<Uint8Array>, path: string): Trace {
  const fail = (problem: string): never => {
    throw new TraceError(path, 0, problem);
  };
  const header = withWholeHeader(first, rest);
  const count = headerCount(header.subarray(0, TRACE_HEADER_BYTES));
  if (typeof count === "string") return fail(count);
  if (count > MAX_TRACE_RECORDS)
    return fail(`the header says ${count} records: ${TOO_MANY_RECORDS}`);
  const words = new Uint32Array(count * 2);
  const bytes = new Uint8Array(words.buffer);
  const expected = TRACE_HEADER_BYTES + count * TRACE_RECORD_BYTES;
  let have = 0;
  const take = (chunk: Uint8Array) => {
    if (have + chunk.length > bytes.length) {
      fail(`the header says ${count} records (${expected} bytes) but the file has more bytes`);
    }
    bytes.set(chunk, have);
    have += chunk.length;
  };
  take(header.subarray(TRACE_HEADER_BYTES));
  for (let c = rest.next(); !c.done; c = rest.next()) take(c.value);
  if (have !== bytes.length) {
    fail(
      `the header says ${count} records (${expected} bytes) but the file has ${TRACE_HEADER_BYTES + have} bytes`,
    );
  }
  checkRecords(words, count, path);
  return new Trace(words, count);
}

/**
 * The first piece of a memvisor trace with its header whole: itself, or, when the header runs
 * past it, a copy of it joined with the next piece (which may reuse the first's buffer).
 */
export function withWholeHeader(first: Uint8Array, rest: Iterator<Uint8Array>): Uint8Array {
  if (first.length >= TRACE_HEADER_BYTES) return first;
  const kept = first.slice();
  const next = rest.next();
  return next.done ? kept : concat(kept, next.value);
}

export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Whether the bytes start as memvisor's format does. */
export function startsWithMagic(bytes: Uint8Array): boolean {
  for (let i = 0; i < TRACE_MAGIC.length; i++) {
    if (bytes[i] !== TRACE_MAGIC.charCodeAt(i)) return false;
  }
  return true;
}
