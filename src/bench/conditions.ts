/**
 * What the machine was doing while the benchmarks ran: its cores and their load, so that a
 * reader can judge how far the figures were disturbed by others' work.
 */

import { availableParallelism, loadavg } from "node:os";
import { round3 } from "./stats.js";

export interface Conditions {
  cores: number;
  /** The 1-minute load average (runnable processes) when the harness started and ended. */
  load_start: number;
  load_end: number;
  /** The whole invocation's wall-clock seconds. */
  wall_seconds: number;
}

/** Notes the start; the function returned gives the conditions up to the moment it is called. */
export function startConditions(): () => Conditions {
  const t0 = performance.now();
  const load = loadavg()[0];
  return () => ({
    cores: availableParallelism(),
    load_start: round3(load),
    load_end: round3(loadavg()[0]),
    wall_seconds: round3((performance.now() - t0) / 1000),
  });
}

export function conditionsLine(c: Conditions): string {
  return `${c.cores} cores, load average ${c.load_start.toFixed(1)} at the start and ${c.load_end.toFixed(1)} at the end; ${c.wall_seconds.toFixed(1)} s in all`;
}
