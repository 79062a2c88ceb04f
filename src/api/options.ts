/**
 * The library's options checked where they enter (new Simulation, compareModes, compareVarying,
 * sweepDomains): unknown keys, numbers out of range or not whole, an empty list of modes, each
 * an OptionsError whose message says which option, what was expected and what came; and a run
 * whose domains, in the mode chosen, are more than the simulator takes on.
 */

import { MAX_ACCESSES, simulatorMemoryProblem } from "../config/limits.js";
import { PAGING_MODES, type Scenario } from "../config/scenario.js";
import { quote } from "../workload/scenario/text.js";
import { SimulationError } from "./domain.js";
import type { Report } from "./types.js";

/** Seeds are 32-bit. */
export const SEED_MAX = 2 ** 32 - 1;
/** Domains a sweep may go up to. */
export const SWEEP_MAX_DOMAINS = 16;

/** An option the library cannot run with. */
export class OptionsError extends SimulationError {
  override readonly name = "OptionsError";
}

/** How a value reads in a message. */
function shown(value: unknown): string {
  if (typeof value === "string") return quote(value);
  if (Array.isArray(value)) return value.length === 0 ? "an empty list" : "a list";
  if (value === null) return "null";
  if (typeof value === "object") return "an object";
  return String(value);
}

/** Throws unless `value` is a whole number from lo to hi. */
export function checkInteger(name: string, value: unknown, lo: number, hi: number): void {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= lo && value <= hi)
    return;
  throw new OptionsError(`${name}: expected an integer from ${lo} to ${hi}, got ${shown(value)}`);
}

/** Throws for keys of `options` that are not in `allowed`. */
function checkKeys(what: string, options: object, allowed: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new OptionsError(
        `${what}: unknown option ${quote(key)} (the options are ${allowed.join(", ")})`,
      );
    }
  }
}

/** Throws unless `mode` is a paging mode. */
function checkMode(name: string, mode: unknown): void {
  if (!(PAGING_MODES as readonly unknown[]).includes(mode)) {
    throw new OptionsError(
      `${name}: expected one of ${PAGING_MODES.join(", ")}, got ${shown(mode)}`,
    );
  }
}

/** The options of a run: seed, accesses, check (and mode, where it is one). */
function checkRunOptions(what: string, options: unknown, keys: readonly string[]): void {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new OptionsError(`${what}: expected an object of options, got ${shown(options)}`);
  }
  checkKeys(what, options, keys);
  const o = options as Record<string, unknown>;
  if (o.mode !== undefined) checkMode("mode", o.mode);
  if (o.seed !== undefined) checkInteger("seed", o.seed, 0, SEED_MAX);
  if (o.accesses !== undefined) checkInteger("accesses", o.accesses, 1, MAX_ACCESSES);
  if (o.accessesPerDomain !== undefined) {
    checkInteger("accessesPerDomain", o.accessesPerDomain, 1, MAX_ACCESSES);
  }
  if (o.check !== undefined && typeof o.check !== "boolean" && o.check !== "full") {
    throw new OptionsError(`check: expected true, false or "full", got ${shown(o.check)}`);
  }
  if (o.progress !== undefined && typeof o.progress !== "function") {
    throw new OptionsError(`progress: expected a function, got ${shown(o.progress)}`);
  }
}

/** new Simulation(scenario, options): its options, and the scenario's size in the mode run. */
export function checkSimulationInput(scenario: Scenario, options: unknown): void {
  checkRunOptions("Simulation", options, ["mode", "seed", "check", "accesses"]);
  // host.contents, the page-contents switch, as a scenario built in code may set it.
  const contents: unknown = scenario.host.contents;
  if (contents !== undefined && typeof contents !== "boolean") {
    throw new OptionsError(
      `scenario ${scenario.name}: host.contents: expected true or false, got ${shown(contents)}`,
    );
  }
  if (contents === false && scenario.host.sharing.enabled) {
    throw new OptionsError(
      `scenario ${scenario.name}: host.contents false turns off the page-contents model, and page sharing (host.sharing.enabled) merges pages by their contents: turn one of them off`,
    );
  }
  const mode = (options as { mode?: string }).mode;
  const domains = scenario.domains.map((d) => ({ memory: d.memory, mode: mode ?? d.mode }));
  const problem = simulatorMemoryProblem(domains, scenario.host.memory);
  if (problem !== "") throw new OptionsError(`scenario ${scenario.name}: ${problem}`);
}

/** compareModes(scenario, modes, options): at least one mode, each once, and the options. */
export function checkCompareInput(modes: unknown, options: unknown): void {
  if (!Array.isArray(modes) || modes.length === 0) {
    throw new OptionsError(
      `modes: expected a list of one or more of ${PAGING_MODES.join(", ")}, got ${shown(modes)}`,
    );
  }
  modes.forEach((m, i) => {
    checkMode(`modes[${i}]`, m);
    if (modes.indexOf(m) !== i) throw new OptionsError(`modes[${i}]: ${m} is listed twice`);
  });
  checkRunOptions("compareModes", options, ["seed", "check", "accesses"]);
}

/** compareVarying's values: two or more numbers, each finite. */
export function checkValues(parameter: string, values: unknown): void {
  if (!Array.isArray(values) || values.length === 0) {
    throw new OptionsError(
      `values: expected a list of values of ${parameter}, got ${shown(values)}`,
    );
  }
  values.forEach((v, i) => {
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      throw new OptionsError(`values[${i}]: expected a number >= 0, got ${shown(v)}`);
    }
  });
}

/** sweepDomains(scenario, maxDomains, options). */
export function checkSweepInput(maxDomains: unknown, options: unknown): void {
  checkInteger("maxDomains", maxDomains, 1, SWEEP_MAX_DOMAINS);
  checkRunOptions("sweepDomains", options, ["seed", "check", "accessesPerDomain", "progress"]);
}

/**
 * Throws when a run's cycle total is past 2^53, where a double no longer holds a cycle's
 * difference (costs up to 10^9 over long runs can get there): the report's cycles would be
 * wrong. Cycles are fractional (work at a CPI such as 1.1), so the test is a bound, not
 * Number.isSafeInteger.
 */
export function checkCycleTotals(report: Report): void {
  const totals = [report.host.counters.cycles, ...report.domains.map((d) => d.cycles.total)];
  if (totals.every((t) => Number.isFinite(t) && Math.abs(t) <= Number.MAX_SAFE_INTEGER)) return;
  throw new SimulationError(
    `scenario ${report.scenario}: the run's cycles passed 2^53 (${report.host.counters.cycles}), ` +
      "beyond what is counted exactly: lower the costs or the accesses",
  );
}
