/**
 * Traces read in chunks as they are replayed (trace/stream.ts): small files cut into many small
 * chunks give the records, the layout and the runs a trace read whole gives, in both formats,
 * plain and gzip; processes replaying one trace share its chunks and memory holds a bounded
 * number of them; a bad line far into a file, or a file changed under a run, stops with an error
 * naming the file.
 */

import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Simulation } from "../src/api/simulation.js";
import type { Trace, TraceRecords } from "../src/config/trace.js";
import { parseScenario } from "../src/workload/scenario/parse.js";
import { chunkCache } from "../src/workload/trace/cache.js";
import { importLackey, readTrace } from "../src/workload/trace/file.js";
import { TraceError } from "../src/workload/trace/lackey.js";
import { traceLayout } from "../src/workload/trace/layout.js";
import { TraceReader } from "../src/workload/trace/reader.js";
import { FileTrace, openTrace, type TraceCut } from "../src/workload/trace/stream.js";

const FIXTURE = new URL("../traces/sort-services.lackey.gz", import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), "memvisor-tracestream-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Small chunks, nothing kept whole, lackey text parsed 13 bytes at a time. */
const SMALL: TraceCut = { chunkRecords: 997, wholeRecords: 0, pieceBytes: 13 };

/**
 * The fixture's first 20,000 lines with what a real log also has: a modify, an access crossing
 * a page, valgrind's own lines, CRLF line ends, and a last line with no newline.
 */
let text: string;
const paths: Record<string, string> = {};
let whole: Trace;

beforeAll(async () => {
  const lines = gunzipSync(readFileSync(FIXTURE)).toString("latin1").split("\n").slice(0, 20_000);
  lines.splice(5000, 0, " M 1ffefffd50,8", "==123== a valgrind line", "");
  lines.splice(9000, 0, " S 1ffeffeffc,16\r");
  text = `${lines.join("\n")}\nI  04001e90,3`;
  const write = (name: string, content: string | Uint8Array) => {
    paths[name] = join(tmp, name);
    writeFileSync(paths[name], content);
  };
  write("t.lackey", text);
  write("t.lackey.gz", gzipSync(text));
  paths["t.mvtr"] = join(tmp, "t.mvtr");
  await importLackey(paths["t.lackey"], paths["t.mvtr"], {});
  write("t.mvtr.gz", gzipSync(readFileSync(paths["t.mvtr"])));
  whole = readTrace(paths["t.lackey"]);
});

afterEach(() => {
  chunkCache.limit = 16;
});

/** Every record of a trace, through a reader, as one array. */
function allWords(trace: TraceRecords): Uint32Array {
  const out = new Uint32Array(2 * trace.count);
  const reader = new TraceReader(trace);
  let n = 0;
  for (let j = reader.next(); j >= 0; j = reader.next()) {
    out[n++] = reader.words[j];
    out[n++] = reader.words[j + 1];
  }
  expect(n).toBe(2 * trace.count);
  return out;
}

describe("the records in chunks", () => {
  it("are the records read whole, in both formats, plain and gzip", () => {
    expect(whole.count).toBeGreaterThan(20_000);
    for (const name of ["t.lackey", "t.lackey.gz", "t.mvtr", "t.mvtr.gz"]) {
      chunkCache.clear();
      const trace = openTrace(paths[name], SMALL);
      expect(trace.facts.whole, name).toBeNull();
      expect(trace.chunks, name).toBeGreaterThan(20);
      expect(trace.count, name).toBe(whole.count);
      expect(allWords(trace), name).toEqual(whole.words);
      // A second pass (a loop) reads them again.
      expect(allWords(trace), name).toEqual(whole.words);
    }
  });

  it("cut lackey text at line boundaries: no chunk holds part of a line's records", () => {
    const trace = openTrace(paths["t.lackey"], SMALL);
    const { offsets, firsts } = trace.facts;
    for (let k = 0; k < trace.chunks; k++) {
      const at = (offsets as Float64Array)[k];
      expect(at === 0 || text[at - 1] === "\n").toBe(true);
      expect(trace.chunk(k).length).toBe(
        2 * ((firsts as Float64Array)[k + 1] - (firsts as Float64Array)[k]),
      );
      // At least a chunk's records, but for the last.
      if (k < trace.chunks - 1) expect(trace.chunk(k).length).toBeGreaterThanOrEqual(2 * 997);
    }
  });

  it("give the layout and the counts the whole trace gives, from the one reading", () => {
    const kinds = [0, 0, 0];
    for (let i = 0; i < whole.count; i++) kinds[whole.kind(i)]++;
    for (const name of ["t.lackey", "t.mvtr.gz"]) {
      const trace = openTrace(paths[name], SMALL);
      expect(trace.facts.kinds).toEqual(kinds);
      const loads = chunkCache.loads;
      expect(traceLayout(trace)).toEqual(traceLayout(whole));
      expect(chunkCache.loads).toBe(loads); // not read again for it
    }
  });

  it("a small trace is kept whole: one chunk, never read again", () => {
    const trace = openTrace(paths["t.mvtr"]);
    expect(trace.chunks).toBe(1);
    expect(trace.facts.whole).toEqual(whole.words);
    const loads = chunkCache.loads;
    expect(allWords(trace)).toEqual(whole.words);
    expect(chunkCache.loads).toBe(loads);
  });

  it("a structured clone (a worker thread's task) revives as the same trace", () => {
    const trace = openTrace(paths["t.lackey.gz"], SMALL);
    const revived = FileTrace.revive(structuredClone(trace));
    expect(revived).toBeInstanceOf(FileTrace);
    expect(allWords(revived as TraceRecords)).toEqual(whole.words);
    expect(traceLayout(revived as TraceRecords)).toEqual(traceLayout(whole));
  });
});

const yaml = (processes: number) =>
  [
    "run: { accesses: 120000 }",
    "domains:",
    "  - name: d",
    "    memory: 64MiB",
    "    mode: shadow",
    "    quantum: 50us",
    "    processes:",
    `      - { name: t, kind: trace, trace: t.trace, loop: true, instances: ${processes} }`,
    "",
  ].join("\n");
const report = (yamlText: string, trace: TraceRecords) =>
  JSON.stringify(
    new Simulation(parseScenario(yamlText, "t.yaml", { loadTrace: () => trace })).run(),
  );

describe("replays", () => {
  it("give the report a trace read whole gives, looped, by processes at different places", () => {
    const want = report(yaml(3), whole);
    for (const name of ["t.mvtr", "t.lackey.gz"]) {
      chunkCache.clear();
      // Fewer chunks resident than the processes replay at once: chunks are read again.
      chunkCache.limit = 2;
      const trace = openTrace(paths[name], SMALL);
      const loads = chunkCache.loads;
      expect(report(yaml(3), trace), name).toBe(want);
      expect(chunkCache.size).toBeLessThanOrEqual(2);
      expect(chunkCache.loads - loads).toBeGreaterThan(trace.chunks);
    }
  });

  it("processes replaying one trace share its chunks", () => {
    chunkCache.clear();
    const trace = openTrace(paths["t.mvtr"], { chunkRecords: 4096, wholeRecords: 0 });
    chunkCache.limit = trace.chunks;
    const loads = chunkCache.loads;
    // Three processes replay the whole trace and more: each chunk is read once.
    const yamlText = yaml(3).replace("120000", String(4 * whole.count));
    expect(report(yamlText, trace)).toBe(report(yamlText, whole));
    expect(chunkCache.loads - loads).toBe(trace.chunks);
  });
});

describe("errors", () => {
  it("a bad line far into a lackey file names the file and the line, before any replay", () => {
    const bad = `${text.split("\n").slice(0, 15_000).join("\n")}\n L 12,x\n`;
    for (const [name, content] of [
      ["bad.lackey", bad],
      ["bad.lackey.gz", gzipSync(bad)],
    ] as const) {
      const path = join(tmp, name);
      writeFileSync(path, content);
      expect(() => openTrace(path, SMALL)).toThrow(
        new TraceError(
          path,
          15_001,
          'no size after the comma, got " L 12,x" (expected "I  ADDR,SIZE" or " L|S|M ADDR,SIZE", hex address, decimal size)',
        ),
      );
    }
  });

  it("a bad record far into a memvisor file is named by its number", () => {
    const bytes = readFileSync(paths["t.mvtr"]);
    bytes[16 + 8 * 12_345 + 6] = 0x03; // kind 3
    const path = join(tmp, "bad.mvtr");
    writeFileSync(path, bytes);
    expect(() => openTrace(path, SMALL)).toThrow(`${path}: record 12345 is not valid (kind 3,`);
  });

  it("a file changed under a run stops it with an error naming the file", () => {
    for (const name of ["c.mvtr", "c.lackey"]) {
      const path = join(tmp, name);
      writeFileSync(path, readFileSync(paths[name === "c.mvtr" ? "t.mvtr" : "t.lackey"]));
      chunkCache.clear();
      const trace = openTrace(path, SMALL);
      appendFileSync(path, name === "c.mvtr" ? new Uint8Array(8) : " L 12,4\n");
      const sim = new Simulation(parseScenario(yaml(1), "t.yaml", { loadTrace: () => trace }));
      expect(() => sim.run()).toThrow(
        `${path}: it changed while the run replayed it (it was read when the run started); run again`,
      );
    }
  });

  it("in a worker thread, it reaches the caller as that TraceError, not a plain Error", async () => {
    // The built pool (dist/): from the sources every run is made in this thread.
    const built = new URL("../dist/api/pool.js", import.meta.url).href;
    const { RunPool } = (await import(built)) as typeof import("../src/api/pool.js");
    const path = join(tmp, "w.mvtr");
    writeFileSync(path, readFileSync(paths["t.mvtr"]));
    const trace = openTrace(path, SMALL);
    appendFileSync(path, new Uint8Array(8));
    const scenario = parseScenario(yaml(1), "t.yaml", { loadTrace: () => trace });
    // Every task to the workers: this thread, free at once, would take it before one started.
    const pool = new RunPool(2, { inThisThread: false });
    try {
      expect(pool.threaded).toBe(true);
      const run = pool.run({ scenario, options: {} });
      await expect(run).rejects.toThrow(
        `${path}: it changed while the run replayed it (it was read when the run started); run again`,
      );
      await expect(run).rejects.toMatchObject({ name: "TraceError", file: path });
    } finally {
      await pool.close();
    }
  });
});
