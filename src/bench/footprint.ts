/**
 * The footprint benchmarks: the simulator's peak memory (rss_mib) for runs whose simulated memory
 * is mostly untouched, or spread over many domains. Each runs in a process of its own, so that
 * the peak is the run's alone (`node dist/bench/footprint.js NAME` is that process).
 */

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Simulation } from "../api/simulation.js";
import { parseScenario } from "../workload/scenario/parse.js";
import type { BenchResult } from "./access.js";

interface FootprintCase {
  /** What the run is, and the target the issue set for it. */
  target: string;
  domains: number;
  memory: string;
  mode: string;
  workingSet: string;
  pattern: string;
  /** Accesses of the whole run (split evenly between the domains). */
  accesses: number;
}

export const FOOTPRINT_CASES: Record<string, FootprintCase> = {
  "footprint-native-64": {
    target: "(report rss_mib: footprint-shadow-64's reference)",
    domains: 64,
    memory: "128MiB",
    mode: "native",
    workingSet: "16MiB",
    pattern: "uniform",
    accesses: 6_400_000,
  },
  "footprint-shadow-64": {
    target: "rss_mib <= 1.5x footprint-native-64's",
    domains: 64,
    memory: "128MiB",
    mode: "shadow",
    workingSet: "16MiB",
    pattern: "uniform",
    accesses: 6_400_000,
  },
  "footprint-shadow-1000": {
    target: "cpu_seconds < 60, rss_mib < 2048 (1,000 domains of 64 MiB, 100,000 accesses each)",
    domains: 1000,
    memory: "64MiB",
    mode: "shadow",
    workingSet: "4MiB",
    pattern: "uniform",
    accesses: 100_000_000,
  },
  "footprint-64g": {
    target: "rss_mib < 572 (600 MB: a 64 GiB shadow guest touching a quarter of its memory)",
    domains: 1,
    memory: "64GiB",
    mode: "shadow",
    workingSet: "16GiB",
    pattern: "sequential",
    accesses: 4_300_000,
  },
};

/** The case's scenario, as a file would say it. */
export function footprintScenarioText(c: FootprintCase): string {
  const lines = ["name: footprint", "seed: 42", `run: { accesses: ${c.accesses} }`, "domains:"];
  for (let i = 0; i < c.domains; i++) {
    lines.push(
      `  - { name: d${i}, memory: ${c.memory}, mode: ${c.mode}, processes: [{ name: p, kind: database, working_set: ${c.workingSet}, pattern: { type: ${c.pattern} } }] }`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Run the case here and measure it (the child process's side). */
function runHere(name: string): BenchResult {
  const c = FOOTPRINT_CASES[name];
  const start = process.cpuUsage();
  const wall = performance.now();
  const report = new Simulation(parseScenario(footprintScenarioText(c), `${name}.yaml`)).run();
  const cpu = process.cpuUsage(start);
  return {
    name,
    accesses: report.domains.reduce((n, d) => n + (d.counters.user_accesses ?? 0), 0),
    cpu_seconds: Math.round((cpu.user + cpu.system) / 1e4) / 100,
    seconds: Math.round((performance.now() - wall) / 10) / 100,
    rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

/** Run the case in a process of its own and return its figures. */
export function benchFootprint(name: string): BenchResult {
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), name], {
    encoding: "utf8",
    maxBuffer: 1 << 20,
  });
  if (child.status !== 0) {
    throw new Error(`bench ${name}: the run failed (${child.status}): ${child.stderr.trim()}`);
  }
  return JSON.parse(child.stdout) as BenchResult;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const name = process.argv[2] ?? "";
  if (!(name in FOOTPRINT_CASES)) {
    process.stderr.write(
      `footprint: unknown case "${name}"; have ${Object.keys(FOOTPRINT_CASES).join(", ")}\n`,
    );
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(runHere(name))}\n`);
}
