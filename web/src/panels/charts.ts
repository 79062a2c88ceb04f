/**
 * Charts over simulated time (uPlot): exits per second by reason, shadow pages, memory per
 * domain with its balloon target, memory saved by sharing; only the charts the run's modes can
 * move (no exits natively, no shadow pages without shadow paging), and one memory chart per
 * domain when there are more than two. Each domain has the frame map's colour; series also
 * differ by dash pattern, and each legend shows the latest values, so they read without colour.
 * Simulated seconds assume a nominal 3 GHz clock (the cost model counts cycles, not seconds).
 */

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { PagingMode } from "../../../src/api/index.js";
import { h } from "../dom.js";
import type { ChartPoint } from "../messages.js";
import { DOMAIN_COLOURS } from "./frames.js";

export const CLOCK_HZ = 3e9;
const REASONS = ["pf", "cr3", "invlpg", "ept_violation", "hypercall"];
const REASON_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];
const DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4], [1, 6], [12, 6]];
/** Points kept; older ones are thinned to every other one. */
const MAX_POINTS = 1500;
const MiB = 2 ** 20;
/** More domains than this: one memory chart each, not one chart with every line. */
const DOMAINS_PER_CHART = 2;

interface Chart {
  plot: uPlot;
  /** The y values of each series for one point (and the one before it). */
  values: (p: ChartPoint, prev: ChartPoint | null) => number[];
  data: number[][];
}

interface Line {
  label: string;
  colour: string;
  dash: number;
}

function series(line: Line): uPlot.Series {
  return {
    label: line.label,
    stroke: line.colour,
    dash: DASHES[line.dash % DASHES.length],
    width: 2,
    points: { show: false },
    value: (_u, v) => (v === null || v === undefined ? "" : readable(v)),
  };
}

/** A value with as many digits as it needs, and no more. */
function readable(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString("en");
  return v.toPrecision(3).replace(/\.?0+$/, "");
}

/** Tick labels with the decimals their spacing needs, so that no two read the same. */
function ticks(_u: uPlot, splits: number[]): string[] {
  const step = splits.length > 1 ? Math.abs(splits[1] - splits[0]) : 1;
  const decimals = step > 0 ? Math.max(0, Math.min(6, -Math.floor(Math.log10(step)))) : 0;
  return splits.map((v) =>
    decimals === 0 ? Math.round(v).toLocaleString("en") : v.toFixed(decimals),
  );
}

export class Charts {
  private charts: Chart[] = [];
  private prev: ChartPoint | null = null;

  constructor(private readonly root: HTMLElement) {}

  /** New charts for a run of these domains (none: no charts). */
  reset(run: { name: string; mode: PagingMode; balloon: boolean }[]): void {
    const modes = run.map((d) => d.mode);
    for (const c of this.charts) c.plot.destroy();
    this.root.replaceChildren();
    this.charts = [];
    this.prev = null;
    if (run.length === 0) return;
    const rate = (p: ChartPoint, prev: ChartPoint | null, r: string) => {
      if (prev === null || p.cycles <= prev.cycles) return 0;
      return ((p.exits[r] - prev.exits[r]) * CLOCK_HZ) / (p.cycles - prev.cycles);
    };
    if (modes.some((m) => m !== "native")) {
      const reasons = REASONS.filter(
        (r) =>
          (r !== "ept_violation" || modes.includes("hap")) &&
          (r !== "hypercall" || modes.some((m) => m !== "native")) &&
          ((r !== "cr3" && r !== "invlpg") || modes.includes("shadow")) &&
          (r !== "pf" || modes.includes("shadow") || modes.includes("pv")),
      );
      this.add(
        "VM exits per simulated second, by reason",
        "exits/s",
        reasons.map((r) => ({
          label: r,
          colour: REASON_COLOURS[REASONS.indexOf(r)],
          dash: REASONS.indexOf(r),
        })),
        (p, prev) => reasons.map((r) => rate(p, prev, r)),
      );
    }
    if (modes.includes("shadow")) {
      this.add(
        "Shadow pages in use",
        "pages",
        [{ label: "shadow pages", colour: "#d62728", dash: 0 }],
        (p) => [p.shadowPages],
      );
    }
    // A balloon target only for a domain with a balloon driver.
    const memory = (ds: { name: string; i: number; balloon: boolean }[], title: string) =>
      this.add(
        title,
        "MiB",
        ds.flatMap(({ name, i, balloon }) => {
          const colour = DOMAIN_COLOURS[i % DOMAIN_COLOURS.length];
          const own = { label: name, colour, dash: 0 };
          return balloon ? [own, { label: `${name} balloon target`, colour, dash: 1 }] : [own];
        }),
        (p) =>
          ds.flatMap(({ name, balloon }) => {
            const own = (p.memory[name] ?? 0) / MiB;
            return balloon ? [own, (p.target[name] ?? 0) / MiB] : [own];
          }),
      );
    const all = run.map((d, i) => ({ name: d.name, i, balloon: d.balloon }));
    if (all.length <= DOMAINS_PER_CHART) {
      memory(
        all,
        all.some((d) => d.balloon)
          ? "Host memory per domain (MiB) and balloon target"
          : "Host memory per domain (MiB)",
      );
    } else {
      for (const d of all) {
        memory([d], `Host memory of ${d.name} (MiB)${d.balloon ? " and balloon target" : ""}`);
      }
    }
    if (modes.some((m) => m !== "native")) {
      this.add(
        "Memory saved by page sharing (MiB)",
        "MiB",
        [{ label: "saved", colour: "#2ca02c", dash: 0 }],
        (p) => [p.savedBytes / MiB],
      );
    }
  }

  private add(title: string, unit: string, lines: Line[], values: Chart["values"]): void {
    const box = h("figure", { class: "chart", "aria-label": title });
    this.root.append(box);
    const width = Math.min(460, Math.max(260, this.root.clientWidth - 16));
    const opts: uPlot.Options = {
      title,
      width,
      height: 200,
      scales: {
        x: { time: false },
        y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        { label: "simulated ms (3 GHz)", values: ticks },
        { label: unit, size: 70, values: ticks },
      ],
      series: [
        { label: "ms", value: (_u, v) => (v == null ? "" : readable(v)) },
        ...lines.map(series),
      ],
    };
    const data = [[], ...lines.map(() => [])] as number[][];
    const plot = new uPlot(opts, data as uPlot.AlignedData, box);
    this.charts.push({ plot, values, data });
  }

  push(p: ChartPoint): void {
    if (this.prev !== null && p.cycles === this.prev.cycles) return;
    for (const c of this.charts) {
      c.data[0].push((p.cycles / CLOCK_HZ) * 1000);
      c.values(p, this.prev).forEach((v, i) => {
        c.data[i + 1].push(v);
      });
      if (c.data[0].length > MAX_POINTS) {
        for (let s = 0; s < c.data.length; s++) c.data[s] = c.data[s].filter((_, i) => i % 2 === 0);
      }
      c.plot.setData(c.data as uPlot.AlignedData);
      // The legend shows the latest values when the pointer is not over the chart.
      c.plot.setLegend({ idx: c.data[0].length - 1 });
    }
    this.prev = p;
  }
}
