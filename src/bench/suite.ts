/**
 * The benchmarks' command line, given the list of benchmarks: in-process single runs
 * (`--once`), repeated runs in fresh processes (the default) or the comparison with another
 * checkout (`--compare REF`).
 */

import type { BenchResult } from "./access.js";
import {
  type BenchArgs,
  BenchUsageError,
  EXIT_INTERNAL,
  EXIT_SIGINT,
  EXIT_SIGTERM,
  EXIT_USAGE,
  parseBenchArgs,
  selectNames,
  USAGE,
  unknownBenchmark,
} from "./args.js";
import { commitOf, refCheckout, staleWarning, thisCheckout } from "./checkout.js";
import { BenchChildError, listBenchmarks, stopChildren } from "./child.js";
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

async function run(benches: readonly BenchDef[], args: BenchArgs): Promise<void> {
  const all = [...benches, ...INTERNAL];
  const internal = new Set(INTERNAL.map((b) => b.name));
  const known = all.map((b) => b.name);
  if (args.once) {
    const names = selectNames(known, internal, args.names);
    runOnce(
      all.filter((b) => names.includes(b.name)),
      args.json,
    );
    return;
  }
  // From here on children run: a signal ends them with the harness.
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
  const conditions = startConditions();
  const self = thisCheckout();
  if (args.compare === null) {
    const names = selectNames(known, internal, args.names);
    const stale = staleWarning(self);
    if (stale !== null) log(`bench: warning: ${stale}`);
    const report = {
      ...(await runRepeat(self, names, args.repeat, progress)),
      conditions: conditions(),
    };
    endProgress();
    const targets = new Map(all.map((b) => [b.name, b.target]));
    process.stdout.write(
      args.json
        ? `${JSON.stringify(repeatJson(report), null, 2)}\n`
        : formatRepeat(report, targets),
    );
    return;
  }
  const ref = refCheckout(args.compare, log);
  for (const c of [self, ref]) {
    const stale = staleWarning(c);
    if (stale !== null) log(`bench: warning: ${stale}`);
  }
  const refKnown = listBenchmarks(ref);
  const unknown = args.names.filter((n) => !known.includes(n) && !refKnown.includes(n));
  if (unknown.length > 0) {
    throw unknownBenchmark(unknown, [...new Set([...known, ...refKnown])]);
  }
  // By default every benchmark either side has, but the harness's own.
  const asked =
    args.names.length > 0
      ? args.names
      : [...new Set([...known, ...refKnown])].filter((n) => !internal.has(n));
  const names = {
    both: asked.filter((n) => known.includes(n) && refKnown.includes(n)),
    onlyThis: asked.filter((n) => !refKnown.includes(n)),
    onlyRef: asked.filter((n) => !known.includes(n)),
  };
  const report = {
    self: { path: self.root, commit: commitOf(self.root) },
    ref: { path: ref.root, commit: commitOf(ref.root) },
    ...(await runCompare(self, ref, names, args.repeat, progress)),
    conditions: conditions(),
  };
  endProgress();
  process.stdout.write(
    args.json ? `${JSON.stringify(compareJson(report), null, 2)}\n` : formatCompare(report),
  );
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
