/**
 * What bin/memvisor.js does before it loads the command line: `memvisor experiment` with more
 * than one job starts its pool's worker threads first, so that they load while this thread
 * does (api/pool-threads.ts says why). Only piscina is loaded here, not memvisor.
 *
 * The arguments are read here as a guess, before commander reads them: a guess that misses (an
 * option it cannot read, a resumed experiment with fewer runs left than jobs) costs only the
 * start of threads that the pool ends and replaces; what runs never depends on it.
 */

import { defaultJobs, dropEarlyThreads, startThreadsEarly } from "../api/pool-threads.js";

/** The --jobs value of these arguments, the default when absent, or null when unreadable. */
export function guessJobs(args: readonly string[]): number | null {
  let text: string | undefined;
  for (let i = 0; i < args.length && args[i] !== "--"; i++) {
    if (args[i] === "--jobs") text = args[++i] ?? "";
    else if (args[i].startsWith("--jobs=")) text = args[i].slice("--jobs=".length);
  }
  if (text === undefined) return defaultJobs();
  return /^[0-9]+$/.test(text) ? Number(text) : null;
}

/**
 * Starts the worker threads `memvisor ARGV` will want, when it is an experiment of more than one
 * job and no more jobs than cores (beyond that the pool is sized by the runs left, not guessed).
 */
export function startEarly(argv: readonly string[]): void {
  if (argv[0] !== "experiment" || argv[1] === "merge") return;
  const jobs = guessJobs(argv.slice(1));
  if (jobs !== null && jobs > 1 && jobs <= defaultJobs()) startThreadsEarly(jobs - 1);
}

export { dropEarlyThreads };
