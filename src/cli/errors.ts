/**
 * The CLI's exit codes and the one place that turns an error into a message and a code. User
 * errors (a bad option, a bad scenario, a mode this build lacks) print one message and no stack;
 * anything else is a bug in memvisor and says so.
 */

import { CommanderError } from "commander";
import { type Report, ScenarioError, SimulationError, TraceError } from "../api/index.js";
import { OutputError } from "../api/node.js";

export const EXIT_OK = 0;
/** A usage error: bad option or argument, unknown or invalid scenario, unavailable mode. */
export const EXIT_USAGE = 2;
/** The run finished but --check found invariant violations. */
export const EXIT_CHECKS = 3;
/**
 * The run ended before making its accesses (every process gone, a domain crashed: the report
 * says why), and the scenario does not say run.may_end_early.
 */
export const EXIT_ENDED_EARLY = 5;
/** Interrupted by SIGINT (Ctrl-C) or SIGTERM, as a shell reports a death by those signals. */
export const EXIT_SIGINT = 130;
export const EXIT_SIGTERM = 143;
/** An internal error (BSD sysexits EX_SOFTWARE). */
export const EXIT_INTERNAL = 70;
/** Output could not be written: a full disk, a closed pipe or descriptor (sysexits EX_IOERR). */
export const EXIT_IO = 74;

/**
 * The exit code of runs that finished: 3 when --check found violations, else 5 when one ended
 * early unexpectedly, else 0.
 */
export function runsCode(reports: readonly Report[]): number {
  if (reports.some((r) => r.checks.violations > 0)) return EXIT_CHECKS;
  const early = (r: Report) => r.ending.status === "early" && !r.ending.may_end_early;
  return reports.some(early) ? EXIT_ENDED_EARLY : EXIT_OK;
}

/** A mistake in what the user typed, found by the CLI itself. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The message (without the "memvisor: " prefix) and exit code for an error thrown by a command. */
export function describeError(e: unknown, debug: boolean): { message: string; code: number } {
  if (e instanceof CommanderError) {
    // Commander has already printed its message; help and --version exit with 0.
    return { message: "", code: e.exitCode === 0 ? EXIT_OK : EXIT_USAGE };
  }
  if (
    e instanceof UsageError ||
    e instanceof ScenarioError ||
    e instanceof SimulationError ||
    e instanceof TraceError
  ) {
    return { message: e.message, code: EXIT_USAGE };
  }
  if (e instanceof OutputError) return { message: e.message, code: EXIT_IO };
  const message = e instanceof Error ? e.message : String(e);
  const stack = e instanceof Error && e.stack !== undefined ? e.stack : "";
  const detail = debug
    ? `\n${stack}`
    : "\n(this is a bug in memvisor; set MEMVISOR_DEBUG=1 to see the stack trace)";
  return { message: `internal error: ${message}${detail}`, code: EXIT_INTERNAL };
}
