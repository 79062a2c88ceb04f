/**
 * The entry point of a pool's worker thread (pool.ts): a task in, its outcome out. It is loaded
 * by file name, as dist/api/run-worker.js.
 */

import { type RunOutcome, type RunTask, runTask } from "./run-task.js";

export default function run(task: RunTask): RunOutcome {
  return runTask(task);
}
