/**
 * memvisor's own binary trace format, replayed from typed arrays with no parsing:
 *
 *   offset 0   "MVTR"                magic
 *          4   u16 version (1)       little-endian, as everything below
 *          6   u16 flags (0)
 *          8   u32 records, low half
 *         12   u32 records, high half
 *         16   records, 8 bytes each:
 *                u32 address bits 0..31
 *                u32 address bits 32..47 | kind << 16 | (size - 1) << 20
 *
 * kind: 0 load, 1 store, 2 fetch; size 1..4096 bytes, never crossing a page (the importer
 * splits such accesses). A record is two u32 words, so a file's records are a Uint32Array view.
 */

import { MAX_TRACE_RECORDS } from "../../config/limits.js";
import { Trace } from "../../config/trace.js";
import { TOO_MANY_RECORDS, type TraceBatch, TraceError } from "./lackey.js";

export const TRACE_MAGIC = "MVTR";
export const TRACE_VERSION = 1;
export const TRACE_HEADER_BYTES = 16;
export const TRACE_RECORD_BYTES = 8;
/**
 * Records a trace file may have when it is streamed (imported, or read in chunks for a run):
 * its byte positions stay exact as numbers. Only a trace read whole (readTrace) is bounded by
 * what memory holds (MAX_TRACE_RECORDS).
 */
export const STREAMED_RECORDS_MAX = 2 ** 50;

/** The header for a file of `records` records. */
export function traceHeader(records: number): Uint8Array {
  const header = new Uint8Array(TRACE_HEADER_BYTES);
  const view = new DataView(header.buffer);
  for (let i = 0; i < 4; i++) header[i] = TRACE_MAGIC.charCodeAt(i);
  view.setUint16(4, TRACE_VERSION, true);
  view.setUint16(6, 0, true);
  view.setUint32(8, records % 2 ** 32, true);
  view.setUint32(12, Math.floor(records / 2 ** 32), true);
  return header;
}

/** A batch's records in the file's layout. */
export function encodeRecords(batch: TraceBatch): Uint8Array {
  const words = new Uint32Array(batch.count * 2);
  for (let i = 0; i < batch.count; i++) {
    words[2 * i] = batch.addrLo[i];
    words[2 * i + 1] =
      (batch.addrHi[i] | (batch.kind[i] << 16) | ((batch.size[i] - 1) << 20)) >>> 0;
  }
  return new Uint8Array(words.buffer);
}

/** Collects batches into one Trace in memory (a lackey file read for a scenario). */
export class TraceBuilder {
  private words = new Uint32Array(1 << 16);
  private count = 0;

  add(batch: TraceBatch): void {
    const need = (this.count + batch.count) * 2;
    if (need > this.words.length) {
      const grown = new Uint32Array(Math.max(need, this.words.length * 2));
      grown.set(this.words.subarray(0, this.count * 2));
      this.words = grown;
    }
    this.words.set(new Uint32Array(encodeRecords(batch).buffer), this.count * 2);
    this.count += batch.count;
  }

  finish(): Trace {
    return new Trace(this.words.slice(0, this.count * 2), this.count);
  }
}

/**
 * Throws TraceError naming `file` at the first record of a kind or size no access has; `first`
 * is the number of the first record in `words` (a chunk of a longer trace).
 */
export function checkRecords(words: Uint32Array, count: number, file: string, first = 0): void {
  for (let i = 0; i < count; i++) {
    const meta = words[2 * i + 1];
    const size = ((meta >>> 20) & 0xfff) + 1;
    if (((meta >>> 16) & 3) > 2 || (words[2 * i] & 4095) + size > 4096) {
      throw new TraceError(
        file,
        0,
        `record ${first + i} is not valid (kind ${(meta >>> 16) & 3}, size ${size})`,
      );
    }
  }
}

/** The record count a header gives, or the reason it is not a memvisor trace's header. */
export function headerCount(header: Uint8Array): number | string {
  if (header.length < TRACE_HEADER_BYTES) return "not a memvisor trace: shorter than its header";
  for (let i = 0; i < 4; i++) {
    if (header[i] !== TRACE_MAGIC.charCodeAt(i)) {
      return `not a memvisor trace: it does not start with "${TRACE_MAGIC}"`;
    }
  }
  const view = new DataView(header.buffer, header.byteOffset, TRACE_HEADER_BYTES);
  const version = view.getUint16(4, true);
  if (version !== TRACE_VERSION) {
    return `trace format version ${version}; this memvisor reads version ${TRACE_VERSION}`;
  }
  return view.getUint32(8, true) + view.getUint32(12, true) * 2 ** 32;
}

/** Read a trace file's bytes (the whole file); errors name `file`. */
export function decodeTrace(bytes: Uint8Array, file: string): Trace {
  const fail = (problem: string): never => {
    throw new TraceError(file, 0, problem);
  };
  const count = headerCount(bytes);
  if (typeof count === "string") return fail(count);
  if (count > MAX_TRACE_RECORDS)
    return fail(`the header says ${count} records: ${TOO_MANY_RECORDS}`);
  const expected = TRACE_HEADER_BYTES + count * TRACE_RECORD_BYTES;
  if (bytes.length !== expected) {
    fail(
      `the header says ${count} records (${expected} bytes) but the file has ${bytes.length} bytes`,
    );
  }
  // The records as words: copied when the bytes are not 4-byte aligned in their buffer.
  const payload = bytes.subarray(TRACE_HEADER_BYTES);
  const aligned = payload.byteOffset % 4 === 0 ? payload : payload.slice();
  const words = new Uint32Array(aligned.buffer, aligned.byteOffset, count * 2);
  checkRecords(words, count, file);
  return new Trace(words, count);
}

/** Encode whole batches into one file image (for tests and small traces). */
export function encodeTrace(batches: TraceBatch[]): Uint8Array {
  const count = batches.reduce((n, b) => n + b.count, 0);
  const out = new Uint8Array(TRACE_HEADER_BYTES + count * TRACE_RECORD_BYTES);
  out.set(traceHeader(count), 0);
  let at = TRACE_HEADER_BYTES;
  for (const b of batches) {
    const bytes = encodeRecords(b);
    out.set(bytes, at);
    at += bytes.length;
  }
  return out;
}
