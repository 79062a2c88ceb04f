/**
 * The summary as charts: a metric's mean against a grid setting, one line per mode (and per
 * value of the grid's other settings), with the 95% interval as error bars. Vega-Lite compiles
 * the chart, Vega renders it to SVG without a browser, resvg rasterizes the SVG to PNG. Node only
 * (resvg is a native module); nothing is fetched at run time. The three are loaded when a plot is
 * drawn, not with the library: they take longer to load than a small run takes to make.
 */

import type * as VegaLite from "vega-lite";
import { parseSize } from "../../config/sizes.js";
import type { Experiment, PlotSpec } from "../../workload/experiment/experiment.js";
import type { ResultRow } from "./row.js";

export interface RenderedPlot {
  /** A file name for it: plot-<y>-vs-<x>. */
  name: string;
  svg: string;
  png: Uint8Array;
}

const MIB = 1024 * 1024;

/** The x axis: numbers as they are, sizes in MiB, anything else as names in the grid's order. */
function xAxis(values: readonly unknown[]): { type: "quantitative" | "ordinal"; scale: number } {
  if (values.every((v) => typeof v === "number")) return { type: "quantitative", scale: 1 };
  const sizes = values.every((v) => typeof v === "string" && sizeBytes(v) !== null);
  return sizes ? { type: "quantitative", scale: MIB } : { type: "ordinal", scale: 1 };
}

function sizeBytes(text: string): number | null {
  try {
    return parseSize(text);
  } catch {
    return null;
  }
}

/** The Vega-Lite specification of one plot of the summary. */
export function plotSpec(e: Experiment, plot: PlotSpec, summary: readonly ResultRow[]): object {
  const setting = e.grid.find((g) => g.key === plot.x);
  const values = setting?.values ?? [];
  const axis = xAxis(values);
  const others = e.grid.filter((g) => g.key !== plot.x);
  const data = summary.map((row) => {
    const raw = row[plot.x];
    const x =
      axis.type === "ordinal"
        ? String(raw)
        : typeof raw === "number"
          ? raw
          : (sizeBytes(String(raw)) ?? 0) / axis.scale;
    const mean = row[`${plot.y}_mean`] as number | null;
    const ci = row[`${plot.y}_ci95`] as number | null;
    const series = [String(row.mode), ...others.map((g) => `${g.key}=${String(row[g.key])}`)];
    return {
      x,
      y: mean,
      lo: mean !== null && ci !== null ? mean - ci : mean,
      hi: mean !== null && ci !== null ? mean + ci : mean,
      series: series.join(", "),
    };
  });
  const xField = {
    field: "x",
    type: axis.type,
    title: axis.scale === MIB ? `${plot.x} (MiB)` : plot.x,
    // Ticks at the grid's values: the points measured, not round numbers between them.
    ...(axis.type === "quantitative"
      ? {
          scale: plot.logX ? { type: "log", nice: false } : { zero: false, nice: false },
          axis: { values: [...new Set(data.map((d) => d.x))] },
        }
      : {}),
    ...(axis.type === "ordinal" ? { sort: values.map(String) } : {}),
  };
  // Series in the order the summary has them (the experiment's modes' order), not sorted.
  const color = {
    field: "series",
    type: "nominal",
    scale: { domain: [...new Set(data.map((d) => d.series))] },
    title: others.length > 0 ? "mode, settings" : "mode",
  };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: plot.title || `${e.name}: ${plot.y} against ${plot.x}`,
    width: 480,
    height: 300,
    background: "white",
    data: { values: data },
    layer: [
      {
        mark: { type: "line", point: true },
        encoding: {
          x: xField,
          y: { field: "y", type: "quantitative", title: `${plot.y} (mean)` },
          color,
        },
      },
      {
        mark: { type: "errorbar", ticks: true },
        encoding: {
          x: xField,
          y: { field: "lo", type: "quantitative", title: `${plot.y} (mean)` },
          y2: { field: "hi" },
          color,
        },
      },
    ],
  };
}

/** Every plot the experiment asks for, as SVG and PNG. */
export async function renderPlots(
  e: Experiment,
  summary: readonly ResultRow[],
): Promise<RenderedPlot[]> {
  const out: RenderedPlot[] = [];
  if (e.plots.length === 0) return out;
  const [vega, vegaLite, { Resvg }] = await Promise.all([
    import("vega"),
    import("vega-lite"),
    import("@resvg/resvg-js"),
  ]);
  for (const plot of e.plots) {
    const spec = vegaLite.compile(plotSpec(e, plot, summary) as VegaLite.TopLevelSpec).spec;
    const view = new vega.View(vega.parse(spec), { renderer: "none" });
    const svg = await view.toSVG();
    view.finalize();
    const png = new Resvg(svg, {
      fitTo: { mode: "zoom", value: 2 },
      font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" },
    })
      .render()
      .asPng();
    out.push({ name: `plot-${slug(plot.y)}-vs-${slug(plot.x)}`, svg, png });
  }
  return out;
}

/** A name safe in a file name: "domains[*].memory" -> "domains-memory". */
function slug(text: string): string {
  return text.replace(/[^A-Za-z0-9_]+/g, "-").replace(/^-|-$/g, "");
}
