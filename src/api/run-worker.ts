/**
 * The entry point of a pool's worker thread (pool.ts): a task in, its outcome out. It is loaded
 * by file name, as dist/api/run-worker.js.
 */

import { Trace } from "../config/trace.js";
import { TraceError } from "../workload/trace/lackey.js";
import { FileTrace } from "../workload/trace/stream.js";
import { type RunOutcome, type RunTask, runTask } from "./run-task.js";

/**
 * A run's outcome, or the TraceError that stopped it (a trace file changed or gone under the
 * run) as plain fields: a thrown error reaches the pool's thread as a plain Error, its class
 * lost, and the CLI would call it an internal error rather than name the file.
 */
export type WorkerReply =
  | RunOutcome
  | { traceError: { file: string; line: number; problem: string } };

export default function run(task: RunTask): WorkerReply {
  try {
    return runTask(reviveTraces(task));
  } catch (e) {
    if (!(e instanceof TraceError)) throw e;
    return { traceError: { file: e.file, line: e.line, problem: e.problem } };
  }
}

/**
 * The task with its traces made Trace and FileTrace objects again: a structured clone keeps a
 * class's fields (the records' Uint32Array, what a file's first reading found) but not its
 * methods.
 */
function reviveTraces(task: RunTask): RunTask {
  for (const d of task.scenario.domains) {
    for (const p of d.processes) {
      const data = p.trace?.data as { words?: Uint32Array; count: number } | null | undefined;
      if (!p.trace || !data || data instanceof Trace || data instanceof FileTrace) continue;
      p.trace.data = FileTrace.revive(data) ?? new Trace(data.words as Uint32Array, data.count);
    }
  }
  return task;
}
