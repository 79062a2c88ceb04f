/**
 * `--repeat N` (the default mode): each benchmark run N times, each run in a fresh process, in
 * rounds (every benchmark once, then again), and the median of each figure printed with the
 * main rate's min and max.
 */

import { type Checkout, runChild } from "./child.js";
import { type Conditions, conditionsLine } from "./conditions.js";
import { figureLine } from "./once.js";
import { rateFigures, ratioToNative, type Sample, type Summary, summarize } from "./stats.js";

export interface RepeatReport {
  repeat: number;
  results: Summary[];
}

/**
 * Runs every benchmark of `names` `repeat` times. Rounds rather than all of one benchmark's runs
 * in a row: a busy spell of the machine then slows one run of each, not every run of one.
 */
export async function runRepeat(
  checkout: Checkout,
  names: readonly string[],
  repeat: number,
  progress: (line: string) => void,
): Promise<RepeatReport> {
  const samples = new Map<string, Sample[]>(names.map((n) => [n, []]));
  let seq = 0;
  for (let round = 0; round < repeat; round++) {
    for (const name of names) {
      progress(`run ${round + 1}/${repeat}: ${name}`);
      const run = await runChild(checkout, name);
      samples.get(name)?.push({ ...run, seq: seq++ });
    }
  }
  const results = names.map((name) => {
    const runs = samples.get(name) ?? [];
    return summarize(name, runs, rateFigures(runs[0].result)[0] ?? null);
  });
  withRatiosToNative(results);
  return { repeat, results };
}

/** Each virtualized benchmark's ratio_to_native, from its median and native's, where both ran. */
export function withRatiosToNative(summaries: Summary[]): void {
  for (const s of summaries) {
    const ratio = ratioToNative(s.name, summaries);
    if (ratio !== null) s.figures.ratio_to_native = ratio;
  }
}

function num(x: number): string {
  return x.toLocaleString("en-US");
}

/** What `--json` prints: each result's medians as the figures of one run would be, then the rest. */
export function repeatJson(report: RepeatReport & { conditions: Conditions }): object {
  return {
    repeat: report.repeat,
    conditions: report.conditions,
    results: report.results.map(summaryJson),
  };
}

export function summaryJson(s: Summary): object {
  const { figures, samples, name, ...rest } = s;
  return {
    name,
    ...figures,
    ...rest,
    samples: samples.map((x) => ({ ...x.result, seq: x.seq, process: x.process })),
  };
}

export function formatRepeat(
  report: RepeatReport & { conditions: Conditions },
  targets: ReadonlyMap<string, string>,
): string {
  const pad = "".padEnd(14);
  const lines = [
    `${report.repeat === 1 ? "1 run" : `medians of ${report.repeat} runs`}, each in its own process; ${conditionsLine(report.conditions)}`,
  ];
  for (const s of report.results) {
    lines.push(figureLine(s.name, s.figures));
    if (s.main_figure !== null && s.main_min !== null && s.main_max !== null) {
      lines.push(`${pad} ${s.main_figure}: min ${num(s.main_min)}, max ${num(s.main_max)}`);
    }
    lines.push(
      `${pad} process: ${s.process_cpu_seconds} s CPU, ${s.process_wall_seconds} s wall, ${num(s.process_max_rss_mib)} MiB peak`,
    );
    const target = targets.get(s.name);
    if (target !== undefined) lines.push(`${pad} target: ${target}`);
  }
  return `${lines.join("\n")}\n`;
}
