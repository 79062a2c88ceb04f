/**
 * The same scenario and seed under several paging modes, side by side: what each mode costs
 * against native (cycles, exits, VMM memory), and whether the guest saw the same thing in each
 * (it must: the same true page faults and the same data read).
 */

import { fitProblem } from "../config/fit.js";
import { VMEXIT_REASONS } from "../metrics/counters.js";
import { SimulationError } from "./domain.js";
import { checkCompareInput, checkValues, OptionsError } from "./options.js";
import { type RunOutcome, type RunTask, runTask } from "./run-task.js";
import type { Simulation, SimulationOptions } from "./simulation.js";
import type { DomainCounterName, PagingMode, ProcessKind, Report, Scenario } from "./types.js";
import { VERSION } from "./version.js";

/** One mode's results, summed over the scenario's domains. */
export interface ModeResult {
  mode: PagingMode;
  /** Cycles of the one physical CPU: the domains' and the VMM's own threads' (the scanner's). */
  cycles: number;
  /** Of which the VMM's own threads (the page-sharing scanner). */
  host_thread_cycles: number;
  /** Extra cycles against the first mode (usually native), in percent; 0 for the first. */
  overhead_pct: number;
  user_accesses: number;
  vmexits: Record<string, number>;
  guest_page_faults: number;
  tlb_misses: number;
  /** Page walks (a 2D walk retried after an EPT violation is a walk of its own) and their references. */
  walks: number;
  walk_refs: number;
  shadow_fault: number;
  shadow_emulate_write: number;
  /** Bytes of memory the VMM used for this mode at its peak: shadow, EPT and P2M pages. */
  vmm_memory_bytes: number;
  /** Its parts, in 4 KiB pages. */
  shadow_pages_peak: number;
  ept_pages: number;
  p2m_pages: number;
  /** Digest of everything the guest's processes read: equal across modes when they saw the same. */
  read_hash: number;
  report: Report;
}

export interface Comparison {
  memvisor: string;
  scenario: string;
  seed: number;
  /** The modes asked for; `results` has those that ran, `not_run` the others. */
  modes: PagingMode[];
  /** Whether every mode that ran gave the guest the same true faults and the same data. */
  same_guest_view: boolean;
  /** The modes that ran, in the order asked; the first is the baseline of `overhead_pct`. */
  results: ModeResult[];
  /** The modes that could not run the scenario (a domain it cannot build), and why. */
  not_run: { mode: PagingMode; reason: string }[];
}

/**
 * The scenario under each mode. A mode that cannot run it (a SimulationError: the host has no
 * memory for a PV domain built whole, a run too large to count) is named in `not_run` with its
 * reason and the others still run; a SimulationError when none can.
 */
export function compareModes(
  scenario: ConstructorParameters<typeof Simulation>[0],
  modes: PagingMode[],
  options: Omit<SimulationOptions, "mode"> = {},
): Comparison {
  return comparisonOf(scenario, modes, compareTasks(scenario, modes, options).map(runTask));
}

/** The runs compareModes makes, one per mode, in order (the engine may run them in parallel). */
export function compareTasks(
  scenario: ConstructorParameters<typeof Simulation>[0],
  modes: PagingMode[],
  options: Omit<SimulationOptions, "mode"> = {},
): RunTask[] {
  checkCompareInput(modes, options);
  return modes.map((mode) => ({ scenario, options: { ...options, mode } }));
}

/** The comparison of the runs of compareTasks, given their outcomes in the same order. */
export function comparisonOf(
  scenario: ConstructorParameters<typeof Simulation>[0],
  modes: PagingMode[],
  outcomes: readonly RunOutcome[],
): Comparison {
  const results: ModeResult[] = [];
  const notRun: Comparison["not_run"] = [];
  modes.forEach((mode, i) => {
    const outcome = outcomes[i];
    if (outcome.report === undefined) {
      notRun.push({ mode, reason: outcome.notRun });
      return;
    }
    results.push(modeResult(mode, outcome.report));
  });
  return combineResults(scenario.name, modes, results, notRun);
}

/**
 * One mode's figures from its report (a run of its own, as compareModes makes; the web page
 * runs each mode in a worker of its own). Its overhead is set by combineResults.
 */
export function modeResult(mode: PagingMode, report: Report): ModeResult {
  const sum = (name: DomainCounterName) =>
    report.domains.reduce((s, d) => s + (d.counters[name] ?? 0), 0);
  const vmexits: Record<string, number> = { total: sum("vmexits") };
  for (const reason of VMEXIT_REASONS) vmexits[reason] = sum(`vmexits_${reason}`);
  let readHash = 0;
  for (const d of report.domains) {
    for (const p of d.processes)
      readHash = (Math.imul(readHash ^ p.read_hash, 0x01000193) + 1) >>> 0;
  }
  return {
    mode,
    cycles: report.host.counters.cycles,
    host_thread_cycles: report.host.counters.sharing_cycles ?? 0,
    overhead_pct: 0,
    user_accesses: sum("user_accesses"),
    vmexits,
    guest_page_faults: sum("guest_page_faults"),
    tlb_misses: sum("tlb_misses"),
    walks: sum("walks"),
    walk_refs: sum("walk_refs"),
    shadow_fault: sum("shadow_fault"),
    shadow_emulate_write: sum("shadow_emulate_write"),
    vmm_memory_bytes: (sum("shadow_pages_peak") + sum("p2m_pages") + sum("ept_pages")) * 4096,
    shadow_pages_peak: sum("shadow_pages_peak"),
    ept_pages: sum("ept_pages"),
    p2m_pages: sum("p2m_pages"),
    read_hash: readHash,
    report,
  };
}

/**
 * The comparison of the modes that ran (in the order asked: the first is the baseline of each
 * overhead) and those that could not; a SimulationError when none ran.
 */
export function combineResults(
  scenarioName: string,
  modes: PagingMode[],
  results: ModeResult[],
  notRun: Comparison["not_run"],
): Comparison {
  const first = results[0];
  if (first === undefined) {
    throw new SimulationError(
      `scenario ${scenarioName}: no mode can run it: ${notRun.map((n) => `${n.mode}: ${n.reason}`).join("; ")}`,
    );
  }
  for (const r of results) r.overhead_pct = (100 * (r.cycles - first.cycles)) / first.cycles;
  first.overhead_pct = 0;
  return {
    memvisor: first.report.memvisor,
    scenario: first.report.scenario,
    seed: first.report.seed,
    modes,
    same_guest_view: results.every(
      (r) => r.read_hash === first.read_hash && r.guest_page_faults === first.guest_page_faults,
    ),
    results,
    not_run: notRun,
  };
}

/** Parameters `varyParameter` can set, by their scenario-file names: on every process that has it. */
export const VARIABLE_PARAMETERS = {
  child_accesses: "childAccesses",
  jobs: "jobs",
  churn_accesses: "churnAccesses",
  working_set: "workingSet",
  writes: "writes",
  fetches: "fetches",
  lifetime: "lifetime",
} as const;

export type VariableParameter = keyof typeof VARIABLE_PARAMETERS;

/**
 * The scenario with `param` set to `value` in every process of every domain (a process of a
 * kind that does not read it is left alone: jobs only changes builds).
 */
export function withParameter(
  scenario: Scenario,
  param: VariableParameter,
  value: number,
): Scenario {
  const field = VARIABLE_PARAMETERS[param];
  return {
    ...scenario,
    domains: scenario.domains.map((d) => ({
      ...d,
      processes: d.processes.map((p) =>
        PARAMETER_KINDS[param].includes(p.kind) ? { ...p, [field]: value } : p,
      ),
    })),
  };
}

/** The process kinds that read each parameter. */
const PARAMETER_KINDS: Record<VariableParameter, readonly ProcessKind[]> = {
  child_accesses: ["build"],
  jobs: ["build"],
  churn_accesses: ["mmap-churn"],
  working_set: ["database", "build", "mmap-churn"],
  writes: ["database", "build", "mmap-churn"],
  fetches: ["database", "build", "mmap-churn"],
  lifetime: ["database"],
};

/**
 * Why `param` cannot be varied in the scenario (no process of it reads the parameter: every
 * value would give the same run), or "".
 */
export function parameterProblem(scenario: Scenario, param: VariableParameter): string {
  const kinds = PARAMETER_KINDS[param];
  const has = new Set(scenario.domains.flatMap((d) => d.processes.map((p) => p.kind)));
  if ([...has].some((k) => kinds.includes(k))) return "";
  return (
    `no process of scenario ${scenario.name} reads ${param} (${kinds.join(" and ")} processes ` +
    `do; its processes are ${[...has].join(", ")}): every value would give the same run`
  );
}

/** compareModes at each value of one parameter: where one mode overtakes another. */
export interface Variation {
  memvisor: string;
  scenario: string;
  parameter: VariableParameter;
  modes: PagingMode[];
  points: { value: number; comparison: Comparison }[];
}

/**
 * Why the scenario with `param` at `value` is not a valid scenario (its processes no longer fit
 * a domain's memory, as the scenario file's check says), or "".
 */
export function variationProblem(
  scenario: Scenario,
  param: VariableParameter,
  value: number,
): string {
  for (const d of withParameter(scenario, param, value).domains) {
    const processes = d.processes.map((p) => ({
      name: p.name,
      kind: p.kind,
      instances: p.instances,
      working_set: p.workingSet,
      code: p.code,
      jobs: p.jobs,
    }));
    const traceBytes = d.processes.map((p) => (p.kind === "trace" ? p.workingSet : 0));
    const problem = fitProblem(d.memory, processes, traceBytes);
    if (problem !== "") return `${param} ${value}: domain ${d.name}: ${problem}`;
  }
  return "";
}

/** Throws SimulationError when a value makes the scenario invalid (see variationProblem). */
export function compareVarying(
  scenario: Scenario,
  modes: PagingMode[],
  parameter: VariableParameter,
  values: number[],
  options: Omit<SimulationOptions, "mode"> = {},
): Variation {
  const tasks = varyingTasks(scenario, modes, parameter, values, options);
  return variationOf(scenario, modes, parameter, values, tasks.map(runTask));
}

/**
 * The runs compareVarying makes, every mode at each value in turn (the engine may run them in
 * parallel); throws as compareVarying does, before any run.
 */
export function varyingTasks(
  scenario: Scenario,
  modes: PagingMode[],
  parameter: VariableParameter,
  values: number[],
  options: Omit<SimulationOptions, "mode"> = {},
): RunTask[] {
  checkCompareInput(modes, options);
  if (!Object.hasOwn(VARIABLE_PARAMETERS, parameter)) {
    throw new OptionsError(
      `parameter: expected one of ${Object.keys(VARIABLE_PARAMETERS).join(", ")}, got ${JSON.stringify(parameter)}`,
    );
  }
  checkValues(parameter, values);
  const absent = parameterProblem(scenario, parameter);
  if (absent !== "") throw new OptionsError(`parameter: ${absent}`);
  for (const value of values) {
    const problem = variationProblem(scenario, parameter, value);
    if (problem !== "") throw new SimulationError(problem);
  }
  return values.flatMap((value) =>
    compareTasks(withParameter(scenario, parameter, value), modes, options),
  );
}

/** The variation of the runs of varyingTasks, given their outcomes in the same order. */
export function variationOf(
  scenario: Scenario,
  modes: PagingMode[],
  parameter: VariableParameter,
  values: number[],
  outcomes: readonly RunOutcome[],
): Variation {
  const points = values.map((value, i) => ({
    value,
    comparison: comparisonOf(
      withParameter(scenario, parameter, value),
      modes,
      outcomes.slice(i * modes.length, (i + 1) * modes.length),
    ),
  }));
  return { memvisor: VERSION, scenario: scenario.name, parameter, modes, points };
}
