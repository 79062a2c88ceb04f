/**
 * Whether a domain's memory can hold its processes: what each needs at its peak, against the
 * share of the domain's memory that the guest kernel leaves to processes.
 */

import { SCENARIO_DEFAULTS } from "./defaults.js";
import type { ProcessKind } from "./scenario.js";
import { formatSizeApprox } from "./sizes.js";

/** A domain's processes may use at most this fraction of its memory (the rest is the kernel's). */
export const MEMORY_FIT_FRACTION = 0.9;

/** What a process's footprint depends on (the file form's names; absent: the default). */
export interface FootprintInput {
  name: string;
  kind: ProcessKind;
  instances: number;
  working_set?: number;
  code?: number;
  jobs?: number;
}

/**
 * Bytes a process needs at its peak: every instance's heap and code (a build: every job's).
 * A trace process's need is known once its trace is read (`traceBytes`, else 0).
 */
export function processFootprint(p: FootprintInput, traceBytes = 0): number {
  if (p.kind === "trace") return p.instances * traceBytes;
  const code = p.code ?? SCENARIO_DEFAULTS.code;
  const each = (p.working_set ?? 0) + code;
  if (p.kind === "build") {
    const jobs = p.jobs ?? SCENARIO_DEFAULTS.jobs;
    return p.instances * (jobs * each + code);
  }
  return p.instances * each;
}

/**
 * Why a domain of `memory` bytes cannot hold its processes, or "". traceBytes gives the pages
 * of each trace process's trace (by index) once the traces are read.
 */
export function fitProblem(
  memory: number,
  processes: readonly FootprintInput[],
  traceBytes: readonly number[] = [],
): string {
  const footprints = processes.map((p, i) => processFootprint(p, traceBytes[i] ?? 0));
  if (!footprints.every(Number.isFinite) || !Number.isFinite(memory)) return "";
  const need = footprints.reduce((a, b) => a + b, 0);
  const limit = memory * MEMORY_FIT_FRACTION;
  if (need <= limit) return "";
  const parts = processes.map((p, i) => `${p.name} ${formatSizeApprox(footprints[i])}`).join(", ");
  return (
    `the processes need ${formatSizeApprox(need)} (${parts}), more than ` +
    `${MEMORY_FIT_FRACTION * 100}% of the domain's ${formatSizeApprox(memory)} of memory ` +
    `(${formatSizeApprox(limit)}); give the domain more memory or the processes less`
  );
}
