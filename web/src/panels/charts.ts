/**
 * Charts over simulated time (uPlot): exits per second by reason, shadow pages, memory per
 * domain with its balloon target, memory saved by sharing. Series differ by dash pattern and
 * are named in each chart's legend, so they read without colour. Simulated seconds assume a
 * nominal 3 GHz clock (the cost model counts cycles, not seconds).
 */

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h } from "../dom.js";
import type { ChartPoint } from "../messages.js";

export const CLOCK_HZ = 3e9;
const REASONS = ["pf", "cr3", "invlpg", "ept_violation", "hypercall"];
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"];
const DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4], [1, 6], [12, 6]];
/** Points kept; older ones are thinned to every other one. */
const MAX_POINTS = 1500;
const MiB = 2 ** 20;

interface Chart {
  plot: uPlot;
  /** The y values of each series for one point (and the one before it). */
  values: (p: ChartPoint, prev: ChartPoint | null) => number[];
  data: number[][];
}

function series(label: string, i: number): uPlot.Series {
  return {
    label,
    stroke: COLOURS[i % COLOURS.length],
    dash: DASHES[i % DASHES.length],
    width: 2,
    points: { show: false },
  };
}

export class Charts {
  private charts: Chart[] = [];
  private prev: ChartPoint | null = null;

  constructor(private readonly root: HTMLElement) {}

  /** New charts for a run of these domains. */
  reset(domains: string[]): void {
    for (const c of this.charts) c.plot.destroy();
    this.root.replaceChildren();
    this.charts = [];
    this.prev = null;
    const rate = (p: ChartPoint, prev: ChartPoint | null, r: string) => {
      if (prev === null || p.cycles <= prev.cycles) return 0;
      return ((p.exits[r] - prev.exits[r]) * CLOCK_HZ) / (p.cycles - prev.cycles);
    };
    this.add("VM exits per simulated second, by reason", "exits/s", REASONS, (p, prev) =>
      REASONS.map((r) => rate(p, prev, r)),
    );
    this.add("Shadow pages in use", "pages", ["shadow pages"], (p) => [p.shadowPages]);
    this.add(
      "Memory per domain (MiB) and balloon target",
      "MiB",
      domains.flatMap((d) => [d, `${d} target`]),
      (p) => domains.flatMap((d) => [(p.memory[d] ?? 0) / MiB, (p.target[d] ?? 0) / MiB]),
    );
    this.add("Memory saved by page sharing (MiB)", "MiB", ["saved"], (p) => [p.savedBytes / MiB]);
  }

  private add(title: string, unit: string, labels: string[], values: Chart["values"]): void {
    const box = h("figure", { class: "chart", "aria-label": title });
    this.root.append(box);
    const opts: uPlot.Options = {
      title,
      width: 460,
      height: 200,
      scales: { x: { time: false } },
      axes: [{ label: "simulated ms (3 GHz)" }, { label: unit, size: 70 }],
      series: [{ label: "ms" }, ...labels.map(series)],
    };
    const data = [[], ...labels.map(() => [])] as number[][];
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
    }
    this.prev = p;
  }
}
