/** The trace benchmarks: parsing a real lackey file (lines per second), replaying a trace. */

import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { Simulation } from "../api/simulation.js";
import { parseScenario } from "../workload/scenario/parse.js";
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
  const trace = openTrace(FIXTURE.pathname);
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
