/**
 * The arithmetic of repeated runs: medians of each figure, the main rate of a benchmark, and the
 * ratios of pairs. Medians, because on a shared machine a run is slowed by others' work far more
 * often than it is sped up: one slow run moves a mean, not a median.
 */

import type { BenchResult } from "./access.js";

/** What the harness measured of one benchmark process from outside. */
export interface ProcessUsage {
  /** The process's whole CPU time (user + system), start-up and set-up included, in seconds. */
  cpu_seconds: number;
  user_seconds: number;
  system_seconds: number;
  /** From spawn to exit, as the harness saw it. */
  wall_seconds: number;
  /** Peak resident memory. */
  max_rss_mib: number;
  pid: number;
}

/** One run of one benchmark in its own process. */
export interface Sample {
  /** The benchmark's own figures, as its process printed them. */
  result: BenchResult;
  process: ProcessUsage;
  /** The run's place among every process the invocation started (0, 1, ...). */
  seq: number;
}

/** The median run of a benchmark, figure by figure, with the spread of its main rate. */
export interface Summary {
  name: string;
  /** The median of each numeric figure; a text figure when every run gave the same. */
  figures: Record<string, number | string>;
  runs: number;
  main_figure: string | null;
  main_min: number | null;
  main_max: number | null;
  process_cpu_seconds: number;
  process_wall_seconds: number;
  process_max_rss_mib: number;
  samples: Sample[];
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error("median of no values");
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Three decimals, as the benchmarks round their own figures. */
export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** `x` rounded as `values` are: whole when they all are (a median of two counts), else to 3 decimals. */
function roundLike(values: readonly number[], x: number): number {
  return values.every(Number.isInteger) ? Math.round(x) : round3(x);
}

/**
 * The figures a benchmark is judged by, best first: rates per CPU second (not slowed by other
 * processes' work), then rates per wall-clock second, in the order the benchmark gives them.
 */
export function rateFigures(result: BenchResult): string[] {
  const numeric = Object.keys(result).filter((k) => typeof result[k] === "number");
  return [
    ...numeric.filter((k) => k.endsWith("_per_cpu_s")),
    ...numeric.filter((k) => k.endsWith("_per_s")),
  ];
}

/** The main rate both results give (the first of `a`'s rate figures `b` has too), or null. */
export function sharedMainFigure(a: BenchResult, b: BenchResult): string | null {
  return rateFigures(a).find((k) => typeof b[k] === "number") ?? null;
}

export function summarize(name: string, samples: readonly Sample[], main: string | null): Summary {
  if (samples.length === 0) throw new Error(`bench: no runs of ${name}`);
  const figures: Record<string, number | string> = {};
  for (const key of Object.keys(samples[0].result)) {
    if (key === "name") continue;
    const values = samples.map((s) => s.result[key]);
    if (values.every((v) => typeof v === "number"))
      figures[key] = roundLike(values, median(values));
    else if (values.every((v) => v === values[0])) figures[key] = values[0];
  }
  const mains = main === null ? [] : samples.map((s) => s.result[main]);
  const numericMains = mains.every((v) => typeof v === "number") ? mains : [];
  return {
    name,
    figures,
    runs: samples.length,
    main_figure: numericMains.length > 0 ? main : null,
    main_min: numericMains.length > 0 ? Math.min(...numericMains) : null,
    main_max: numericMains.length > 0 ? Math.max(...numericMains) : null,
    process_cpu_seconds: round3(median(samples.map((s) => s.process.cpu_seconds))),
    process_wall_seconds: round3(median(samples.map((s) => s.process.wall_seconds))),
    process_max_rss_mib: Math.round(median(samples.map((s) => s.process.max_rss_mib))),
    samples: [...samples],
  };
}

/** this/REF for each pair, in the pairs' order. */
export function pairRatios(ref: readonly number[], self: readonly number[]): number[] {
  if (ref.length !== self.length) throw new Error("pairRatios: unpaired runs");
  return ref.map((r, i) => self[i] / r);
}

/**
 * The native benchmark a virtualized one is compared with (shadow-local with native-local,
 * native-local-timed with native-local); `name` itself when it has none.
 */
export function nativeOf(name: string): string {
  return name.replace(/^(shadow|hap|port)-/, "native-").replace(/-timed$/, "");
}

/** The rate ratio_to_native compares: by CPU time where the benchmark gives it. */
export function nativeRate(figures: Record<string, number | string>): string {
  return typeof figures.accesses_per_cpu_s === "number" ? "accesses_per_cpu_s" : "accesses_per_s";
}

/**
 * The ratio of `name`'s median to its native counterpart's, when both were run: the figure a
 * single invocation computes from its one run of each.
 */
export function ratioToNative(name: string, summaries: readonly Summary[]): number | null {
  const base = nativeOf(name);
  if (base === name) return null;
  const native = summaries.find((s) => s.name === base);
  const self = summaries.find((s) => s.name === name);
  if (native === undefined || self === undefined) return null;
  const rate = nativeRate(self.figures);
  const a = self.figures[rate];
  const b = native.figures[rate];
  return typeof a === "number" && typeof b === "number" && b > 0 ? round3(a / b) : null;
}
