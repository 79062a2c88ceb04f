/**
 * README.md cannot drift from the code: every scenario key, counter and report field it names
 * exists, its scenario example parses, every export of the library is documented in its Library
 * section and every export that section names exists, and its limits and exit codes are the
 * code's.
 */

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import * as node from "../src/api/node.js";
import { METRIC_COLUMNS } from "../src/api/node.js";
import { Simulation } from "../src/api/simulation.js";
import { HOST_COUNTER_NAMES, SERIES_COUNTERS } from "../src/api/types.js";
import {
  EXIT_CHECKS,
  EXIT_ENDED_EARLY,
  EXIT_INTERNAL,
  EXIT_IO,
  EXIT_SIGINT,
  EXIT_SIGTERM,
  EXIT_USAGE,
} from "../src/cli/errors.js";
import { PROVENANCE_KEYS } from "../src/cli/provenance.js";
import { LIMITS } from "../src/config/limits.js";
import { COST_EVENTS } from "../src/config/scenario.js";
import { GiB, MiB, TiB } from "../src/config/sizes.js";
import {
  COUNTER_NAMES,
  GUEST_REPORT_COUNTER_NAMES,
  VMM_REPORT_COUNTER_NAMES,
} from "../src/metrics/counters.js";
import { experimentFileSchema } from "../src/workload/experiment/schema.js";
import { builtinScenario } from "../src/workload/scenario/builtin.js";
import { parseScenario } from "../src/workload/scenario/parse.js";
import { scenarioFileSchema } from "../src/workload/scenario/schema.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const README = readFileSync(join(ROOT, "README.md"), "utf8");

/** The text of a "## " section of the README. */
function section(title: string): string {
  const start = README.indexOf(`\n## ${title}\n`);
  expect(start, `README has a section "${title}"`).toBeGreaterThanOrEqual(0);
  const end = README.indexOf("\n## ", start + 1);
  return README.slice(start, end < 0 ? README.length : end);
}

/** `snake_case` words in backticks. */
const snakeWords = (text: string) =>
  new Set([...text.matchAll(/`([a-z][a-z0-9]*(?:_[a-z0-9]+)+)`/g)].map((m) => m[1]));

/** Every key of every mapping the scenario and experiment schemas accept, found by walking zod's definitions. */
function schemaKeys(): Set<string> {
  const keys = new Set<string>();
  const seen = new Set<unknown>();
  const walk = (schema: unknown) => {
    if (schema === undefined || schema === null || seen.has(schema)) return;
    seen.add(schema);
    const def = (schema as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
    if (def === undefined) return;
    const shape = def.shape as Record<string, unknown> | undefined;
    for (const [key, value] of Object.entries(shape ?? {})) {
      keys.add(key);
      walk(value);
    }
    for (const field of ["innerType", "in", "out", "element"]) walk(def[field]);
    for (const option of (def.options as unknown[] | undefined) ?? []) walk(option);
  };
  walk(scenarioFileSchema);
  walk(experimentFileSchema);
  return keys;
}

/** Every key of a real report (a sharing run, so the host's sharing counters are there). */
function reportKeys(): Set<string> {
  const keys = new Set<string>();
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === "object" && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        keys.add(k);
        walk(x);
      }
    }
  };
  walk(new Simulation(builtinScenario("sharing"), { accesses: 2000 }).run());
  return keys;
}

const COUNTERS = new Set<string>([
  ...COUNTER_NAMES,
  ...GUEST_REPORT_COUNTER_NAMES,
  ...VMM_REPORT_COUNTER_NAMES,
  ...HOST_COUNTER_NAMES,
  ...SERIES_COUNTERS,
]);

/** Names the README gives that are Xen's, Linux's or the benchmarks', not memvisor's keys. */
const NOT_OURS = new Set([
  "mmu_update",
  "update_va_mapping",
  "mmuext_op",
  "decrease_reservation",
  "populate_physmap",
  "ram_paged",
  "ram_shared",
  "pages_volatile", // KSM's gauge in sysfs
  "ratio_to_native", // benchmark figures
  "walk_refs_per_miss",
  "cpu_seconds",
  "accesses_per_cpu_s",
  "faults_per_s",
  "lines_per_s",
  "forks_per_s",
  "chunk_reads", // trace-replay-stream's figure
  "rss_mib",
  "sysctl_sched_latency", // Linux's scheduler tunables
  "sysctl_sched_min_granularity",
]);

describe("README names only what exists", () => {
  it("its scenario example is a valid scenario", () => {
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section("Scenario format"))?.[1] ?? "";
    expect(yaml).toContain("domains:");
    expect(() => parseScenario(yaml, "README.yaml")).not.toThrow();
  });

  it("every snake_case name is a scenario key, a counter, a cost event or a report field", () => {
    const known = new Set([
      ...schemaKeys(),
      ...COUNTERS,
      ...COST_EVENTS,
      ...reportKeys(),
      ...PROVENANCE_KEYS,
      // an experiment's grid key and the columns of its tables
      "domain_count",
      ...METRIC_COLUMNS,
    ]);
    const unknown = [...snakeWords(README)].filter((w) => !known.has(w) && !NOT_OURS.has(w));
    expect(unknown).toEqual([]);
  });

  it("every counter in the Metrics table is a counter", () => {
    const metrics = section("Metrics");
    const rows = metrics
      .slice(0, metrics.indexOf("### Timing model"))
      .split("\n")
      .filter((l) => l.startsWith("| `"));
    expect(rows.length).toBeGreaterThan(30);
    const named = rows.flatMap((row) => [...snakeWords(row.split("|")[1])]);
    const unknown = named.filter((n) => !COUNTERS.has(n) && !/^walk_refs_/.test(n));
    expect(unknown).toEqual([]);
  });
});

describe("README's Library section", () => {
  const library = section("Library");
  /** Names exported as types by the entry points and the modules they re-export. */
  const typeNames = new Set<string>();
  const sources = [
    ...readdirSync(join(ROOT, "src", "api"), { recursive: true })
      .map(String)
      .filter((f) => f.endsWith(".ts"))
      .map((f) => join("src", "api", f)),
    join("src", "metrics", "counters.ts"),
    join("src", "workload", "experiment", "experiment.ts"),
    // api/types.ts re-exports the scenario's types (export *).
    join("src", "config", "scenario.ts"),
  ];
  for (const file of sources) {
    const text = readFileSync(join(ROOT, file), "utf8");
    for (const m of text.matchAll(/export (?:interface|type|class) (\w+)/g)) typeNames.add(m[1]);
    for (const m of text.matchAll(/\btype (\w+)[,\s]/g)) typeNames.add(m[1]);
  }

  it("documents every export of memvisor and memvisor/node", () => {
    const missing = Object.keys(node).filter((name) => !library.includes(`\`${name}`));
    expect(missing).toEqual([]);
  });

  it("names only exports that exist", () => {
    const table = library.split("\n").filter((l) => l.startsWith("| `"));
    const named = table.flatMap((row) =>
      [...row.split("|")[1].matchAll(/`(\w+)`/g)].map((m) => m[1]),
    );
    expect(named.length).toBeGreaterThan(50);
    const unknown = named.filter((n) => !(n in node) && !typeNames.has(n));
    expect(unknown).toEqual([]);
  });
});

describe("the licence", () => {
  it("LICENSE is the licence package.json names", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { license: string };
    expect(pkg.license).toBe("MIT");
    expect(readFileSync(join(ROOT, "LICENSE"), "utf8")).toMatch(/^MIT License\n/);
  });
});

describe("README's limits and exit codes are the code's", () => {
  it("the limits", () => {
    const limits = section("Limits");
    expect(limits).toContain(
      `${LIMITS.guestMemoryMin / MiB} MiB to ${LIMITS.guestMemoryMax / GiB} GiB`,
    );
    expect(limits).toContain(`at most ${LIMITS.hostMemoryMax / TiB} TiB`);
    expect(limits).toContain(`about ${LIMITS.simulatorMemory / GiB} GiB`);
    expect(limits).toMatch(new RegExp(`\\| domains +\\| ${LIMITS.domains} `));
    expect(limits).toContain(`${LIMITS.processes} entries a domain`);
    expect(limits).toContain(`${LIMITS.balloonSchedule.toLocaleString("en-US")} changes`);
    expect(limits).toContain(`0 to 10^${Math.log10(LIMITS.cost)}`);
    expect(limits).toContain(`1 to 10^${Math.log10(LIMITS.accesses)}`);
    expect(limits).toContain(
      `${LIMITS.scenarioFileBytes / MiB} MiB, lines of ${LIMITS.scenarioLine / 1024} KiB, nesting of ${LIMITS.scenarioDepth} levels`,
    );
    expect(limits).toContain(`2^${Math.log2(LIMITS.traceRecords)} records`);
    expect(limits).toContain(`lackey lines of ${LIMITS.lackeyLine} bytes`);
  });

  it("the exit codes", () => {
    const codes = /- Exit codes: ([\s\S]*?)\n- /.exec(section("The CLI"))?.[1] ?? "";
    const all = [EXIT_USAGE, EXIT_CHECKS, EXIT_ENDED_EARLY, EXIT_INTERNAL, EXIT_IO];
    for (const code of [0, ...all, EXIT_SIGINT, EXIT_SIGTERM]) {
      expect(codes).toMatch(new RegExp(`\\b${code}\\b`));
    }
  });
});
