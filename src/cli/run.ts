/** `memvisor run`: load a scenario, run it (with a progress bar on long runs), print the report. */

import { checkCycleTotals, type PagingMode, type Report, Simulation } from "../api/index.js";
import { parseAccesses, parseSeed } from "./args.js";
import { EXIT_CHECKS, EXIT_OK } from "./errors.js";
import { writeErr, writeJson, writeOut } from "./output.js";
import { LazyProgress } from "./progress.js";
import { checksLine, formatReport } from "./report-table.js";
import { resolveScenario } from "./scenario-arg.js";

/** The options as commander hands them over (numbers still text, so that we can say what came). */
export interface RunOptions {
  mode?: PagingMode;
  seed?: string;
  accesses?: string;
  check?: boolean | "full";
  json?: boolean;
}

/** Runs the command; returns the exit code. User errors are thrown (see errors.ts). */
export function runCommand(scenarioArg: string | undefined, options: RunOptions): number {
  const seed = options.seed === undefined ? undefined : parseSeed(options.seed);
  const accesses = options.accesses === undefined ? undefined : parseAccesses(options.accesses);
  const scenario = resolveScenario(scenarioArg);
  const sim = new Simulation(scenario, {
    mode: options.mode,
    seed,
    accesses,
    check: options.check ?? false,
  });

  const total = sim.scenario.run.accesses;
  const progress = process.stderr.isTTY
    ? new LazyProgress(total, `running ${scenario.name}`, process.stderr)
    : null;
  let report: Report;
  try {
    report = sim.run(
      progress ? (fraction) => progress.update(Math.round(fraction * total)) : undefined,
    );
  } finally {
    progress?.stop();
  }
  checkCycleTotals(report);

  if (options.json) {
    writeJson(report);
    if (report.checks.violations > 0) writeErr(checksLine(report));
  } else {
    writeOut(formatReport(report, scenario.description));
  }
  return report.checks.violations > 0 ? EXIT_CHECKS : EXIT_OK;
}
