/**
 * The same scenario and seed under several paging modes, side by side: what each mode costs
 * against native (cycles, exits, VMM memory), and whether the guest saw the same thing in each
 * (it must: the same true page faults and the same data read).
 */

import { fitProblem } from "../config/fit.js";
import { VMEXIT_REASONS } from "../metrics/counters.js";
import { SimulationError } from "./domain.js";
import { checkCompareInput, checkCycleTotals, checkValues, OptionsError } from "./options.js";
import { Simulation, type SimulationOptions } from "./simulation.js";
import type { DomainCounterName, PagingMode, Report, Scenario } from "./types.js";
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
  modes: PagingMode[];
  /** Whether every mode gave the guest the same true faults and the same data. */
  same_guest_view: boolean;
  results: ModeResult[];
}

export function compareModes(
  scenario: ConstructorParameters<typeof Simulation>[0],
  modes: PagingMode[],
  options: Omit<SimulationOptions, "mode"> = {},
): Comparison {
  checkCompareInput(modes, options);
  const results: ModeResult[] = [];
  for (const mode of modes) {
    const report = new Simulation(scenario, { ...options, mode }).run();
    checkCycleTotals(report);
    const sum = (name: DomainCounterName) =>
      report.domains.reduce((s, d) => s + (d.counters[name] ?? 0), 0);
    const vmexits: Record<string, number> = { total: sum("vmexits") };
    for (const reason of VMEXIT_REASONS) vmexits[reason] = sum(`vmexits_${reason}`);
    const cycles = report.host.counters.cycles;
    let readHash = 0;
    for (const d of report.domains) {
      for (const p of d.processes)
        readHash = (Math.imul(readHash ^ p.read_hash, 0x01000193) + 1) >>> 0;
    }
    results.push({
      mode,
      cycles,
      host_thread_cycles: report.host.counters.sharing_cycles ?? 0,
      overhead_pct:
        results.length === 0 ? 0 : (100 * (cycles - results[0].cycles)) / results[0].cycles,
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
    });
  }
  const first = results[0];
  return {
    memvisor: first.report.memvisor,
    scenario: first.report.scenario,
    seed: first.report.seed,
    modes,
    same_guest_view: results.every(
      (r) => r.read_hash === first.read_hash && r.guest_page_faults === first.guest_page_faults,
    ),
    results,
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
  const kinds: Record<VariableParameter, readonly string[]> = {
    child_accesses: ["build"],
    jobs: ["build"],
    churn_accesses: ["mmap-churn"],
    working_set: ["database", "build", "mmap-churn"],
    writes: ["database", "build", "mmap-churn"],
    fetches: ["database", "build", "mmap-churn"],
    lifetime: ["database"],
  };
  return {
    ...scenario,
    domains: scenario.domains.map((d) => ({
      ...d,
      processes: d.processes.map((p) =>
        kinds[param].includes(p.kind) ? { ...p, [field]: value } : p,
      ),
    })),
  };
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
  checkCompareInput(modes, options);
  if (!Object.hasOwn(VARIABLE_PARAMETERS, parameter)) {
    throw new OptionsError(
      `parameter: expected one of ${Object.keys(VARIABLE_PARAMETERS).join(", ")}, got ${JSON.stringify(parameter)}`,
    );
  }
  checkValues(parameter, values);
  for (const value of values) {
    const problem = variationProblem(scenario, parameter, value);
    if (problem !== "") throw new SimulationError(problem);
  }
  const points = values.map((value) => ({
    value,
    comparison: compareModes(withParameter(scenario, parameter, value), modes, options),
  }));
  return { memvisor: VERSION, scenario: scenario.name, parameter, modes, points };
}
