/**
 * The benchmarks' command line: `[--json] [--repeat N] [--compare REF] [--once] [NAME...]`.
 * Parsing only; which names exist is decided by the caller, which knows both checkouts' lists.
 */

/** Exit codes, the memvisor command's (README, "Exit codes"): bad input. */
export const EXIT_USAGE = 2;
/** A benchmark's process failed: a bug in the checkout that ran it. */
export const EXIT_INTERNAL = 70;
/** Interrupted by SIGINT (Ctrl-C) or SIGTERM, as a shell reports a death by those signals. */
export const EXIT_SIGINT = 130;
export const EXIT_SIGTERM = 143;

/** A mistake in the command line or in what it names (a benchmark, a checkout): exit 2. */
export class BenchUsageError extends Error {
  override readonly name = "BenchUsageError";
}

/** Runs of each benchmark (pairs with --compare) when --repeat is not given. */
export const DEFAULT_REPEAT = 3;
/** More runs than this is a typing mistake, not a measurement. */
export const MAX_REPEAT = 1000;

export interface BenchArgs {
  json: boolean;
  /**
   * Each named benchmark once, all in this process, printed as every checkout prints them: the
   * interface the harness drives its children through (a checkout without the harness ignores
   * the flag and does the same).
   */
  once: boolean;
  /** Runs of each benchmark, each in its own process (with --compare: pairs). */
  repeat: number;
  /** Another checkout of memvisor to measure against, as given. */
  compare: string | null;
  names: string[];
  help: boolean;
}

export const USAGE = `usage: npm run bench -- [--json] [--repeat N] [--compare REF] [NAME...]
  --repeat N     run each benchmark N times (default ${DEFAULT_REPEAT}), each in a fresh process, and
                 print the median of each figure (and the main rate's min and max)
  --compare REF  REF is another checkout of memvisor: run its benchmark and this one's in turn
                 (REF, this, REF, this, ...: N pairs) and print the medians and this/REF
  --json         print one JSON object
  --once         run the named benchmarks once, in this process (what each child does)
`;

/** The value of an option given as `--opt VALUE` or `--opt=VALUE`; advances past it. */
function optionValue(argv: readonly string[], i: number, opt: string): [string, number] {
  const arg = argv[i];
  if (arg.startsWith(`${opt}=`)) return [arg.slice(opt.length + 1), i];
  const next = argv[i + 1];
  if (next === undefined || next.startsWith("--")) {
    throw new BenchUsageError(`${opt} needs a value`);
  }
  return [next, i + 1];
}

export function parseRepeat(text: string): number {
  if (!/^[0-9]+$/.test(text) || Number(text) < 1 || Number(text) > MAX_REPEAT) {
    throw new BenchUsageError(
      `--repeat: expected a whole number of runs from 1 to ${MAX_REPEAT}, got "${text}"`,
    );
  }
  return Number(text);
}

export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  const args: BenchArgs = {
    json: false,
    once: false,
    repeat: DEFAULT_REPEAT,
    compare: null,
    names: [],
    help: false,
  };
  let repeatGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--json") args.json = true;
    else if (arg === "--once") args.once = true;
    else if (arg === "--help" || arg === "-h") args.help = true;
    else if (arg === "--repeat" || arg.startsWith("--repeat=")) {
      const [value, at] = optionValue(argv, i, "--repeat");
      args.repeat = parseRepeat(value);
      repeatGiven = true;
      i = at;
    } else if (arg === "--compare" || arg.startsWith("--compare=")) {
      const [value, at] = optionValue(argv, i, "--compare");
      if (value === "") throw new BenchUsageError("--compare needs a checkout's folder");
      args.compare = value;
      i = at;
    } else if (arg.startsWith("-")) {
      throw new BenchUsageError(`unknown option ${arg}`);
    } else if (!args.names.includes(arg)) args.names.push(arg);
  }
  if (args.once && (repeatGiven || args.compare !== null)) {
    throw new BenchUsageError(
      "--once runs in this process: it takes neither --repeat nor --compare",
    );
  }
  return args;
}

/**
 * The names to run, in the list's order: `names`, or without any every benchmark not marked
 * internal. A name not in `known` is an error naming what there is.
 */
export function selectNames(
  known: readonly string[],
  internal: ReadonlySet<string>,
  names: readonly string[],
): string[] {
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0) throw unknownBenchmark(unknown, known);
  if (names.length === 0) return known.filter((n) => !internal.has(n));
  return known.filter((n) => names.includes(n));
}

/**
 * What `--compare` runs: `names`, or without any every benchmark either side has but the
 * internal ones, split into those both sides have (run) and those only one has (reported). A
 * name neither side has is an error naming what there is.
 */
export function compareNames(
  known: readonly string[],
  refKnown: readonly string[],
  internal: ReadonlySet<string>,
  names: readonly string[],
): { both: string[]; onlyThis: string[]; onlyRef: string[] } {
  const either = [...new Set([...known, ...refKnown])];
  const unknown = names.filter((n) => !either.includes(n));
  if (unknown.length > 0) throw unknownBenchmark(unknown, either);
  const asked = names.length > 0 ? names : either.filter((n) => !internal.has(n));
  return {
    both: asked.filter((n) => known.includes(n) && refKnown.includes(n)),
    onlyThis: asked.filter((n) => !refKnown.includes(n)),
    onlyRef: asked.filter((n) => !known.includes(n)),
  };
}

/**
 * Every checkout words this error the same way ("have" and the list): the harness reads another
 * checkout's benchmark names from it.
 */
export function unknownBenchmark(unknown: readonly string[], known: readonly string[]) {
  return new BenchUsageError(`unknown benchmark ${unknown.join(", ")}; have ${known.join(", ")}`);
}
