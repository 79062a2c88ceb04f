/**
 * The summary of an experiment: for each grid point and mode, over its seeds, the mean of each
 * figure and the half-width of its 95% confidence interval, mean ± t(0.975, n-1) · s / √n,
 * with Student's t for the small numbers of seeds experiments have (s the sample standard
 * deviation; no interval for one seed).
 */

import type { Experiment } from "../../workload/experiment/experiment.js";
import { HEADLINE_METRICS, type ResultRow } from "./row.js";

/** t(0.975, df) for df = 1..30 (two-sided 95%). */
const T_975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145,
  2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048,
  2.045, 2.042,
];
/** Beyond 30 degrees of freedom, t by 1/df between these (df, t) and the normal's 1.960. */
const T_975_TAIL: readonly [number, number][] = [
  [30, 2.042],
  [40, 2.021],
  [60, 2.0],
  [120, 1.98],
];

/** Student's t quantile 0.975 for df degrees of freedom (df >= 1). */
export function tQuantile975(df: number): number {
  if (df <= T_975.length) return T_975[df - 1];
  for (let i = 1; i < T_975_TAIL.length; i++) {
    const [d0, t0] = T_975_TAIL[i - 1];
    const [d1, t1] = T_975_TAIL[i];
    if (df <= d1) return t0 + ((1 / df - 1 / d0) / (1 / d1 - 1 / d0)) * (t1 - t0);
  }
  const [d0, t0] = T_975_TAIL[T_975_TAIL.length - 1];
  return t0 + ((1 / df - 1 / d0) / (0 - 1 / d0)) * (1.96 - t0);
}

/** The mean of the values and the half-width of its 95% interval (null for one value). */
export function meanInterval(values: readonly number[]): { mean: number; ci95: number | null } {
  const n = values.length;
  const mean = values.reduce((s, v) => s + v, 0) / n;
  if (n < 2) return { mean, ci95: null };
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1);
  return { mean, ci95: (tQuantile975(n - 1) * Math.sqrt(variance)) / Math.sqrt(n) };
}

/** The figures a summary has: the headline ones and those the plots read. */
export function summaryMetrics(e: Experiment): string[] {
  return [...new Set<string>([...HEADLINE_METRICS, ...e.plots.map((p) => p.y)])];
}

/** The summary's columns: the grid, the mode, n, then each metric's mean and ci95. */
export function summaryColumns(e: Experiment): string[] {
  return [
    ...e.grid.map((g) => g.key),
    "mode",
    "n",
    ...summaryMetrics(e).flatMap((m) => [`${m}_mean`, `${m}_ci95`]),
  ];
}

/**
 * One row per grid point and mode, in the table's order, over the rows that ran (a run that
 * could not run has no figures and is not counted in n).
 */
export function summarize(e: Experiment, rows: readonly ResultRow[]): ResultRow[] {
  const groups = new Map<string, ResultRow[]>();
  for (const row of rows) {
    const key = JSON.stringify([...e.grid.map((g) => row[g.key]), row.mode]);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [row]);
    else group.push(row);
  }
  const metrics = summaryMetrics(e);
  return [...groups.values()].map((group) => {
    const first = group[0];
    const out: ResultRow = {};
    for (const g of e.grid) out[g.key] = first[g.key];
    out.mode = first.mode;
    const ran = group.filter((r) => r.ending !== "not-run");
    out.n = ran.length;
    for (const m of metrics) {
      const values = ran.map((r) => r[m]).filter((v): v is number => typeof v === "number");
      const stat = values.length === 0 ? { mean: null, ci95: null } : meanInterval(values);
      out[`${m}_mean`] = stat.mean;
      out[`${m}_ci95`] = stat.ci95;
    }
    return out;
  });
}
