/**
 * A sweep over the number of domains: the scenario's first domain cloned 1..N times on one host
 * (each clone with the same work), run once per N. It answers "how much does page sharing save
 * as identical guests are added" (Waldspurger, OSDI 2002, figure 5 shows the shape: the saving
 * grows with the number of guests, zero pages the most shared).
 */

import { checkSweepInput } from "./options.js";
import { type RunOutcome, type RunTask, reportOf, runTask } from "./run-task.js";
import type { Report, Scenario } from "./types.js";
import { VERSION } from "./version.js";

export interface SweepPoint {
  /** Domains in this run. */
  domains: number;
  /** Host frames in use at the end, and the guests' memory (what they were given). */
  frames_used: number;
  guest_memory_bytes: number;
  pages_shared: number;
  pages_sharing: number;
  memory_saved_bytes: number;
  /** The saving as a share of the memory the guests would hold without sharing. */
  saved_pct: number;
  zero_pages_sharing: number;
  cycles: number;
  report: Report;
}

export interface Sweep {
  memvisor: string;
  scenario: string;
  seed: number;
  results: SweepPoint[];
}

export interface SweepOptions {
  seed?: number;
  /** User accesses per domain (default: the scenario's per domain). */
  accessesPerDomain?: number;
  check?: boolean | "full";
  /** Called after each run, with the number of domains done. */
  progress?: (done: number) => void;
}

/** The scenario with its first domain cloned n times (named <name>-1..n); the rest unchanged. */
export function cloneDomains(scenario: Scenario, n: number, accessesPerDomain: number): Scenario {
  const first = scenario.domains[0];
  return {
    ...scenario,
    run: { ...scenario.run, accesses: accessesPerDomain * n },
    domains: Array.from({ length: n }, (_, i) => ({
      ...structuredClone(first),
      name: `${first.name}-${i + 1}`,
    })),
  };
}

export function sweepDomains(
  scenario: Scenario,
  maxDomains: number,
  options: SweepOptions = {},
): Sweep {
  const outcomes = sweepTasks(scenario, maxDomains, options).map((task, i) => {
    const outcome = runTask(task);
    reportOf(outcome);
    options.progress?.(i + 1);
    return outcome;
  });
  return sweepOf(scenario, options, outcomes);
}

/** The runs sweepDomains makes, for 1..maxDomains domains (the engine may run them in parallel). */
export function sweepTasks(
  scenario: Scenario,
  maxDomains: number,
  options: SweepOptions = {},
): RunTask[] {
  checkSweepInput(maxDomains, options);
  const perDomain =
    options.accessesPerDomain ?? Math.ceil(scenario.run.accesses / scenario.domains.length);
  return Array.from({ length: maxDomains }, (_, i) => ({
    scenario: cloneDomains(scenario, i + 1, perDomain),
    options: { seed: options.seed, check: options.check },
  }));
}

/**
 * The sweep of the runs of sweepTasks, given their outcomes in the same order; a run that could
 * not be made throws its SimulationError.
 */
export function sweepOf(
  scenario: Scenario,
  options: SweepOptions,
  outcomes: readonly RunOutcome[],
): Sweep {
  const results: SweepPoint[] = outcomes.map((outcome, i) => {
    const report = reportOf(outcome);
    const c = report.host.counters;
    const saved = c.memory_saved_bytes ?? 0;
    // Without sharing every populated gfn would have a frame of its own.
    const populated = report.domains.reduce((s, d) => s + (d.counters.p2m_entries ?? 0), 0) * 4096;
    return {
      domains: i + 1,
      frames_used: report.host.frames_used,
      guest_memory_bytes:
        report.domains.reduce((s, d) => s + (d.counters.guest_frames ?? 0), 0) * 4096,
      pages_shared: c.pages_shared ?? 0,
      pages_sharing: c.pages_sharing ?? 0,
      memory_saved_bytes: saved,
      saved_pct: populated === 0 ? 0 : (100 * saved) / populated,
      zero_pages_sharing: c.zero_pages_sharing ?? 0,
      cycles: c.cycles ?? 0,
      report,
    };
  });
  return {
    memvisor: VERSION,
    scenario: scenario.name,
    seed: options.seed ?? scenario.seed,
    results,
  };
}
