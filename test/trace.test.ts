/**
 * The lackey reader and the binary trace format: every line form, lines cut across chunks at
 * every byte, page-crossing accesses, every malformed form with its line number, the real
 * fixture (valgrind lackey on `sort /etc/services`), and the round trip lackey -> our format ->
 * the same access sequence.
 */

import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, test } from "vitest";
import { decodeTrace, encodeTrace, traceHeader } from "../src/workload/trace/format.js";
import {
  LackeyReader,
  TRACE_FETCH,
  TRACE_LOAD,
  TRACE_STORE,
  type TraceBatch,
  TraceError,
} from "../src/workload/trace/lackey.js";

interface Access {
  kind: number;
  address: number;
  size: number;
}

/** Parse `text` in chunks of `chunk` bytes; returns the accesses and the reader. */
function parse(text: string | Uint8Array, chunk = 1 << 16, skipBad = false) {
  const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
  const out: Access[] = [];
  const batches: TraceBatch[] = [];
  const reader = new LackeyReader({ file: "t.lackey", skipBad }, (b) => {
    batches.push(b);
    for (let i = 0; i < b.count; i++) {
      out.push({ kind: b.kind[i], address: b.addrHi[i] * 2 ** 32 + b.addrLo[i], size: b.size[i] });
    }
  });
  for (let at = 0; at < bytes.length; at += chunk) reader.push(bytes.subarray(at, at + chunk));
  reader.end();
  return { out, reader, batches };
}

function errorOf(text: string): TraceError {
  try {
    parse(text);
  } catch (e) {
    if (e instanceof TraceError) return e;
    throw e;
  }
  throw new Error(`no error for ${JSON.stringify(text)}`);
}

const SAMPLE = [
  "==123== Lackey, an example Valgrind tool",
  "I  04001e90,3",
  " L 1ffefffd58,8",
  " S 7ff000010,4",
  " M 0403ba68,4",
  "",
  "==123== ",
].join("\n");

describe("lackey lines", () => {
  test("every form: fetch, load, store, modify (a load and a store); valgrind's lines skipped", () => {
    const { out, reader } = parse(SAMPLE);
    expect(out).toEqual([
      { kind: TRACE_FETCH, address: 0x4001e90, size: 3 },
      { kind: TRACE_LOAD, address: 0x1ffefffd58, size: 8 },
      { kind: TRACE_STORE, address: 0x7ff000010, size: 4 },
      { kind: TRACE_LOAD, address: 0x403ba68, size: 4 },
      { kind: TRACE_STORE, address: 0x403ba68, size: 4 },
    ]);
    expect(reader.lines).toBe(7);
    expect(reader.accessLines).toBe(4);
  });

  test("the same whatever the chunk boundaries, and with CRLF line ends", () => {
    const whole = parse(SAMPLE).out;
    for (let chunk = 1; chunk <= 20; chunk++) expect(parse(SAMPLE, chunk).out).toEqual(whole);
    expect(parse(SAMPLE.replaceAll("\n", "\r\n"), 7).out).toEqual(whole);
  });

  test("an access across a page boundary is split in two, one on each page", () => {
    const { out } = parse(" L 1ffc,8\n I  fffffffffe,4\n".replace(" I", "I"));
    expect(out).toEqual([
      { kind: TRACE_LOAD, address: 0x1ffc, size: 4 },
      { kind: TRACE_LOAD, address: 0x2000, size: 4 },
      { kind: TRACE_FETCH, address: 0xfffffffffe, size: 2 },
      { kind: TRACE_FETCH, address: 0x10000000000, size: 2 },
    ]);
  });
});

describe("malformed lackey input", () => {
  test.each([
    ["bad hex", "I  04001e90,3\n L 0x12,8\n", 2, "no comma after the address"],
    ["no hex at all", " L ,8\n", 1, "no hex address"],
    ["missing size", " S 1000,\n", 1, "no size after the comma"],
    ["missing comma", " S 1000 8\n", 1, "no comma after the address"],
    ["zero size", " S 1000,0\n", 1, "a size of 0"],
    ["address too wide", " L 1234567890abcd,8\n", 1, "an address wider than 48 bits"],
    ["junk after the size", " L 1000,8 x\n", 1, "something after the size"],
    ["unknown kind", " X 1000,8\n", 1, "not a trace line"],
    ["an I with one space", "I 1000,8\n", 1, "an I line needs two spaces after the I"],
    ["truncated file", "I  04001e90,3\n L 1ffef", 2, "no comma after the address"],
    ["not a trace", "#!/bin/sh\necho hello\n", 1, "not a trace line"],
  ])("%s", (_what, text, line, problem) => {
    const e = errorOf(text);
    expect(e.line).toBe(line);
    expect(e.message).toContain(`t.lackey:${line}: ${problem}, got `);
  });

  test("an empty file has no records and no error", () => {
    const { out, reader } = parse("");
    expect(out).toEqual([]);
    expect(reader.lines).toBe(0);
  });

  test("with skipBad, bad lines are counted and skipped", () => {
    const { out, reader } = parse("I  1000,4\ngarbage\n L 2000,8\n S zz,1\n", 1 << 16, true);
    expect(out.map((a) => a.address)).toEqual([0x1000, 0x2000]);
    expect(reader.skipped).toBe(2);
  });
});

describe("the real fixture", () => {
  const bytes = gunzipSync(
    readFileSync(new URL("../traces/sort-services.lackey.gz", import.meta.url)),
  );

  test("valgrind lackey on sort /etc/services parses completely", () => {
    const { reader } = parse(bytes, 1 << 16);
    expect(reader.skipped).toBe(0);
    expect(reader.accessLines).toBeGreaterThan(1_000_000);
    expect(reader.records).toBeGreaterThanOrEqual(reader.accessLines);
  });

  test("lackey -> our format -> the same access sequence", () => {
    const { out, batches } = parse(bytes, 1 << 20);
    const trace = decodeTrace(encodeTrace(batches), "t.mvtr");
    expect(trace.count).toBe(out.length);
    for (let i = 0; i < trace.count; i += 997) {
      expect({ kind: trace.kind(i), address: trace.address(i), size: trace.size(i) }).toEqual(
        out[i],
      );
    }
    expect(trace.address(trace.count - 1)).toBe(out[out.length - 1].address);
  });
});

describe("the binary format", () => {
  test("rejects what is not one of its files, with the reason", () => {
    const ok = encodeTrace(parse(SAMPLE).batches);
    expect(() => decodeTrace(new Uint8Array(3), "x")).toThrow(/shorter than its header/);
    expect(() => decodeTrace(new TextEncoder().encode("hello, world!!!!!"), "x")).toThrow(
      /does not start with "MVTR"/,
    );
    expect(() => decodeTrace(ok.subarray(0, ok.length - 3), "x")).toThrow(
      /the header says 5 records/,
    );
    const future = ok.slice();
    future[4] = 9;
    expect(() => decodeTrace(future, "x")).toThrow(/version 9/);
    expect(traceHeader(5)).toEqual(ok.subarray(0, 16));
  });
});
