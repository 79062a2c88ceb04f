/**
 * A reader of valgrind lackey traces (`valgrind --tool=lackey --trace-mem=yes`):
 *
 *   I  04001e90,3        an instruction fetch (I in column 0, two spaces)
 *    L 1ffefffd58,8      a load, a store (S) or a modify (M: a load and a store), space first
 *   ==12345== ...        valgrind's own lines: skipped
 *
 * It works on bytes, chunk by chunk (a line may straddle two chunks), so that a file larger
 * than memory streams through it, and it creates no string per line. Records go out in batches
 * of typed arrays; a modify becomes a load and a store, and an access that crosses a page
 * boundary becomes two accesses, one on each page. A bad line is an error naming the file and
 * the line, or, with `skipBad`, is counted and skipped.
 */

import { LACKEY_LINE_MAX, MAX_TRACE_RECORDS } from "../../config/limits.js";

/** Why a trace is more than readTrace holds whole in memory (a run streams one of any size). */
export const TOO_MANY_RECORDS =
  `more than ${MAX_TRACE_RECORDS.toLocaleString("en-US")} records, the most a trace read whole ` +
  "holds in memory (1 GiB): read it in chunks (openTrace), as a run does";

/** Record kinds (the binary trace format's too). */
export const TRACE_LOAD = 0;
export const TRACE_STORE = 1;
export const TRACE_FETCH = 2;

export const TRACE_KIND_NAMES = ["load", "store", "fetch"] as const;

/** Records per batch handed to the sink. */
export const TRACE_BATCH = 65536;

/** A batch of records: the first `count` entries of each array. */
export class TraceBatch {
  readonly addrLo = new Uint32Array(TRACE_BATCH);
  /** Address bits 32..47. */
  readonly addrHi = new Uint16Array(TRACE_BATCH);
  readonly size = new Uint16Array(TRACE_BATCH);
  readonly kind = new Uint8Array(TRACE_BATCH);
  count = 0;
}

export class TraceError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly problem: string,
  ) {
    super(line > 0 ? `${file}:${line}: ${problem}` : `${file}: ${problem}`);
    this.name = "TraceError";
  }
}

export interface LackeyOptions {
  /** Named in errors. */
  file: string;
  /** Count and skip bad lines instead of stopping at the first. */
  skipBad?: boolean;
  /** Records beyond which the reader stops with an error (a run holds at most so many). */
  maxRecords?: number;
}

const CH_NL = 10;
const CH_CR = 13;
const CH_SPACE = 32;
const CH_COMMA = 44;
const CH_EQ = 61;
const CH_I = 73;
const CH_L = 76;
const CH_M = 77;
const CH_S = 83;

// What scan() found wrong, as indices into PROBLEMS.
const OK = 0;
const P_I_SPACES = 1;
const P_NOT_TRACE = 2;
const P_LSM_SPACE = 3;
const P_WIDE = 4;
const P_NO_ADDRESS = 5;
const P_NO_COMMA = 6;
const P_BIG = 7;
const P_NO_SIZE = 8;
const P_ZERO = 9;
const PROBLEMS = [
  "",
  "an I line needs two spaces after the I",
  "not a trace line",
  "a space is missing after L, S or M",
  "an address wider than 48 bits",
  "no hex address",
  "no comma after the address",
  "a size above 4096",
  "no size after the comma",
  "a size of 0",
];

/** Hex digit value of each byte, or -1: one table load per digit on the parsing path. */
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[65 + c] = 10 + c;
  HEX[97 + c] = 10 + c;
}

export class LackeyReader {
  /** Lines read so far (complete lines). */
  lines = 0;
  /** Bad lines skipped (with skipBad). */
  skipped = 0;
  /** Records sent to the sink. */
  records = 0;
  /** Trace lines (I, L, S, M) read. */
  accessLines = 0;
  /** Whether valgrind's end-of-run summary ("==PID== Exit code: N") was read. */
  sawExitCode = false;
  private readonly maxRecords: number;
  private batch = new TraceBatch();
  /** The bytes of a line that began in an earlier chunk. */
  private carry = new Uint8Array(LACKEY_LINE_MAX);
  private carryLength = 0;
  private carryOverflow = false;

  constructor(
    private readonly options: LackeyOptions,
    private readonly sink: (batch: TraceBatch) => void,
  ) {
    this.maxRecords = options.maxRecords ?? MAX_TRACE_RECORDS;
  }

  /** Bytes of a line not yet ended, held from the chunks pushed so far. */
  get pendingBytes(): number {
    return this.carryLength;
  }

  /** Parse a chunk of the file. */
  push(chunk: Uint8Array): void {
    let start = 0;
    if (this.carryLength > 0 || this.carryOverflow) {
      const nl = chunk.indexOf(CH_NL);
      if (nl < 0) {
        this.appendCarry(chunk, 0, chunk.length);
        return;
      }
      this.appendCarry(chunk, 0, nl);
      this.lineDone(this.carry, 0, this.carryLength, this.carryOverflow);
      this.carryLength = 0;
      this.carryOverflow = false;
      start = nl + 1;
    }
    for (;;) {
      const next = this.fastLine(chunk, start);
      if (next >= 0) {
        start = next;
        continue;
      }
      const nl = chunk.indexOf(CH_NL, start);
      if (nl < 0) break;
      this.lineDone(chunk, start, nl, false);
      start = nl + 1;
    }
    if (start < chunk.length) this.appendCarry(chunk, start, chunk.length);
  }

  /**
   * The common case in one pass (no separate search for the newline, which measured as much as
   * the parsing): a well-formed access line that ends in this chunk. Returns the start of the
   * next line, or -1 to leave the line to the general path (anything else, including errors).
   */
  private fastLine(buf: Uint8Array, start: number): number {
    if (this.scan(buf, start, buf.length) !== OK) return -1;
    let i = this.scanEnd;
    if (buf[i] === CH_CR) i++;
    if (i >= buf.length || buf[i] !== CH_NL) return -1;
    this.lines++;
    this.emitScanned();
    return i + 1;
  }

  /** The end of the file: a last line without a newline, then the last batch. */
  end(): void {
    if (this.carryLength > 0 || this.carryOverflow) {
      this.lineDone(this.carry, 0, this.carryLength, this.carryOverflow);
      this.carryLength = 0;
      this.carryOverflow = false;
    }
    this.flush();
  }

  private appendCarry(chunk: Uint8Array, from: number, to: number): void {
    const n = to - from;
    if (this.carryLength + n > this.carry.length) {
      // No trace line is this long: not a trace at all (stop now: a file with no newline would
      // be read to its end), or, with skipBad, a bad line.
      if (!this.options.skipBad) {
        throw new TraceError(
          this.options.file,
          this.lines + 1,
          `a line longer than ${LACKEY_LINE_MAX} bytes: not a lackey trace`,
        );
      }
      this.carryOverflow = true;
      return;
    }
    this.carry.set(chunk.subarray(from, to), this.carryLength);
    this.carryLength += n;
  }

  private lineDone(buf: Uint8Array, start: number, end: number, overflow: boolean): void {
    this.lines++;
    if (end > start && buf[end - 1] === CH_CR) end--; // CRLF files
    if (end === start) return; // an empty line
    const c0 = buf[start];
    if (c0 === CH_EQ) {
      // ==PID== lines are valgrind's own; the last of its summary gives the exit code.
      if (!this.sawExitCode && end - start < 80) {
        const text = new TextDecoder().decode(buf.subarray(start, end));
        this.sawExitCode = /^==\d+== Exit code:/.test(text);
      }
      return;
    }
    const problem = overflow
      ? "a line longer than any trace line"
      : this.parseLine(buf, start, end);
    if (problem === null) return;
    if (this.options.skipBad) {
      this.skipped++;
      return;
    }
    const text = new TextDecoder().decode(buf.subarray(start, Math.min(end, start + 60)));
    throw new TraceError(
      this.options.file,
      this.lines,
      `${problem}, got ${JSON.stringify(text)} (expected "I  ADDR,SIZE" or " L|S|M ADDR,SIZE", hex address, decimal size)`,
    );
  }

  /** Parse one access line of [start, end); returns null, or what is wrong with it. */
  private parseLine(buf: Uint8Array, start: number, end: number): string | null {
    const problem = this.scan(buf, start, end);
    if (problem !== OK) return PROBLEMS[problem];
    if (this.scanEnd !== end) return "something after the size";
    this.emitScanned();
    return null;
  }

  /** Emit the access the last scan found (a modify is a load and a store). */
  private emitScanned(): void {
    this.accessLines++;
    const { scanHi: hi, scanLo: lo, scanSize: size } = this;
    if (this.scanKind < 0) {
      this.emit(TRACE_LOAD, hi, lo, size);
      this.emit(TRACE_STORE, hi, lo, size);
    } else {
      this.emit(this.scanKind, hi, lo, size);
    }
  }

  // The last scan's access: kind (-1: a modify), address halves, size, and where it stopped.
  private scanKind = 0;
  private scanHi = 0;
  private scanLo = 0;
  private scanSize = 0;
  private scanEnd = 0;

  /**
   * Scan an access line from `start` up to the end of its size (not past `end`): OK with the
   * scan* fields set, or a PROBLEMS index. Both the one-pass path and the general path use it.
   */
  private scan(buf: Uint8Array, start: number, end: number): number {
    let i = start;
    let kind: number;
    const c0 = buf[i];
    if (c0 === CH_I) {
      if (i + 2 >= end || buf[i + 1] !== CH_SPACE || buf[i + 2] !== CH_SPACE) return P_I_SPACES;
      kind = TRACE_FETCH;
    } else if (c0 === CH_SPACE) {
      const c1 = buf[i + 1];
      if (c1 === CH_L) kind = TRACE_LOAD;
      else if (c1 === CH_S) kind = TRACE_STORE;
      else if (c1 === CH_M) kind = -1;
      else return P_NOT_TRACE;
      if (i + 2 >= end || buf[i + 2] !== CH_SPACE) return P_LSM_SPACE;
    } else {
      return P_NOT_TRACE;
    }
    i += 3;
    // The hex address: up to 12 digits (48 bits), split into 32 low and 16 high bits.
    let lo = 0;
    let hi = 0;
    let digits = 0;
    const addrStart = i;
    for (; i < end; i++) {
      const v = HEX[buf[i]];
      if (v < 0) break;
      if (digits === 0 && v === 0) continue; // leading zeroes do not count
      if (++digits > 12) return P_WIDE;
      hi = ((hi << 4) | (lo >>> 28)) & 0xffff;
      lo = ((lo << 4) | v) >>> 0;
    }
    if (i === addrStart) return P_NO_ADDRESS;
    if (i >= end || buf[i] !== CH_COMMA) return P_NO_COMMA;
    i++;
    let size = 0;
    const sizeStart = i;
    for (; i < end; i++) {
      const c = buf[i];
      if (c < 48 || c > 57) break;
      size = size * 10 + (c - 48);
      if (size > 4096) return P_BIG;
    }
    if (i === sizeStart) return P_NO_SIZE;
    if (size === 0) return P_ZERO;
    this.scanKind = kind;
    this.scanHi = hi;
    this.scanLo = lo;
    this.scanSize = size;
    this.scanEnd = i;
    return OK;
  }

  /** One access; split in two when it crosses a page boundary. */
  private emit(kind: number, hi: number, lo: number, size: number): void {
    const offset = lo & 4095;
    if (offset + size > 4096) {
      const first = 4096 - offset;
      this.add(kind, hi, lo, first);
      let nextLo = lo + first;
      let nextHi = hi;
      if (nextLo >= 4294967296) {
        nextLo -= 4294967296;
        nextHi = (hi + 1) & 0xffff;
      }
      this.add(kind, nextHi, nextLo, size - first);
      return;
    }
    this.add(kind, hi, lo, size);
  }

  private add(kind: number, hi: number, lo: number, size: number): void {
    const b = this.batch;
    const n = b.count;
    b.addrLo[n] = lo;
    b.addrHi[n] = hi;
    b.size[n] = size;
    b.kind[n] = kind;
    b.count = n + 1;
    if (++this.records > this.maxRecords) {
      throw new TraceError(this.options.file, this.lines, TOO_MANY_RECORDS);
    }
    if (b.count === TRACE_BATCH) this.flush();
  }

  private flush(): void {
    if (this.batch.count === 0) return;
    this.sink(this.batch);
    this.batch = new TraceBatch();
  }
}
