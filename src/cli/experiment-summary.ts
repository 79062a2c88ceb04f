/**
 * What a finished experiment (or a merge of its shards) ends with: summary.csv, the plots as SVG
 * and PNG, and on stdout the summary as a table, each figure as mean ± the half-width of its 95%
 * interval over the seeds (Student's t).
 */

import { join } from "node:path";
import {
  type Experiment,
  type ResultRow,
  renderPlots,
  summarize,
  summaryColumns,
  toCsv,
} from "../api/node.js";
import { SUMMARY_CSV, writeAtomic } from "./experiment-files.js";
import { formatInt, newTable } from "./format.js";

/** Writes summary.csv and the plots into dir; returns the text to print and the files written. */
export async function writeSummary(
  dir: string,
  e: Experiment,
  rows: readonly ResultRow[],
): Promise<{ text: string; files: string[] }> {
  const summary = summarize(e, rows);
  const files = [join(dir, SUMMARY_CSV)];
  writeAtomic(files[0], toCsv(summaryColumns(e), summary));
  for (const plot of await renderPlots(e, summary)) {
    const svg = join(dir, `${plot.name}.svg`);
    const png = join(dir, `${plot.name}.png`);
    writeAtomic(svg, plot.svg);
    writeAtomic(png, plot.png);
    files.push(svg, png);
  }
  return { text: formatSummary(e, summary), files };
}

/** The metrics the printed table shows: cycles per access and what the plots show. */
function shownMetrics(e: Experiment): string[] {
  return [...new Set(["cycles_per_access", ...e.plots.map((p) => p.y)])];
}

/** A figure to about four significant digits, grouped when large. */
export function formatFigure(x: number): string {
  if (Math.abs(x) >= 1000) return formatInt(x);
  if (x === 0) return "0";
  return Number(x.toPrecision(4)).toString();
}

export function formatSummary(e: Experiment, summary: readonly ResultRow[]): string {
  const metrics = shownMetrics(e);
  const table = newTable({
    head: [...e.grid.map((g) => g.key), "mode", "n", ...metrics],
    colAligns: [
      ...e.grid.map(() => "right" as const),
      "left",
      "right",
      ...metrics.map(() => "right" as const),
    ],
  });
  for (const row of summary) {
    table.push([
      ...e.grid.map((g) => String(row[g.key])),
      String(row.mode),
      String(row.n),
      ...metrics.map((m) => {
        const mean = row[`${m}_mean`];
        const ci = row[`${m}_ci95`];
        if (typeof mean !== "number") return "-";
        return typeof ci === "number"
          ? `${formatFigure(mean)} ± ${formatFigure(ci)}`
          : formatFigure(mean);
      }),
    ]);
  }
  const seeds = e.seeds.length;
  return [
    `memvisor experiment ${e.name} · scenario ${e.scenario} · ${seeds} seed${seeds === 1 ? "" : "s"}`,
    ...(e.description !== "" ? [e.description] : []),
    table.toString(),
    seeds > 1
      ? `mean ± half-width of the 95% confidence interval over the seeds (Student's t, ${seeds - 1} degree${seeds === 2 ? "" : "s"} of freedom)`
      : "one seed: no confidence interval",
    "",
  ].join("\n");
}
