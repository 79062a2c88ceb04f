/**
 * `memvisor experiment FILE`: every run of an experiment's grid, on every core (worker
 * threads), each row written as its run finishes; then the tables in the grid's order, the
 * summary and the plots. `--shard I/N` runs a share of the runs (for a job array), `--resume`
 * finishes what a killed or interrupted run left.
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type Experiment,
  type ExperimentPoint,
  experimentPoints,
  loadExperiment,
  PoolClosedError,
  parseShard,
  type RunOutcome,
  RunPool,
  resultRow,
  type Shard,
  shardPoints,
  WHOLE,
} from "../api/node.js";
import { parseJobs } from "./args.js";
import { EXIT_CHECKS, EXIT_ENDED_EARLY, EXIT_OK, EXIT_USAGE, UsageError } from "./errors.js";
import { ExperimentFolder, identityOf, RESULTS_CSV } from "./experiment-files.js";
import { writeSummary } from "./experiment-summary.js";
import { signalCode } from "./interrupt.js";
import { writeErr, writeOut } from "./output.js";
import { LazyProgress } from "./progress.js";

export interface ExperimentOptions {
  out?: string;
  jobs?: string;
  shard?: string;
  resume?: boolean;
  force?: boolean;
}

/** The default output folder: <name>-results, and a subfolder per shard. */
function defaultOut(e: Experiment, shard: Shard): string {
  const dir = `${e.name}-results`;
  return shard.count === 1 ? dir : join(dir, `shard-${shard.index}-of-${shard.count}`);
}

/** The package's experiments/ folder (from src/cli or dist/cli alike). */
const EXPERIMENTS_DIR = fileURLToPath(new URL("../../experiments", import.meta.url));

/**
 * The experiment file FILE names: a path, or the name of a built-in experiment
 * (experiments/NAME.yaml in the package) when it is a plain word that is no file here.
 */
function experimentPath(file: string): string {
  if (/[/\\]|\.(ya?ml|json)$/i.test(file) || existsSync(file)) return file;
  const builtin = join(EXPERIMENTS_DIR, `${file}.yaml`);
  return existsSync(builtin) ? builtin : file;
}

export async function experimentCommand(file: string, options: ExperimentOptions): Promise<number> {
  const jobs = parseJobs(options.jobs);
  let shard = WHOLE;
  if (options.shard !== undefined) {
    const parsed = parseShard(options.shard);
    if (typeof parsed === "string") throw new UsageError(`--shard: ${parsed}`);
    shard = parsed;
  }
  const e = loadExperiment(experimentPath(file));
  const all = experimentPoints(e);
  const mine = shardPoints(all, shard);
  const dir = options.out ?? defaultOut(e, shard);
  const folder = new ExperimentFolder(dir, e, identityOf(e, all.length, shard), {
    resume: options.resume ?? false,
    force: options.force ?? false,
  });
  try {
    return await runAndReport(file, options, e, mine, folder, Math.max(1, jobs), shard);
  } finally {
    folder.release();
  }
}

/** The runs of this shard still to make, then the tables, summary and plots; the exit code. */
async function runAndReport(
  file: string,
  options: ExperimentOptions,
  e: Experiment,
  mine: readonly ExperimentPoint[],
  folder: ExperimentFolder,
  jobs: number,
  shard: Shard,
): Promise<number> {
  const dir = folder.dir;
  const todo = mine.filter((p) => !folder.done.has(p.index));
  if (folder.done.size > 0) {
    writeErr(`resuming: ${folder.done.size} of ${mine.length} runs already in ${dir}`);
  }

  const status = await runPoints(
    e,
    todo,
    folder,
    Math.min(jobs, Math.max(1, todo.length)),
    mine.length,
  );
  const rows = folder.finish();
  if (status.signal !== null) {
    writeErr(
      `interrupted (${status.signal}): ${rows.length} of ${mine.length} runs are in ${dir}; ` +
        `\`memvisor experiment ${file} --resume${options.out ? ` --out ${dir}` : ""}\` finishes it`,
    );
    return signalCode(status.signal);
  }
  if (shard.count === 1) {
    const { text, files } = await writeSummary(dir, e, rows);
    writeOut(text);
    writeErr(`wrote ${[join(dir, RESULTS_CSV), ...files].join(", ")}`);
  } else {
    writeErr(
      `shard ${shard.index}/${shard.count}: ${rows.length} runs in ${dir}; when every shard is done, ` +
        "`memvisor experiment merge FOLDER` joins the shards' folders found in FOLDER",
    );
  }
  const notRun = rows.some((r) => r.ending === "not-run");
  if (status.code !== EXIT_OK) return status.code;
  return notRun ? EXIT_USAGE : EXIT_OK;
}

/**
 * The order the points start in: from the two ends of the grid in turn, the last first. A grid
 * axis usually makes runs dearer one way (a larger working set, more accesses), so that the
 * dearest points all at the end would leave the other cores idle while they finish; taken from
 * both ends, the runs still going at the end are middling ones. The tables are written in the
 * grid's order whatever the order of the runs.
 */
function startOrder<T>(points: readonly T[]): T[] {
  const order: T[] = [];
  for (let first = 0, last = points.length - 1; first <= last; ) {
    order.push(points[last--]);
    if (first <= last) order.push(points[first++]);
  }
  return order;
}

/**
 * Runs the points on a pool of `jobs`, appending each row as its run finishes. A SIGINT or
 * SIGTERM stops the pool (the rows written stay); a second one ends the process at once.
 */
async function runPoints(
  e: Experiment,
  todo: readonly ExperimentPoint[],
  folder: ExperimentFolder,
  jobs: number,
  total: number,
): Promise<{ code: number; signal: "SIGINT" | "SIGTERM" | null }> {
  const pool = new RunPool(jobs);
  const progress = process.stderr.isTTY
    ? new LazyProgress(total, `experiment ${e.name}`, process.stderr, "runs")
    : null;
  let signal: "SIGINT" | "SIGTERM" | null = null;
  const handlers = (["SIGINT", "SIGTERM"] as const).map((s) => {
    const handler = () => {
      if (signal !== null) process.exit(signalCode(s));
      signal = s;
      void pool.close();
    };
    process.on(s, handler);
    return [s, handler] as const;
  });
  let done = folder.done.size;
  let code = EXIT_OK;
  const said = new Set<string>();
  const once = (text: string) => {
    if (!said.has(text)) writeErr(text);
    said.add(text);
  };
  // A run that finishes after a signal is kept too: its row is as good as any.
  const finished = (point: ExperimentPoint, outcome: RunOutcome) => {
    folder.append(resultRow(e, point, outcome), outcome.wallMs / 1000);
    progress?.update(++done);
    const report = outcome.report;
    if (report === undefined) {
      once(`mode ${point.mode ?? "of the scenario"} could not run: ${outcome.notRun}`);
      return;
    }
    if (report.dropped_settings.length > 0) {
      once(
        `warning: mode ${point.mode} drops what the scenario sets: ${report.dropped_settings.join("; ")}`,
      );
    }
    if (report.checks.violations > 0) code = EXIT_CHECKS;
    else if (report.ending.status === "early" && !report.ending.may_end_early && code === EXIT_OK) {
      code = EXIT_ENDED_EARLY;
      once(
        `run ${point.index} ended early (see its ending column); the exit code is ${EXIT_ENDED_EARLY}`,
      );
    }
  };
  try {
    const results = await Promise.allSettled(
      startOrder(todo).map((point) =>
        pool
          .run({
            scenario: e.scenarios[point.combo],
            options: { mode: point.mode ?? undefined, seed: point.seed },
          })
          .then((outcome) => finished(point, outcome)),
      ),
    );
    if (signal === null) {
      const failed = results.find((r) => r.status === "rejected");
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    } else {
      for (const r of results) {
        if (r.status === "rejected" && !(r.reason instanceof PoolClosedError)) throw r.reason;
      }
    }
  } finally {
    progress?.stop();
    for (const [s, handler] of handlers) process.off(s, handler);
    await pool.close();
  }
  return { code, signal };
}
