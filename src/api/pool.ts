/**
 * Runs on every core: a pool of worker threads (piscina), each running whole simulations
 * (run-task.ts). A run is deterministic and shares nothing, so its report does not depend on
 * the thread that made it; callers keep their own order by awaiting tasks in the order they
 * made them. Node only.
 *
 * With one job, or when running from the TypeScript sources (tests: there is no compiled worker
 * file to load), tasks run in this thread, one at a time, with a pause for the event loop
 * between two (where a signal is heard).
 */

import { availableParallelism } from "node:os";
import { Piscina } from "piscina";
import { TraceError } from "../workload/trace/lackey.js";
import { type RunOutcome, type RunTask, runTask } from "./run-task.js";
import type { WorkerReply } from "./run-worker.js";

/** The compiled worker beside this file (dist/api/run-worker.js). */
const WORKER = new URL("./run-worker.js", import.meta.url);

/** Whether this module is the compiled one, so that the worker file exists beside it. */
const COMPILED = import.meta.url.endsWith(".js");

/** The default number of jobs: the cores this process may use. */
export function defaultJobs(): number {
  return availableParallelism();
}

export class RunPool {
  /** The worker threads; null when tasks run in this thread. */
  private readonly piscina: Piscina | null;
  /** In this thread: the task before, so that tasks run one at a time in order. */
  private previous: Promise<unknown> = Promise.resolve();
  /** Closed: tasks not yet started are refused. */
  private closed = false;

  constructor(readonly jobs: number) {
    this.piscina =
      jobs > 1 && COMPILED
        ? new Piscina({
            filename: WORKER.href,
            minThreads: jobs,
            maxThreads: jobs,
            idleTimeout: 1000,
          })
        : null;
  }

  /** Whether tasks run in worker threads. */
  get threaded(): boolean {
    return this.piscina !== null;
  }

  run(task: RunTask): Promise<RunOutcome> {
    if (this.piscina !== null) {
      // A task the pool was closed under fails with piscina's own error: say it was stopped.
      return (this.piscina.run(task) as Promise<WorkerReply>).then(
        (reply) => {
          if ("traceError" in reply) {
            const { file, line, problem } = reply.traceError;
            throw new TraceError(file, line, problem);
          }
          return reply;
        },
        (e: unknown) => {
          throw this.closed ? new PoolClosedError() : e;
        },
      );
    }
    const next = this.previous.then(
      () =>
        new Promise<RunOutcome>((resolve, reject) =>
          setImmediate(() => {
            if (this.closed) {
              reject(new PoolClosedError());
              return;
            }
            try {
              resolve(runTask(task));
            } catch (e) {
              reject(e);
            }
          }),
        ),
    );
    this.previous = next.catch(() => undefined);
    return next;
  }

  /** Ends the worker threads (those running a task are stopped); tasks not started are refused. */
  async close(): Promise<void> {
    this.closed = true;
    await this.piscina?.destroy();
  }
}

/** A task refused or stopped because the pool was closed before it finished. */
export class PoolClosedError extends Error {
  override readonly name = "PoolClosedError";
  constructor() {
    super("the pool was closed before the run finished");
  }
}

/** Runs every task on a pool of `jobs` and returns their outcomes in the tasks' order. */
export async function runAll(tasks: readonly RunTask[], jobs: number): Promise<RunOutcome[]> {
  const pool = new RunPool(Math.min(jobs, Math.max(1, tasks.length)));
  try {
    return await Promise.all(tasks.map((t) => pool.run(t)));
  } finally {
    await pool.close();
  }
}
