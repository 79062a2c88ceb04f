/**
 * `memvisor run`: load a scenario, run it (with a progress bar on long runs), print the report.
 * The run goes turn by turn with a pause for the event loop every few milliseconds, so that
 * Ctrl-C stops it at the next turn and prints the report so far, marked partial.
 */

import { checkCycleTotals, type PagingMode, type Report, Simulation } from "../api/index.js";
import { parseAccesses, parseSeed } from "./args.js";
import { runsCode, UsageError } from "./errors.js";
import { scenarioFromReport } from "./from-report.js";
import { SignalWatch, signalCode } from "./interrupt.js";
import { writeErr, writeJson, writeOut } from "./output.js";
import { LazyProgress } from "./progress.js";
import { provenance, withProvenance } from "./provenance.js";
import { formatStats, seriesCsv } from "./report-files.js";
import { checksLine, endingLines, formatReport } from "./report-table.js";
import { resolveScenario } from "./scenario-arg.js";
import { tourCommand } from "./tour.js";

/** Wall time between two pauses for the event loop (where a signal is heard). */
const YIELD_MS = 20;

/** The options as commander hands them over (numbers still text, so that we can say what came). */
export interface RunOptions {
  mode?: PagingMode;
  /** A report file (--json output) whose run to make again. */
  from?: string;
  /** How to print the report (--json is --format json). */
  format?: RunFormat;
  seed?: string;
  accesses?: string;
  check?: boolean | "full";
  json?: boolean;
}

/** What `run --format` prints: the text report, the JSON report, its time series, flat stats. */
export const RUN_FORMATS = ["text", "json", "csv", "stats"] as const;
export type RunFormat = (typeof RUN_FORMATS)[number];

/** The format the options ask for: --format, or --json (which may not contradict it). */
function formatOf(options: RunOptions): RunFormat {
  if (options.json && options.format !== undefined && options.format !== "json") {
    throw new UsageError(`--json and --format ${options.format} ask for two formats: give one`);
  }
  return options.json ? "json" : (options.format ?? "text");
}

/** Runs the command; resolves to the exit code. User errors are thrown (see errors.ts). */
export async function runCommand(
  scenarioArg: string | undefined,
  options: RunOptions,
): Promise<number> {
  const seed = options.seed === undefined ? undefined : parseSeed(options.seed);
  const accesses = options.accesses === undefined ? undefined : parseAccesses(options.accesses);
  const format = formatOf(options);
  if (options.from !== undefined && scenarioArg !== undefined) {
    throw new UsageError(
      `--from ${options.from} names the scenario (the report's): give no SCENARIO (got ${JSON.stringify(scenarioArg)})`,
    );
  }
  // The first run a user sees (npm start); any option that says what to run or print is a script's.
  const bare =
    scenarioArg === undefined &&
    options.from === undefined &&
    options.mode === undefined &&
    options.format === undefined &&
    !options.json;
  if (bare) {
    const check = options.check ?? false;
    return tourCommand(resolveScenario(undefined), { seed, accesses, check });
  }
  const scenario =
    options.from === undefined
      ? resolveScenario(scenarioArg)
      : scenarioFromReport(options.from, options.mode);
  const sim = new Simulation(scenario, {
    mode: options.mode,
    seed,
    accesses,
    check: options.check ?? false,
  });
  warnDropped(`--mode ${options.mode}`, sim.droppedSettings);

  const total = sim.scenario.run.accesses;
  const progress = process.stderr.isTTY
    ? new LazyProgress(total, `running ${scenario.name}`, process.stderr)
    : null;
  const watch = new SignalWatch();
  let report: Report;
  try {
    report = await runTurns(sim, watch, (done) => progress?.update(done));
  } finally {
    progress?.stop();
    watch.dispose();
  }
  checkCycleTotals(report);

  if (format === "text") {
    writeOut(formatReport(report, scenario.description));
  } else {
    if (format === "json") writeJson(withProvenance(report));
    else if (format === "csv") writeOut(seriesCsv(report));
    else writeOut(formatStats(report, provenance()));
    if (report.checks.violations > 0) writeErr(checksLine(report));
    if (report.ending.status === "early" && !report.ending.may_end_early) {
      writeErr(endingLines(report).join("\n"));
    }
  }
  if (report.ending.status === "partial" && watch.signal !== null) {
    writeErr(`interrupted (${watch.signal}): the report so far is printed, marked partial`);
    return signalCode(watch.signal);
  }
  return runsCode([report]);
}

/**
 * Turns until the run is over or a signal came, with a pause for the event loop every YIELD_MS
 * of wall time. The report: the finished run's, or a partial one.
 */
async function runTurns(
  sim: Simulation,
  watch: SignalWatch,
  progress: (done: number) => void,
): Promise<Report> {
  let more = true;
  let paused = Date.now();
  while (more && watch.signal === null) {
    more = sim.runTurn();
    progress(sim.accessesDone);
    if (Date.now() - paused >= YIELD_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      paused = Date.now();
    }
  }
  return more ? sim.report() : sim.finish();
}

/** A warning on stderr for what a mode option dropped from the scenario. */
export function warnDropped(option: string, dropped: readonly string[]): void {
  if (dropped.length === 0) return;
  writeErr(`warning: ${option} drops what the scenario sets: ${dropped.join("; ")}`);
}
