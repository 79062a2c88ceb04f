/**
 * The entry point of a pool's worker thread (pool.ts): a batch of tasks in, with the counter
 * the pool's threads take the next task from and a port for the outcomes, each posted as its run
 * ends. It is loaded by file name, as dist/api/run-worker.js.
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

/** What a worker is given: every task of a batch, the shared next-task counter, the port. */
export interface WorkerBatch {
  tasks: RunTask[];
  next: Int32Array;
  /** A worker_threads MessagePort (its one method used here: this file imports no Node module). */
  port: { postMessage(message: WorkerMessage): void };
}

/** A task's reply: its outcome, or what it threw (a bug; a structured clone of the Error). */
export interface WorkerMessage {
  index: number;
  reply: WorkerReply | { error: unknown };
}

/** Runs the batch's tasks this worker takes, until none is left. */
export default function run({ tasks, next, port }: WorkerBatch): void {
  // The port stays open: the pool closes it once every task's reply has come (a close here
  // could overtake the last replies).
  for (let index = Atomics.add(next, 0, 1); index < tasks.length; index = Atomics.add(next, 0, 1)) {
    let reply: WorkerMessage["reply"];
    try {
      reply = runOne(tasks[index]);
    } catch (e) {
      reply = { error: e };
    }
    port.postMessage({ index, reply } satisfies WorkerMessage);
  }
}

function runOne(task: RunTask): WorkerReply {
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
