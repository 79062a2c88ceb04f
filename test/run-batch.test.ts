/**
 * The run loop's batches (DomainRuntime.accessRun: a process's next accesses run through the
 * vCPU's batch) against the loop one step at a time (batchMax = 1), which is the judge: the
 * whole report and time series must be the same. The scenarios reach each place where a batch
 * must end or be cut: a clock read, the scheduler's slice end (a small fixed slice, work that
 * is not a whole number of cycles), a lifetime, a build child's and a churn's count, a trace's
 * chunk ends and its end, the OOM killer ending a process (another, or the one running), the
 * VMM crashing the domain inside the vCPU's batch, balloon and host swap between turns. With
 * the data caches on (the built-ins' default) the guest's clock prices each access's stall
 * before the batch runs, and takes back those of accesses a death or crash left unmade.
 */

import { describe, expect, it } from "vitest";
import { Simulation, type SimulationOptions } from "../src/api/simulation.js";
import type { PagingMode, Report, Scenario } from "../src/api/types.js";
import { Trace, type TraceRecords } from "../src/config/trace.js";
import { DomainCrash } from "../src/vmm/crash.js";
import { BUILTIN_SCENARIOS } from "../src/workload/scenario/builtin.js";
import { loadBuiltinScenario } from "../src/workload/scenario/file.js";
import { parseScenario } from "../src/workload/scenario/parse.js";
import { readTrace } from "../src/workload/trace/file.js";

const MODES: PagingMode[] = ["native", "shadow", "hap", "pv"];
const FIXTURE = new URL("../traces/sort-services.lackey.gz", import.meta.url).pathname;

function noDataCaches(s: Scenario, off = true): Scenario {
  return off ? { ...s, hardware: { ...s.hardware, dataCache: false } } : s;
}

const CACHES = [
  ["data caches", false],
  ["no data caches", true],
] as const;

/** Each of `xs` with data caches and without. */
function withCaches<T>(xs: readonly T[]): [T, string][] {
  return xs.flatMap((x) => CACHES.map(([label]): [T, string] => [x, label]));
}

const hardwareLine = (caches: string) => `hardware: { data_cache: ${caches === "data caches"} }`;

/** The guest clock's line stores (private: what its stalls depend on). */
interface ClockLines {
  l1: Int32Array | null;
  l2: Int32Array;
  llc: Int32Array;
}

function digest(a: Int32Array | null): number {
  if (a === null) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < a.length; i++) h = Math.imul(h ^ a[i], 0x01000193);
  return h >>> 0;
}

/**
 * The run batched and one step at a time: their reports with what the reports leave out of each
 * domain's guest (its clock, its line stores, its step count), and the accesses batched.
 */
function bothWays(
  scenario: Scenario,
  options: SimulationOptions,
  prepare: (sim: Simulation) => void = () => {},
) {
  const run = (batch: boolean) => {
    const sim = new Simulation(scenario, options);
    if (!batch) for (const d of sim.domains) d.batchMax = 1;
    prepare(sim);
    const report = sim.run();
    const guests = sim.domains.map((d) => {
      const lines = d.guestClock as unknown as ClockLines;
      return {
        clock: d.guestClock.now,
        steps: d.guestSteps,
        lines: [lines.l1, lines.l2, lines.llc].map(digest),
      };
    });
    const batched = sim.domains.reduce((n, d) => n + d.batchedAccesses, 0);
    return { report: { ...report, guests }, batched };
  };
  const batched = run(true);
  const stepped = run(false);
  expect(stepped.batched).toBe(0);
  return { batched: batched.report, stepped: stepped.report, share: batched.batched };
}

/** The first path at which two JSON values differ, or "" (a whole report is too long to print). */
function firstDiff(a: unknown, b: unknown, path = ""): string {
  if (typeof a !== "object" || a === null || typeof b !== "object" || b === null) {
    return Object.is(a, b) ? "" : `${path}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`;
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const d = firstDiff(
      (a as Record<string, unknown>)[k],
      (b as Record<string, unknown>)[k],
      `${path}.${k}`,
    );
    if (d !== "") return d;
  }
  return "";
}

function expectSame(
  scenario: Scenario,
  options: SimulationOptions,
  minShare = 0.5,
  prepare?: (sim: Simulation) => void,
) {
  const { batched, stepped, share } = bothWays(scenario, options, prepare);
  expect(firstDiff(batched, stepped)).toBe("");
  // Not vacuous: most accesses went in batches (warm-up included).
  const accesses = stepped.host?.counters.user_accesses ?? 0;
  expect(share).toBeGreaterThanOrEqual(minShare * accesses);
  return stepped as Report;
}

function yamlScenario(yaml: string, traces: Record<string, TraceRecords> = {}): Scenario {
  return parseScenario(yaml, "t.yaml", {
    loadTrace: (path) => {
      const t = traces[path];
      if (!t) throw new Error(`${path}: no such trace in this test`);
      return t;
    },
  });
}

/** A whole trace cut into chunks of `per` records, with an empty chunk after the first. */
function inChunks(t: Trace, per: number): TraceRecords {
  const starts = [0, per];
  for (let at = per; at < t.count; at += per) starts.push(at);
  starts.push(t.count);
  return {
    count: t.count,
    chunks: starts.length - 1,
    chunk: (k) => t.words.subarray(2 * starts[k], 2 * starts[k + 1]),
  };
}

describe("a batched run and a stepped one give the same report", () => {
  // Each built-in as it is (data caches on), short: the fork storms and overcommit fault more
  // than they hit. The four largest boot slowly and add nothing the others do not reach.
  const SLOW = ["overcommit", "overcommit-swap", "shadow-steady", "balloon-auto"];
  it.each(BUILTIN_SCENARIOS.map((s) => s.name).filter((n) => !SLOW.includes(n)))(
    "built-in %s",
    (name) => {
      expectSame(loadBuiltinScenario(name), { accesses: 40_000 }, 0.1);
    },
  );

  it("built-in overcommit-swap, shorter (balloon, host swap, lifetimes)", () => {
    expectSame(loadBuiltinScenario("overcommit-swap"), { accesses: 20_000 }, 0.1);
  });

  it.each(MODES)("database, mixed and sort-trace in %s mode", (mode) => {
    for (const name of ["database", "mixed", "sort-trace"]) {
      expectSame(noDataCaches(loadBuiltinScenario(name)), { accesses: 50_000, mode });
    }
  });

  it.each(withCaches(MODES))(
    "small slices, fractional work, lifetimes, children and churns in %s mode, %s",
    (mode, caches) => {
      const s = yamlScenario(
        [
          "run: { accesses: 120000 }",
          hardwareLine(caches),
          "domains:",
          "  - name: d",
          "    memory: 256MiB",
          `    mode: ${mode}`,
          "    quantum: 3001",
          "    processes:",
          "      - { name: a, kind: database, instances: 3, working_set: 1MiB, pattern: { type: zipf, s: 0.9 }, writes: 0.3, fetches: 0.2, instructions_per_access: 2.7, cpi: 0.61 }",
          "      - { name: short, kind: database, instances: 2, working_set: 512KiB, lifetime: 1237, cpi: 1.3 }",
          "      - { name: make, kind: build, jobs: 3, working_set: 256KiB, code: 64KiB, child_accesses: 333 }",
          "      - { name: churn, kind: mmap-churn, working_set: 128KiB, churn_accesses: 77, instructions_per_access: 1.1 }",
          "",
        ].join("\n"),
      );
      expectSame(s, {});
    },
  );

  it.each(withCaches(["native", "shadow"] as PagingMode[]))(
    "a trace in chunks, looping and not, in %s mode, %s",
    (mode, caches) => {
      // The first 300,000 records: the one that does not loop ends in the run.
      const whole = readTrace(FIXTURE);
      const trace = inChunks(new Trace(whole.words.subarray(0, 600_000), 300_000), 997);
      const s = yamlScenario(
        [
          "run: { accesses: 1000000 }",
          hardwareLine(caches),
          "domains:",
          "  - name: d",
          "    memory: 128MiB",
          `    mode: ${mode}`,
          "    quantum: 20011",
          "    processes:",
          "      - { name: loop, kind: trace, trace: t.mvtr, loop: true, instances: 2, cpi: 0.77 }",
          "      - { name: once, kind: trace, trace: t.mvtr }",
          "",
        ].join("\n"),
        { "t.mvtr": trace },
      );
      const r = expectSame(s, {});
      expect(r.domains[0].processes.find((p) => p.name === "once")?.alive).toBe(0);
    },
  );

  it.each(withCaches(MODES))(
    "the OOM killer ending processes mid-batch in %s mode, %s",
    (mode, caches) => {
      // Databases that together need more than the guest has (a scenario file may not ask it):
      // the OOM killer takes the largest, mostly while another runs.
      const s = noDataCaches(loadBuiltinScenario("two-domains"), caches !== "data caches");
      const d = { ...s.domains[0], memory: 32 * 2 ** 20, mode };
      d.balloon = { ...d.balloon, target: d.memory };
      const db = d.processes[0];
      d.processes = [
        { ...db, name: "big", workingSet: 16 * 2 ** 20, pattern: { type: "sequential" } },
        {
          ...db,
          name: "small",
          instances: 2,
          workingSet: 12 * 2 ** 20,
          pattern: { type: "uniform" },
        },
        { ...db, name: "hot", workingSet: 8 * 2 ** 20 },
      ];
      d.quantum = { type: "fixed", cycles: 2200 };
      const r = expectSame({ ...s, domains: [d] }, { accesses: 100_000 }, 0.3);
      expect(r.domains[0].processes.reduce((n, p) => n + p.oom_killed, 0)).toBeGreaterThan(1);
    },
  );

  it.each(withCaches(["native", "pv"] as PagingMode[]))(
    "the OOM killer ending the running process mid-batch, another going on, in %s mode, %s",
    (mode, caches) => {
      // Processes that touch more than the guest has at random are the largest when memory
      // runs out, mostly in their own faults: each dies mid-batch, and the small one runs on.
      const s = noDataCaches(loadBuiltinScenario("two-domains"), caches !== "data caches");
      const d = { ...s.domains[0], memory: 32 * 2 ** 20, mode };
      d.balloon = { ...d.balloon, target: d.memory };
      const db = d.processes[0];
      d.processes = [
        {
          ...db,
          name: "big",
          instances: 4,
          workingSet: 40 * 2 ** 20,
          pattern: { type: "uniform" },
          writes: 1,
        },
        { ...db, name: "small", workingSet: 2 * 2 ** 20 },
      ];
      d.quantum = { type: "fixed", cycles: 2200 };
      const r = expectSame({ ...s, domains: [d] }, { accesses: 100_000 }, 0.3);
      const [big, small] = r.domains[0].processes;
      expect(big.oom_killed).toBe(4);
      expect(small.accesses).toBeGreaterThan(big.accesses);
    },
  );

  it.each(CACHES.map(([label]) => label))(
    "the OOM killer ending the running process mid-batch (its balloon took the memory), %s",
    (caches) => {
      const s = yamlScenario(
        [
          "run: { accesses: 200000, may_end_early: true }",
          hardwareLine(caches),
          "domains:",
          "  - name: d",
          "    memory: 64MiB",
          "    mode: hap",
          "    balloon: { schedule: [{ at: 2000, target: 12MiB }] }",
          "    processes:",
          "      - { name: p, kind: database, working_set: 40MiB, pattern: { type: sequential }, writes: 1, fetches: 0 }",
          "",
        ].join("\n"),
      );
      const r = expectSame(s, {}, 0.3);
      expect(r.domains[0].processes[0].oom_killed).toBe(1);
    },
  );

  it.each(withCaches(["shadow", "hap"] as PagingMode[]))(
    "the VMM crashing the domain in the guest kernel's fault in %s mode, %s",
    (mode, caches) => {
      const s = yamlScenario(
        [
          "run: { accesses: 200000, may_end_early: true }",
          hardwareLine(caches),
          "host: { memory: 40MiB }",
          "domains:",
          "  - name: d",
          "    memory: 64MiB",
          `    mode: ${mode}`,
          "    processes:",
          "      - { name: p, kind: database, working_set: 48MiB, pattern: { type: hotcold, hot_fraction: 0.2, hot_probability: 0.9 }, writes: 0.5 }",
          "",
        ].join("\n"),
      );
      const r = expectSame(s, {}, 0.3);
      expect(r.domains[0].crashed).toMatch(/no memory left/);
    },
  );

  // The 3,000th and 5,000th shadow faults come inside the vCPU's batch (a hidden fault of a
  // shadow the small pool dropped): the accesses before the crashing one count, it is started.
  it.each(withCaches([3000, 5000]))(
    "the VMM crashing the domain inside the vCPU at its fault %i, %s",
    (at, caches) => {
      const s = yamlScenario(
        [
          "run: { accesses: 100000, may_end_early: true }",
          hardwareLine(caches),
          "domains:",
          "  - name: d",
          "    memory: 64MiB",
          "    mode: shadow",
          "    shadow: { pool: 32KiB }",
          "    processes:",
          "      - { name: p, kind: database, instances: 2, working_set: 1MiB, pattern: { type: uniform }, writes: 0.5 }",
          "",
        ].join("\n"),
      );
      const r = expectSame(s, {}, 0.3, (sim) => {
        const vmm = sim.domains[0].platform.cpu.intercepts;
        if (vmm === null) throw new Error("no VMM");
        const pageFault = vmm.pageFault.bind(vmm);
        let faults = 0;
        vmm.pageFault = (...args) => {
          if (++faults === at) throw new DomainCrash(`fault ${at}`);
          return pageFault(...args);
        };
      });
      expect(r.domains[0].crashed).toBe(`fault ${at}`);
    },
  );
});
