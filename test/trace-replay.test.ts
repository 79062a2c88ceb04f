/**
 * Trace processes: the address space read back from a trace, the replay of its records in
 * order (from lackey text and from our format alike), looping and exiting, native and shadow
 * giving the guest the same run, several traces in several domains, and every way a scenario
 * can name a trace wrongly.
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compareModes } from "../src/api/compare.js";
import { SimulationError } from "../src/api/domain.js";
import { Simulation } from "../src/api/simulation.js";
import type { Scenario } from "../src/api/types.js";
import type { Trace } from "../src/config/trace.js";
import { USER_LIMIT } from "../src/guest/layout.js";
import { VM_EXEC, VM_WRITE } from "../src/guest/process.js";
import { formatGva } from "../src/hw/addr.js";
import { loadBuiltinScenario, loadScenarioFile } from "../src/workload/scenario/file.js";
import { parseScenario } from "../src/workload/scenario/parse.js";
import { ScenarioError } from "../src/workload/scenario/problems.js";
import { importLackey, readTrace } from "../src/workload/trace/file.js";
import { encodeTrace, TraceBuilder } from "../src/workload/trace/format.js";
import { TRACE_FETCH, TRACE_LOAD, TRACE_STORE, TraceBatch } from "../src/workload/trace/lackey.js";
import { GAP_PAGES, traceLayout } from "../src/workload/trace/layout.js";

const FIXTURE = new URL("../traces/sort-services.lackey.gz", import.meta.url).pathname;
const ACCESS_NAMES: Record<number, string> = {
  [TRACE_LOAD]: "user read",
  [TRACE_STORE]: "user write",
  [TRACE_FETCH]: "user fetch",
};

/** A trace of the given [address, kind] records (8-byte accesses). */
function makeTrace(records: [number, number][]): Trace {
  const builder = new TraceBuilder();
  const batch = new TraceBatch();
  for (const [address, kind] of records) {
    batch.addrLo[batch.count] = address % 2 ** 32;
    batch.addrHi[batch.count] = Math.floor(address / 2 ** 32);
    batch.kind[batch.count] = kind;
    batch.size[batch.count] = 8;
    batch.count++;
  }
  builder.add(batch);
  return builder.finish();
}

/**
 * The faults a replay takes: one on each page the trace touches, and one more on each page of a
 * code region (a private file mapping of the program) that it reads before it writes: the read
 * maps the page cache's page read-only, the write then copies it (Linux's wp_page_copy).
 */
function replayFaults(trace: Trace): number {
  const layout = traceLayout(trace);
  const firstKind = new Map<number, number>();
  const written = new Set<number>();
  for (let i = 0; i < trace.count; i++) {
    const page = Math.floor(trace.address(i) / 4096);
    if (!firstKind.has(page)) firstKind.set(page, trace.kind(i));
    if (trace.kind(i) === TRACE_STORE) written.add(page);
  }
  const inCode = (page: number) =>
    layout.regions.some((r) => r.fromImage && page * 4096 >= r.start && page * 4096 < r.end);
  let copied = 0;
  for (const page of written) if (firstKind.get(page) !== TRACE_STORE && inCode(page)) copied++;
  return layout.pages + copied;
}

function bytesOf(t: Trace): Buffer {
  return Buffer.from(t.words.buffer, t.words.byteOffset, t.words.byteLength);
}

/** A scenario of one domain whose processes are the given YAML lines. */
function scenarioYaml(
  processes: string[],
  memory = "64MiB",
  mode = "native",
  quantum?: string,
): string {
  return [
    "run: { accesses: 200000 }",
    "domains:",
    "  - name: d",
    `    memory: ${memory}`,
    `    mode: ${mode}`,
    ...(quantum ? [`    quantum: ${quantum}`] : []),
    "    processes:",
    ...processes.map((p) => `      - ${p}`),
    "",
  ].join("\n");
}

/** Parse with traces served from memory by file name. */
function parseWith(yaml: string, traces: Record<string, Trace>): Scenario {
  return parseScenario(yaml, "t.yaml", {
    loadTrace: (path) => {
      const t = traces[path];
      if (!t) throw new Error(`${path}: no such trace in this test`);
      return t;
    },
  });
}

function problemOf(fn: () => unknown): ScenarioError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
  throw new Error("expected a ScenarioError");
}

let fixture: Trace;
beforeAll(() => {
  fixture = readTrace(FIXTURE);
});

describe("the address space of a trace", () => {
  it("covers every record with a region that allows what the record does", () => {
    const { regions, pages } = traceLayout(fixture);
    const distinct = new Set<number>();
    // Plain loops with one assertion at the end: an expect per record costs seconds.
    const wrong: string[] = [];
    for (let i = 0; i < fixture.count; i++) {
      const address = fixture.address(i);
      distinct.add(Math.floor(address / 4096));
      const r = regions.find((v) => address >= v.start && address < v.end);
      const need =
        fixture.kind(i) === TRACE_FETCH ? VM_EXEC : fixture.kind(i) === TRACE_STORE ? VM_WRITE : 0;
      if (r === undefined || (r.prot & need) !== need) wrong.push(`record ${i}`);
    }
    expect(wrong).toEqual([]);
    expect(pages).toBe(distinct.size);
    for (let i = 1; i < regions.length; i++) {
      // Sorted, apart by more than the gap a region may span.
      expect(regions[i].start - regions[i - 1].end).toBeGreaterThan(GAP_PAGES * 4096);
    }
    expect(regions[regions.length - 1].end).toBeLessThanOrEqual(USER_LIMIT);
    // sort's own binary, ld.so and libc fetched code; the highest region is the stack.
    expect(regions.filter((r) => r.kind === "code").length).toBeGreaterThanOrEqual(3);
    expect(regions[regions.length - 1].kind).toBe("stack");
    expect(regions.filter((r) => r.kind === "heap")).toHaveLength(1);
  });

  it("gives a region only the permissions its records need", () => {
    const t = makeTrace([
      [0x400000, TRACE_FETCH],
      [0x401000, TRACE_LOAD],
      [0x600000, TRACE_LOAD],
      [0x600008, TRACE_STORE],
      [0x7fff0000, TRACE_LOAD],
    ]);
    const { regions, pages } = traceLayout(t);
    expect(pages).toBe(4);
    expect(regions.map((r) => [r.start, r.end, r.prot, r.kind, r.fromImage])).toEqual([
      [0x400000, 0x402000, 5, "code", true],
      [0x600000, 0x601000, 3, "heap", false],
      [0x7fff0000, 0x7fff1000, 1, "stack", false],
    ]);
  });
});

describe("region kinds come from what the trace did to each page", () => {
  it("a heap written page by page with a few pages fetched from is data, not code", () => {
    // A python heap: 40 pages written, 2 of them and one more also fetched from.
    const records: [number, number][] = [
      [0x400000, TRACE_FETCH],
      [0x401000, TRACE_FETCH],
    ];
    for (let p = 0; p < 40; p++) records.push([0x10000000 + p * 4096, TRACE_STORE]);
    records.push([0x10000000, TRACE_FETCH], [0x10001000, TRACE_FETCH], [0x10028000, TRACE_FETCH]);
    records.push([0x7fff0000, TRACE_STORE]);
    const { regions } = traceLayout(makeTrace(records));
    expect(regions.map((r) => [r.start, r.prot, r.kind, r.fromImage])).toEqual([
      [0x400000, 5, "code", true],
      [0x10000000, 7, "heap", false],
      [0x7fff0000, 3, "stack", false],
    ]);
  });

  it("a program's text with its data beside it stays code", () => {
    const records: [number, number][] = [];
    for (let p = 0; p < 6; p++) records.push([0x400000 + p * 4096, TRACE_FETCH]);
    for (let p = 6; p < 9; p++) records.push([0x400000 + p * 4096, TRACE_STORE]);
    const { regions } = traceLayout(makeTrace(records));
    expect(regions.map((r) => [r.prot, r.kind, r.fromImage])).toEqual([[7, "code", true]]);
  });
});

describe("replaying a trace", () => {
  const one = (loop: boolean) =>
    scenarioYaml([`{ name: sort, kind: trace, trace: sort.trace, loop: ${loop} }`]);

  it("makes the trace's accesses in order, from lackey text and from our format alike", async () => {
    const dir = mkdtempSync(join(tmpdir(), "memvisor-test-"));
    try {
      const mvtr = join(dir, "sort.mvtr");
      await importLackey(FIXTURE, mvtr, {});
      const imported = readTrace(mvtr);
      expect(imported.count).toBe(fixture.count);
      expect(Buffer.compare(bytesOf(imported), bytesOf(fixture))).toBe(0);
      for (const trace of [fixture, imported]) {
        const sim = new Simulation(parseWith(one(false), { "sort.trace": trace }));
        const got: string[] = [];
        const want: string[] = [];
        for (let i = 0; i < 3000; i++) {
          const step = sim.step();
          got.push(`${step?.gva} ${step?.access} ${(step?.mfn ?? -1) >= 0}`);
          want.push(`${formatGva(trace.address(i))} ${ACCESS_NAMES[trace.kind(i)]} true`);
        }
        expect(got).toEqual(want);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("exits at the end of the trace, having faulted once on each page it touched (twice on a code page read, then written)", () => {
    const report = new Simulation(parseWith(one(false), { "sort.trace": fixture }), {
      accesses: fixture.count + 50_000,
    }).run();
    const [p] = report.domains[0].processes;
    expect(p.accesses).toBe(fixture.count);
    expect(p.alive).toBe(0);
    expect(p.segv + p.oom_killed).toBe(0);
    expect(replayFaults(fixture)).toBeGreaterThan(traceLayout(fixture).pages);
    expect(p.guest_page_faults).toBe(replayFaults(fixture));
  });

  it("starts again when looped, with no new faults on the second pass", () => {
    const report = new Simulation(parseWith(one(true), { "sort.trace": fixture }), {
      accesses: fixture.count + 200_000,
    }).run();
    const [p] = report.domains[0].processes;
    expect(p.accesses).toBe(fixture.count + 200_000);
    expect(p.alive).toBe(1);
    expect(p.guest_page_faults).toBe(replayFaults(fixture));
  });

  it("gives the guest the same run natively and under shadow paging, checks on", () => {
    const scenario = parseWith(
      // A slice of 20,000 cycles, so that the two instances take turns many times in the run.
      scenarioYaml(
        ["{ name: sort, kind: trace, trace: sort.trace, loop: true, instances: 2 }"],
        "64MiB",
        "native",
        "20000",
      ),
      { "sort.trace": fixture },
    );
    const c = compareModes(scenario, ["native", "shadow"], { accesses: 600_000, check: true });
    expect(c.same_guest_view).toBe(true);
    const [native, shadow] = c.results;
    expect(native.guest_page_faults).toBeGreaterThan(300);
    expect(shadow.report.checks?.violations ?? 0).toBe(0);
    expect(shadow.shadow_fault).toBeGreaterThan(0);
  });

  it("runs several traces in several domains", () => {
    const small = makeTrace([
      [0x400000, TRACE_FETCH],
      [0x10000000, TRACE_STORE],
      [0x10001000, TRACE_LOAD],
      [0x7ffffffde000, TRACE_STORE],
    ]);
    const yaml = [
      "run: { accesses: 100000 }",
      "domains:",
      "  - name: a",
      "    memory: 64MiB",
      "    mode: shadow",
      "    quantum: 20000 # short slices: every process runs in a run this short",
      "    processes:",
      "      - { name: sort, kind: trace, trace: sort.trace, loop: true }",
      "      - { name: tiny, kind: trace, trace: small.trace, loop: true }",
      "  - name: b",
      "    memory: 64MiB",
      "    quantum: 20000",
      "    processes:",
      "      - { name: tiny, kind: trace, trace: small.trace, loop: true, instances: 3 }",
      "",
    ].join("\n");
    const scenario = parseWith(yaml, { "sort.trace": fixture, "small.trace": small });
    expect(scenario.domains[1].processes[0].trace?.data).toBe(small);
    const report = new Simulation(scenario, { check: true }).run();
    expect(report.checks?.violations ?? 0).toBe(0);
    const [a, b] = report.domains;
    expect(a.processes.map((p) => p.name)).toEqual(["sort", "tiny"]);
    expect(a.processes[1].guest_page_faults).toBe(4);
    expect(b.processes[0].started).toBe(3);
    expect(b.processes[0].guest_page_faults).toBe(12);
    expect(b.processes[0].alive).toBe(3);
  });

  it("runs the built-in sort-trace scenario from its scenario file", () => {
    const builtin = loadBuiltinScenario("sort-trace");
    const proc = builtin.domains[0].processes[0];
    expect(proc.trace?.data?.count).toBe(fixture.count);
    expect(proc.workingSet).toBe(traceLayout(fixture).pages * 4096);
    const report = new Simulation(builtin, { accesses: 100_000 }).run();
    expect(report.domains[0].processes[0].started).toBe(2);
  });
});

describe("scenarios that name traces wrongly", () => {
  const dir = mkdtempSync(join(tmpdir(), "memvisor-test-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const scenarioFile = (processes: string[], memory = "64MiB") => {
    const path = join(dir, "s.yaml");
    writeFileSync(path, scenarioYaml(processes, memory));
    return path;
  };

  it.each([
    [
      "no trace key",
      "{ name: t, kind: trace }",
      "domains[0].processes[0].trace",
      'missing required key "trace"',
    ],
    [
      "a generator field",
      "{ name: t, kind: trace, trace: x.mvtr, working_set: 1MiB }",
      "domains[0].processes[0].working_set",
      "does not apply to trace processes",
    ],
    [
      "a trace on a database",
      "{ name: t, kind: database, working_set: 1MiB, loop: true }",
      "domains[0].processes[0].loop",
      "applies only to trace processes, and this one is a database",
    ],
    [
      "no working set on a database",
      "{ name: t, kind: database }",
      "domains[0].processes[0].working_set",
      'missing required key "working_set"',
    ],
  ])("%s", (_, line, path, message) => {
    const e = problemOf(() => loadScenarioFile(scenarioFile([line])));
    expect(e.path).toBe(path);
    expect(e.message).toContain(message);
  });

  it("names the line of a trace that cannot be read, relative to the scenario's folder", () => {
    const e = problemOf(() =>
      loadScenarioFile(scenarioFile(["{ name: t, kind: trace, trace: missing.mvtr }"])),
    );
    expect(e.path).toBe("domains[0].processes[0].trace");
    expect(e.line).toBe(7);
    expect(e.message).toContain(`${join(dir, "missing.mvtr")}: cannot read it: no such file`);
  });

  it("refuses a file that is not a trace, with its line", () => {
    writeFileSync(join(dir, "notes.txt"), "I  04001e90,3\nhello\n");
    const e = problemOf(() =>
      loadScenarioFile(scenarioFile(["{ name: t, kind: trace, trace: notes.txt }"])),
    );
    expect(e.message).toContain("notes.txt:2: not a trace line");
  });

  it("refuses an empty trace and a trace with kernel addresses", () => {
    writeFileSync(join(dir, "empty.mvtr"), encodeTrace([]));
    expect(
      problemOf(() =>
        loadScenarioFile(scenarioFile(["{ name: t, kind: trace, trace: empty.mvtr }"])),
      ).message,
    ).toContain("no memory accesses in it");
    const kernel = makeTrace([[0xffff888000001000 % 2 ** 48, TRACE_LOAD]]);
    const e = problemOf(() =>
      parseWith(scenarioYaml(["{ name: t, kind: trace, trace: k }"]), { k: kernel }),
    );
    expect(e.message).toContain("record 0 is at 0x888000001000, not a user address");
  });

  it("refuses a domain too small for what its traces touch", () => {
    // 3,000 pages (11.7 MiB) in an 8 MiB domain.
    const big = makeTrace(Array.from({ length: 3000 }, (_, i) => [0x10000000 + i * 4096, 1]));
    const e = problemOf(() =>
      parseWith(scenarioYaml(["{ name: t, kind: trace, trace: big }"], "8MiB"), { big }),
    );
    expect(e.path).toBe("domains[0].processes");
    expect(e.message).toContain("the processes need 11.72MiB (t 11.72MiB)");
  });

  it("leaves traces unread without a loader, and the simulation says how to read them", () => {
    const s = parseScenario(scenarioYaml(["{ name: t, kind: trace, trace: x.mvtr }"]), "t.yaml");
    expect(s.domains[0].processes[0].trace).toEqual({ file: "x.mvtr", loop: false, data: null });
    expect(() => new Simulation(s)).toThrow(SimulationError);
    expect(() => new Simulation(s)).toThrow(/its trace x\.mvtr was not read .*loadScenarioFile/);
  });
});
