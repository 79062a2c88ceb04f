/**
 * The worker threads of a RunPool (pool.ts): piscina on the compiled worker file, and one set
 * that a command may start before it has loaded the rest of memvisor.
 *
 * Why start early: a new worker spends about 90 ms of its thread's CPU (node's start, then the
 * simulator's modules) before it can take a run. Started when the pool is made, that is after
 * the calling thread has loaded every module and read the experiment, so the worker begins its
 * runs that much after the calling thread, on a machine whose cores are then all busy. Started
 * first thing, it loads on the core that is idle while the calling thread loads, and both take
 * their first runs together. This file imports nothing of memvisor, so that starting it costs
 * the calling thread only piscina's own loading, which the pool needs anyway.
 */

import { availableParallelism } from "node:os";
import { Piscina } from "piscina";

/** The compiled worker beside this file (dist/api/run-worker.js). */
const WORKER = new URL("./run-worker.js", import.meta.url);

/** Whether this module is the compiled one, so that the worker file exists beside it. */
export const COMPILED = import.meta.url.endsWith(".js");

/** The default number of jobs: the cores this process may use. */
export function defaultJobs(): number {
  return availableParallelism();
}

function startThreads(count: number): Piscina {
  return new Piscina({
    filename: WORKER.href,
    minThreads: count,
    maxThreads: count,
    idleTimeout: 1000,
  });
}

/** The threads started early and not yet taken. */
let early: Piscina | null = null;

/**
 * Starts `count` worker threads now, for the first pool that wants as many (takeThreads); the
 * threads, or null when none were started (from the sources, or some are already waiting).
 */
export function startThreadsEarly(count: number): Piscina | null {
  if (!COMPILED || count < 1 || early !== null) return null;
  early = startThreads(count);
  return early;
}

/**
 * `count` worker threads: those started early if there are that many, else new ones (threads
 * started early in another number are ended: a guess that missed costs only their start).
 */
export function takeThreads(count: number): Piscina {
  const started = early;
  early = null;
  if (started !== null) {
    if (started.options.maxThreads === count) return started;
    void started.destroy();
  }
  return startThreads(count);
}

/** Ends the threads started early that no pool took (a command that stopped before its runs). */
export async function dropEarlyThreads(): Promise<void> {
  const started = early;
  early = null;
  await started?.destroy();
}
