/**
 * One simulation run as a value that can cross to a worker thread and back: the scenario and
 * options in, the report (or why the scenario cannot run) out. The engine behind `experiment`,
 * `compare` and `sweep` hands these to a pool (pool.ts); the library's own functions run them
 * here, in order. No node imports: this runs in browsers too.
 */

import { SimulationError } from "./domain.js";
import { checkCycleTotals } from "./options.js";
import { Simulation, type SimulationOptions } from "./simulation.js";
import type { Report, Scenario } from "./types.js";

export interface RunTask {
  scenario: Scenario;
  options: SimulationOptions;
}

/** A finished run's report, or the reason it could not run (a SimulationError's message). */
export type RunOutcome =
  | { report: Report; notRun?: undefined; wallMs: number }
  | { report?: undefined; notRun: string; wallMs: number };

/** Runs the task; a SimulationError becomes `notRun`, anything else is thrown (a bug). */
export function runTask(task: RunTask): RunOutcome {
  const started = performance.now();
  try {
    const report = new Simulation(task.scenario, task.options).run();
    checkCycleTotals(report);
    return { report, wallMs: performance.now() - started };
  } catch (e) {
    if (!(e instanceof SimulationError)) throw e;
    return { notRun: e.message, wallMs: performance.now() - started };
  }
}

/** The report of an outcome, or its reason thrown again as the SimulationError it was. */
export function reportOf(outcome: RunOutcome): Report {
  if (outcome.report === undefined) throw new SimulationError(outcome.notRun);
  return outcome.report;
}
