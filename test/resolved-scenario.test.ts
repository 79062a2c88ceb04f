/**
 * A report's resolved scenario (scenarioToFile) is the scenario it ran, in its file form: parsed
 * again it gives the same Scenario, for every built-in and for settings the built-ins leave at
 * their defaults; and a run of it gives the same report.
 */

import { describe, expect, it } from "vitest";
import { Simulation } from "../src/api/simulation.js";
import type { Scenario } from "../src/config/scenario.js";
import { BUILTIN_SCENARIOS } from "../src/workload/scenario/builtin.js";
import { loadBuiltinScenario } from "../src/workload/scenario/file.js";
import { parseScenario } from "../src/workload/scenario/parse.js";
import { scenarioToFile } from "../src/workload/scenario/to-file.js";
import { readTrace } from "../src/workload/trace/file.js";

/** The scenario written out as JSON and parsed back (traces read from the paths it names). */
function roundTrip(s: Scenario): Scenario {
  return parseScenario(JSON.stringify(scenarioToFile(s)), "resolved.json", {
    loadTrace: readTrace,
    baseDir: "",
  });
}

/**
 * The scenario with each trace as the path it was read from and its record count: a resolved
 * scenario names the trace by that path (the file as named is gone), and comparing the records
 * themselves would take seconds.
 */
function comparable(s: Scenario): unknown {
  return {
    ...s,
    domains: s.domains.map((d) => ({
      ...d,
      processes: d.processes.map((p) => ({
        ...p,
        trace: p.trace && {
          loop: p.trace.loop,
          path: p.trace.path,
          records: p.trace.data?.count,
        },
      })),
    })),
  };
}

/** Every setting of a scenario the built-ins leave at their defaults, and some that they set. */
const UNUSUAL = `
name: unusual
description: every corner of the file form
seed: 4000000000
hardware:
  cpu: nehalem-ep
  tlb: { l1: { entries: 32 }, l2: { ways: 4 } }
  pcid: true
  giga_pages: true
  walk_caches: { pwc: false, nested_tlb: true }
  data_cache: false
host:
  memory: 2GiB
  swap: { enabled: true, low_water: 16MiB, high_water: 32MiB, grace: 5 }
  sharing: { enabled: true, algorithm: esx, pages_to_scan: 7, sleep: 9, use_zero_pages: true }
  balloon_policy: { type: auto, interval: 77, pressure_threshold: 0.3, min_change: 0.01 }
costs: { vmexit: 1234, core_cycle: 0 }
run: { accesses: 5000, warmup: 100, sample_every: 333, may_end_early: true }
domains:
  - name: a
    memory: 64MiB
    mode: hap
    os_image: bsd
    hap: { large_pages: true }
    shadow: { pool: 4MiB, unshadow: flood, prefetch: 0, writable_search: bruteforce, out_of_sync: false }
    balloon: { driver: false, target: 48MiB, floor: 8MiB, on_touch: mmio, retry_delay: 3, max_retry_delay: 9 }
    quantum: "0.25ms"
    processes:
      - { name: db, kind: database, working_set: 8MiB, lifetime: 900, huge_pages: true, image_data: 0.5,
          pattern: { type: hotcold, hot_fraction: 0.1, hot_probability: 0.8 }, cpi: 1.5 }
      - { name: make, kind: build, working_set: 1MiB, jobs: 3, child_accesses: 50, code: 64KiB,
          instructions_per_access: 7, image: cc }
      - { name: churn, kind: mmap-churn, working_set: 1MiB, churn_accesses: 60, writes: 0.5,
          fetches: 0, pattern: { type: stride, stride: 3 }, instances: 2 }
  - name: b
    memory: 32MiB
    mode: pv
    quantum: 12345
    processes:
      - { name: z, kind: database, working_set: 4MiB, pattern: { type: zipf, s: 1.2 } }
      - { name: s, kind: database, working_set: 4MiB, pattern: { type: sequential } }
`;

describe("scenarioToFile", () => {
  it.each(BUILTIN_SCENARIOS.map((b) => b.name))("round-trips the built-in %s", (name) => {
    const s = loadBuiltinScenario(name);
    expect(comparable(roundTrip(s))).toEqual(comparable(s));
  });

  it("round-trips settings the built-ins leave at their defaults", () => {
    const s = parseScenario(UNUSUAL, "unusual.yaml");
    expect(roundTrip(s)).toEqual(s);
    const file = scenarioToFile(s);
    // Every default is written out: the file form is the run's, not the user's text.
    expect(file.domains[1].shadow).toEqual({
      unshadow: "early",
      prefetch: 31,
      writable_search: "rmap",
      out_of_sync: true,
    });
    expect(file.domains[0].quantum).toBe(Math.round(0.25e-3 * 2.93e9));
    expect(file.hardware?.walk_caches).toEqual({ pwc: false, ept_pwc: true, nested_tlb: true });
  });

  it("is what a report holds, with the run's options applied, and reruns to the same report", () => {
    const s = loadBuiltinScenario("two-domains");
    const report = new Simulation(s, { mode: "shadow", seed: 9, accesses: 20_000 }).run();
    const resolved = report.resolved_scenario;
    expect(resolved.seed).toBe(9);
    expect(resolved.run?.accesses).toBe(20_000);
    expect(resolved.domains.map((d) => d.mode)).toEqual(["shadow", "shadow"]);
    const rerun = parseScenario(JSON.stringify(resolved), "report.json");
    const again = new Simulation(rerun).run();
    expect(again.domains.map((d) => d.counters)).toEqual(report.domains.map((d) => d.counters));
    expect(JSON.stringify(again)).toBe(JSON.stringify(report));
  });
});
