/** The trace benchmarks: parsing a real lackey file (lines per second), replaying a trace. */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { Simulation } from "../api/simulation.js";
import type { TraceRecords } from "../config/trace.js";
import { parseScenario } from "../workload/scenario/parse.js";
import { chunkCache } from "../workload/trace/cache.js";
import { readTrace } from "../workload/trace/file.js";
import { traceHeader } from "../workload/trace/format.js";
import { LackeyReader } from "../workload/trace/lackey.js";
import { openTrace } from "../workload/trace/stream.js";
import { type BenchResult, round, timeIt } from "./access.js";

/** The committed fixture: valgrind lackey on `sort /etc/services`, 1.3 million lines. */
const FIXTURE = new URL("../../traces/sort-services.lackey.gz", import.meta.url);

export function benchLackeyParse(): BenchResult {
  const bytes = new Uint8Array(gunzipSync(readFileSync(FIXTURE)));
  const parse = (): number => {
    let records = 0;
    const reader = new LackeyReader({ file: "fixture" }, (b) => {
      records += b.count;
    });
    // 1 MiB chunks, as a file is streamed.
    for (let at = 0; at < bytes.length; at += 1 << 20)
      reader.push(bytes.subarray(at, at + (1 << 20)));
    reader.end();
    return reader.lines + records * 0;
  };
  parse(); // warm-up: JIT
  let lines = 0;
  const rounds = 5;
  const seconds = timeIt(() => {
    for (let r = 0; r < rounds; r++) lines += parse();
  });
  return {
    name: "lackey-parse",
    lines,
    seconds: round(seconds),
    lines_per_s: Math.round(lines / seconds),
    mib_per_s: Math.round((rounds * bytes.length) / 2 ** 20 / seconds),
  };
}

/**
 * A recorded trace replayed by the run loop (scheduler, process driver, guest faults), looped,
 * natively or under shadow paging: what `memvisor run` does with a trace process. The first
 * pass's demand faults are in the warm-up; the figure is the steady replay.
 */
export function benchTraceReplay(mode: "native" | "shadow", name: string): BenchResult {
  return replay(mode, name, openTrace(FIXTURE.pathname));
}

/** Records per chunk in trace-replay-stream: 41 chunks of the fixture, more than stay resident. */
const STREAM_CHUNK = 1 << 15;

/**
 * trace-replay-native with the trace read in chunks from a file, as a trace too large to keep
 * whole is: the fixture in memvisor's format, cut into more chunks than the cache keeps, so that
 * every chunk is read from the file again on every pass (from the page cache).
 */
export function benchTraceReplayStream(): BenchResult {
  const dir = mkdtempSync(join(tmpdir(), "memvisor-bench-"));
  try {
    const whole = readTrace(FIXTURE.pathname);
    const path = join(dir, "fixture.mvtr");
    const records = new Uint8Array(whole.words.buffer, whole.words.byteOffset, 8 * whole.count);
    writeFileSync(path, Buffer.concat([traceHeader(whole.count), records]));
    const trace = openTrace(path, { chunkRecords: STREAM_CHUNK, wholeRecords: 0 });
    const loads = chunkCache.loads;
    const result = replay("native", "trace-replay-stream", trace);
    return { ...result, chunks: trace.chunks, chunk_reads: chunkCache.loads - loads };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function replay(mode: "native" | "shadow", name: string, trace: TraceRecords): BenchResult {
  const yaml = [
    `run: { accesses: ${REPLAY_ACCESSES}, warmup: ${REPLAY_WARMUP} }`,
    "domains:",
    "  - name: d",
    "    memory: 256MiB",
    `    mode: ${mode}`,
    "    processes:",
    "      - { name: sort, kind: trace, trace: fixture, loop: true }",
    "",
  ].join("\n");
  const scenario = parseScenario(yaml, "bench.yaml", { loadTrace: () => trace });
  new Simulation(scenario, { accesses: REPLAY_WARMUP }).run(); // JIT
  const sim = new Simulation(scenario);
  sim.runTurn(); // the warm-up (the first pass's faults), then the first measured slice
  const before = sim.accessesDone;
  const seconds = timeIt(() => sim.run());
  const accesses = sim.accessesDone - before;
  return {
    name,
    accesses,
    seconds: round(seconds),
    accesses_per_s: Math.round(accesses / seconds),
    trace_records: trace.count,
  };
}

const REPLAY_ACCESSES = 20_000_000;
const REPLAY_WARMUP = 1_500_000;
