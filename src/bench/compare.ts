/**
 * `--compare REF`: another checkout's benchmarks and this one's, run in turn (REF, this, REF,
 * this, ...: N pairs, each run in its own process), so that both are measured at the same time
 * on a machine whose load changes. The ratio this/REF of the main rate is taken pair by pair,
 * then its median: two runs of a pair ran back to back, under nearly the same load.
 */

import { type Checkout, runChild } from "./child.js";
import { type Conditions, conditionsLine } from "./conditions.js";
import { summaryJson, withRatiosToNative } from "./repeat.js";
import {
  median,
  pairRatios,
  round3,
  type Sample,
  type Summary,
  sharedMainFigure,
  summarize,
} from "./stats.js";

export interface CompareResult {
  name: string;
  /** The rate compared (the same on both sides), or null when they share none. */
  main_figure: string | null;
  /** The median of the pairs' this/REF ratios of the main figure. */
  ratio: number | null;
  ratio_min: number | null;
  ratio_max: number | null;
  /** Each pair's this/REF, in the pairs' order. */
  ratios: number[];
  ref: Summary;
  self: Summary;
}

export interface CompareReport {
  self: { path: string; commit: string | null };
  ref: { path: string; commit: string | null };
  pairs: number;
  results: CompareResult[];
  /** Asked for (or run by default) but only one side has them: not run. */
  only_this: string[];
  only_ref: string[];
  conditions: Conditions;
}

export async function runCompare(
  self: Checkout,
  ref: Checkout,
  names: { both: readonly string[]; onlyThis: readonly string[]; onlyRef: readonly string[] },
  pairs: number,
  progress: (line: string) => void,
): Promise<Omit<CompareReport, "self" | "ref" | "conditions">> {
  const refRuns = new Map<string, Sample[]>(names.both.map((n) => [n, []]));
  const selfRuns = new Map<string, Sample[]>(names.both.map((n) => [n, []]));
  let seq = 0;
  for (let pair = 0; pair < pairs; pair++) {
    for (const name of names.both) {
      progress(`pair ${pair + 1}/${pairs}: ${name} (REF, then this)`);
      refRuns.get(name)?.push({ ...(await runChild(ref, name)), seq: seq++ });
      selfRuns.get(name)?.push({ ...(await runChild(self, name)), seq: seq++ });
    }
  }
  const results = names.both.map((name) => {
    const a = refRuns.get(name) ?? [];
    const b = selfRuns.get(name) ?? [];
    const main = sharedMainFigure(b[0].result, a[0].result);
    const refSummary = summarize(name, a, main);
    const selfSummary = summarize(name, b, main);
    let ratios: number[] = [];
    if (main !== null) {
      const values = (runs: Sample[]) => runs.map((s) => s.result[main] as number);
      ratios = pairRatios(values(a), values(b));
    }
    const finite = ratios.every(Number.isFinite) && ratios.length > 0;
    return {
      name,
      main_figure: main,
      ratio: finite ? round3(median(ratios)) : null,
      ratio_min: finite ? round3(Math.min(...ratios)) : null,
      ratio_max: finite ? round3(Math.max(...ratios)) : null,
      ratios,
      ref: refSummary,
      self: selfSummary,
    };
  });
  withRatiosToNative(results.map((r) => r.ref));
  withRatiosToNative(results.map((r) => r.self));
  return { pairs, results, only_this: [...names.onlyThis], only_ref: [...names.onlyRef] };
}

export function compareJson(report: CompareReport): object {
  return {
    compare: { this: report.self, ref: report.ref, pairs: report.pairs, order: "REF, this" },
    conditions: report.conditions,
    results: report.results.map((r) => ({
      name: r.name,
      main_figure: r.main_figure,
      ratio: r.ratio,
      ratio_min: r.ratio_min,
      ratio_max: r.ratio_max,
      ratios: r.ratios,
      ref: summaryJson(r.ref),
      this: summaryJson(r.self),
    })),
    only_this: report.only_this,
    only_ref: report.only_ref,
  };
}

function cell(x: number | string | null | undefined): string {
  if (x === null || x === undefined) return "-";
  return typeof x === "number" ? x.toLocaleString("en-US") : x;
}

const short = (commit: string | null) => (commit === null ? "" : ` (${commit.slice(0, 7)})`);

export function formatCompare(report: CompareReport): string {
  const lines = [
    `this: ${report.self.path}${short(report.self.commit)}`,
    `REF:  ${report.ref.path}${short(report.ref.commit)}`,
    `${report.pairs} pair${report.pairs === 1 ? "" : "s"}, each run in its own process, REF then this; medians, and this/REF pair by pair`,
    conditionsLine(report.conditions),
    "",
  ];
  const header = [
    "benchmark",
    "figure",
    "REF median",
    "this median",
    "this/REF",
    "min-max",
    "process CPU s REF/this",
  ];
  const rows = report.results.map((r) => [
    r.name,
    r.main_figure ?? "(no shared rate)",
    cell(r.main_figure === null ? null : r.ref.figures[r.main_figure]),
    cell(r.main_figure === null ? null : r.self.figures[r.main_figure]),
    r.ratio === null ? "-" : r.ratio.toFixed(3),
    r.ratio_min === null || r.ratio_max === null
      ? "-"
      : `${r.ratio_min.toFixed(3)}-${r.ratio_max.toFixed(3)}`,
    `${r.ref.process_cpu_seconds} / ${r.self.process_cpu_seconds}`,
  ]);
  if (rows.length === 0) lines.push("no benchmark that both checkouts have was asked for");
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  for (const row of rows.length > 0 ? [header, ...rows] : []) {
    lines.push(row.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  "));
  }
  if (report.only_this.length > 0)
    lines.push("", `only in this checkout (not run): ${report.only_this.join(", ")}`);
  if (report.only_ref.length > 0)
    lines.push("", `only in REF (not run): ${report.only_ref.join(", ")}`);
  return `${lines.join("\n")}\n`;
}
