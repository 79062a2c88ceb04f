/**
 * The entry point of a pool's worker thread (pool.ts): a task in, its outcome out. It is loaded
 * by file name, as dist/api/run-worker.js.
 */

import { Trace } from "../config/trace.js";
import { type RunOutcome, type RunTask, runTask } from "./run-task.js";

export default function run(task: RunTask): RunOutcome {
  return runTask(reviveTraces(task));
}

/**
 * The task with its traces made Trace objects again: a structured clone keeps a class's fields
 * (the records' Uint32Array) but not its methods.
 */
function reviveTraces(task: RunTask): RunTask {
  for (const d of task.scenario.domains) {
    for (const p of d.processes) {
      const data = p.trace?.data as { words: Uint32Array; count: number } | null | undefined;
      if (p.trace && data && !(data instanceof Trace)) {
        p.trace.data = new Trace(data.words, data.count);
      }
    }
  }
  return task;
}
