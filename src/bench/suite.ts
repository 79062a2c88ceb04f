/**
 * The benchmarks' command line, given the list of benchmarks: in-process single runs
 * (`--once`), repeated runs in fresh processes (the default) or the comparison with another
 * checkout (`--compare REF`).
 */

import type { BenchResult } from "./access.js";
import {
  type BenchArgs,
  BenchUsageError,
  compareNames,
  EXIT_INTERNAL,
  EXIT_SIGINT,
  EXIT_SIGTERM,
  EXIT_USAGE,
  parseBenchArgs,
  selectNames,
  USAGE,
} from "./args.js";
import { commitOf, refCheckout, staleWarning, thisCheckout } from "./checkout.js";
import { BenchChildError, type Checkout, listBenchmarks, stopChildren } from "./child.js";
import { compareJson, formatCompare, runCompare } from "./compare.js";
import { startConditions } from "./conditions.js";
import { runOnce } from "./once.js";
import { formatRepeat, repeatJson, runRepeat } from "./repeat.js";
import { benchTiny } from "./tiny.js";

export interface BenchDef {
  name: string;
  target: string;
  run: () => BenchResult;
}

/** Benchmarks of the harness itself: run only when named. */
const INTERNAL: BenchDef[] = [
  {
    name: "tiny",
    target: "(none: the harness's own test; a tenth of a second)",
    run: () => benchTiny(),
  },
];

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Progress on a terminal; nothing in a pipe or a log. */
function progress(line: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${line}`);
}

function endProgress(): void {
  if (process.stderr.isTTY) process.stderr.write("\r\x1b[K");
}

/** Ends the benchmark processes with the harness on SIGINT or SIGTERM (exit 130 or 143). */
function stopOnSignals(): void {
  for (const [signal, code] of [
    ["SIGINT", EXIT_SIGINT],
    ["SIGTERM", EXIT_SIGTERM],
  ] as const) {
    process.once(signal, () => {
      stopChildren(signal);
      endProgress();
      log(`bench: interrupted by ${signal}`);
      process.exit(code);
    });
  }
}

function warnIfStale(checkout: Checkout): void {
  const stale = staleWarning(checkout);
  if (stale !== null) log(`bench: warning: ${stale}`);
}

/** The default mode: each benchmark `args.repeat` times, each run in a fresh process. */
async function repeatMode(all: readonly BenchDef[], names: string[], args: BenchArgs) {
  const conditions = startConditions();
  const self = thisCheckout();
  warnIfStale(self);
  const report = {
    ...(await runRepeat(self, names, args.repeat, progress)),
    conditions: conditions(),
  };
  endProgress();
  const targets = new Map(all.map((b) => [b.name, b.target]));
  process.stdout.write(
    args.json ? `${JSON.stringify(repeatJson(report), null, 2)}\n` : formatRepeat(report, targets),
  );
}

/** `--compare REF`: REF's benchmarks and this checkout's in turn. */
async function compareMode(
  known: readonly string[],
  internal: ReadonlySet<string>,
  ref: string,
  args: BenchArgs,
) {
  const conditions = startConditions();
  const self = thisCheckout();
  const other = refCheckout(ref, log);
  warnIfStale(self);
  warnIfStale(other);
  const names = compareNames(known, listBenchmarks(other), internal, args.names);
  const report = {
    self: { path: self.root, commit: commitOf(self.root) },
    ref: { path: other.root, commit: commitOf(other.root) },
    ...(await runCompare(self, other, names, args.repeat, progress)),
    conditions: conditions(),
  };
  endProgress();
  process.stdout.write(
    args.json ? `${JSON.stringify(compareJson(report), null, 2)}\n` : formatCompare(report),
  );
}

async function run(benches: readonly BenchDef[], args: BenchArgs): Promise<void> {
  const all = [...benches, ...INTERNAL];
  const internal = new Set(INTERNAL.map((b) => b.name));
  const known = all.map((b) => b.name);
  if (args.compare !== null) {
    stopOnSignals();
    await compareMode(known, internal, args.compare, args);
    return;
  }
  const names = selectNames(known, internal, args.names);
  if (args.once) {
    runOnce(
      all.filter((b) => names.includes(b.name)),
      args.json,
    );
    return;
  }
  stopOnSignals();
  await repeatMode(all, names, args);
}

/** Runs the command line `argv`; the exit code is set on process.exitCode. */
export async function benchMain(benches: readonly BenchDef[], argv: string[]): Promise<void> {
  try {
    const args = parseBenchArgs(argv);
    if (args.help) {
      process.stdout.write(USAGE);
      return;
    }
    await run(benches, args);
  } catch (e) {
    endProgress();
    if (e instanceof BenchUsageError) {
      log(`bench: ${e.message}`);
      process.exitCode = EXIT_USAGE;
    } else if (e instanceof BenchChildError) {
      log(`bench: ${e.message}`);
      process.exitCode = EXIT_INTERNAL;
    } else {
      log(`bench: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      process.exitCode = EXIT_INTERNAL;
    }
  }
}
