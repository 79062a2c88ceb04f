/**
 * One run of an experiment as one row of its tidy table: the grid's values, the mode and seed,
 * then the run's figures summed over its domains (every counter of every domain's report, the
 * rates per thousand instructions, cycles and simulated time) and the host's counters. The
 * columns are the same for every run of an experiment, in one order, so that the table is the
 * same bytes whichever thread or machine made its rows. Wall time is not here (see table.ts).
 */

import {
  COUNTER_NAMES,
  GUEST_REPORT_COUNTER_NAMES,
  VMM_REPORT_COUNTER_NAMES,
} from "../../metrics/counters.js";
import type { Experiment, ExperimentPoint } from "../../workload/experiment/experiment.js";
import type { RunOutcome } from "../run-task.js";
import { HOST_COUNTER_NAMES, type Report } from "../types.js";

/** A cell: a number, a name, or null where a figure does not apply (a host with no sharing). */
export type Cell = number | string | boolean | null;
export type ResultRow = Record<string, Cell>;

/** Figures of the whole run, before the counters: what plots and summaries mostly read. */
export const HEADLINE_METRICS = [
  "cycles",
  "seconds",
  "user_accesses",
  "instructions",
  "cycles_per_access",
  "cpi",
  "page_faults_pki",
  "tlb_mpki",
  "walks_pki",
  "vmexits_pki",
] as const;

const DOMAIN_COUNTERS: readonly string[] = [
  ...new Set<string>([
    ...COUNTER_NAMES,
    ...GUEST_REPORT_COUNTER_NAMES,
    ...VMM_REPORT_COUNTER_NAMES,
  ]),
].filter((c) => !(HEADLINE_METRICS as readonly string[]).includes(c));

const HOST_COLUMNS = [
  ...HOST_COUNTER_NAMES.filter((c) => c !== "cycles" && c !== "user_accesses").map(
    (c) => `host_${c}`,
  ),
  "host_frames_used",
  "host_frames_used_peak",
];

/** The columns of every numeric figure of a row (what a plot or a summary may read). */
export const METRIC_COLUMNS: readonly string[] = [
  ...HEADLINE_METRICS,
  ...DOMAIN_COUNTERS,
  ...HOST_COLUMNS,
];

/** The columns of an experiment's table, in order. */
export function rowColumns(e: Experiment): string[] {
  return ["point", ...e.grid.map((g) => g.key), "mode", "seed", "ending", ...METRIC_COLUMNS];
}

/** The row of one run: its point, and its outcome's figures (empty when it could not run). */
export function resultRow(e: Experiment, point: ExperimentPoint, outcome: RunOutcome): ResultRow {
  const row: ResultRow = { point: point.index };
  e.grid.forEach((g, i) => {
    row[g.key] = point.values[i];
  });
  const report = outcome.report;
  row.mode = point.mode ?? (report ? modesOf(report) : "scenario");
  row.seed = point.seed;
  row.ending = report ? report.ending.status : "not-run";
  const figures = report ? reportFigures(report) : {};
  for (const c of METRIC_COLUMNS) row[c] = figures[c] ?? null;
  return row;
}

/** The scenario's own modes, when the experiment names none: "shadow", "native+hap". */
function modesOf(report: Report): string {
  return [...new Set(report.domains.map((d) => d.mode))].join("+");
}

function reportFigures(report: Report): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  const sum = (name: string): number | null => {
    let total: number | null = null;
    for (const d of report.domains) {
      const v = (d.counters as Record<string, number | undefined>)[name];
      if (v !== undefined) total = (total ?? 0) + v;
    }
    return total;
  };
  const cycles = report.host.counters.cycles;
  const domainCycles = report.domains.reduce((s, d) => s + d.cycles.total, 0);
  const instructions = sum("instructions") ?? 0;
  const accesses = report.host.counters.user_accesses;
  const perKi = (n: number | null) => (instructions > 0 ? (1000 * (n ?? 0)) / instructions : 0);
  out.cycles = cycles;
  out.seconds = report.seconds;
  out.user_accesses = accesses;
  out.instructions = instructions;
  out.cycles_per_access = accesses > 0 ? cycles / accesses : 0;
  out.cpi = instructions > 0 ? domainCycles / instructions : 0;
  out.page_faults_pki = perKi(sum("guest_page_faults"));
  out.tlb_mpki = perKi(sum("tlb_misses"));
  out.walks_pki = perKi(sum("walks"));
  out.vmexits_pki = perKi(sum("vmexits"));
  for (const c of DOMAIN_COUNTERS) out[c] = sum(c);
  const host = report.host.counters as Record<string, number | undefined>;
  for (const c of HOST_COUNTER_NAMES) out[`host_${c}`] = host[c] ?? null;
  out.host_frames_used = report.host.frames_used;
  out.host_frames_used_peak = report.host.frames_used_peak;
  return out;
}
