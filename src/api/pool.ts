/**
 * Runs on every core: this thread and `jobs - 1` worker threads (piscina), each running whole
 * simulations (run-task.ts). A run is deterministic and shares nothing, so its report does not
 * depend on the thread that made it; callers keep their own order by awaiting tasks in the order
 * they made them.
 *
 * Tasks asked for in one turn of the event loop form a batch. Every worker gets the whole batch
 * at once (one structured clone: tasks that share a scenario share its copy) with a shared
 * counter, and this thread and the workers each take the next task from that counter until none
 * is left. So no thread waits for another to hand it work: this thread, busy with a run of its
 * own, cannot starve a worker, and the last runs go to whichever thread is free first. This
 * thread is a job rather than a dispatcher because a worker runs slower than it (each worker
 * warms its own JIT) and takes time to start, while this thread can begin at once.
 *
 * With one job, or when running from the TypeScript sources (tests: there is no compiled worker
 * file to load), every task runs in this thread. Between two of its runs this thread yields to
 * the event loop, where the workers' results, a signal and the callers' writes are handled: so
 * while it runs, those wait for its run to end.
 */

import { MessageChannel, type MessagePort, receiveMessageOnPort } from "node:worker_threads";
import type { Piscina } from "piscina";
import { TraceError } from "../workload/trace/lackey.js";
import { COMPILED, takeThreads } from "./pool-threads.js";
import { type RunOutcome, type RunTask, runTask } from "./run-task.js";
import type { WorkerBatch, WorkerMessage, WorkerReply } from "./run-worker.js";

export { defaultJobs } from "./pool-threads.js";

/** A task asked for and its promise's ends. */
interface Pending {
  task: RunTask;
  resolve: (outcome: RunOutcome) => void;
  reject: (e: unknown) => void;
  settled: boolean;
}

/** Tasks handed out together: the next to take is `next[0]`, shared with the workers. */
interface Batch {
  items: Pending[];
  next: Int32Array;
  unsettled: number;
  ports: MessagePort[];
}

export interface RunPoolOptions {
  /**
   * Whether this thread runs tasks beside the workers (default true). False leaves every task
   * to the workers (`jobs` of them): for callers whose thread must stay free, and for tests of
   * the worker's side.
   */
  inThisThread?: boolean;
}

export class RunPool {
  /** The worker threads; null when every task runs in this thread. */
  private readonly piscina: Piscina | null;
  /** Whether this thread takes tasks from the batches. */
  private readonly takes: boolean;
  /** The batch being gathered this turn of the event loop. */
  private gathering: Pending[] | null = null;
  /** The batches handed out and not yet all settled, oldest first. */
  private readonly batches: Batch[] = [];
  /** Whether this thread's loop over the batches is scheduled or running. */
  private looping = false;
  /** Closed: tasks not yet started are refused. */
  private closed = false;
  /** The tasks this thread has run (the others ran in workers). */
  ranHere = 0;

  constructor(
    readonly jobs: number,
    options: RunPoolOptions = {},
  ) {
    const here = options.inThisThread ?? true;
    const workers = COMPILED ? (here ? jobs - 1 : jobs) : 0;
    this.piscina = workers > 0 ? takeThreads(workers) : null;
    this.takes = here || this.piscina === null;
  }

  /** Whether tasks run in worker threads. */
  get threaded(): boolean {
    return this.piscina !== null;
  }

  run(task: RunTask): Promise<RunOutcome> {
    if (this.closed) return Promise.reject(new PoolClosedError());
    return new Promise<RunOutcome>((resolve, reject) => {
      if (this.gathering === null) {
        const items: Pending[] = [];
        this.gathering = items;
        queueMicrotask(() => {
          this.gathering = null;
          this.handOut(items);
        });
      }
      this.gathering.push({ task, resolve, reject, settled: false });
    });
  }

  /** Gives a batch to every worker and to this thread's loop. */
  private handOut(items: Pending[]): void {
    if (this.closed) {
      for (const p of items) p.reject(new PoolClosedError());
      return;
    }
    const batch: Batch = {
      items,
      next: new Int32Array(new SharedArrayBuffer(4)),
      unsettled: items.length,
      ports: [],
    };
    this.batches.push(batch);
    const piscina = this.piscina;
    if (piscina !== null) {
      const tasks = items.map((p) => p.task);
      for (let w = 0; w < piscina.options.maxThreads; w++) {
        const { port1, port2 } = new MessageChannel();
        batch.ports.push(port1);
        port1.on("message", (m: WorkerMessage) => this.settle(batch, m.index, m.reply));
        const work: WorkerBatch = { tasks, next: batch.next, port: port2 };
        // A worker that dies (not a task that throws: that is a reply) fails what is left.
        piscina.run(work, { transferList: [port2] }).catch((e: unknown) => {
          this.fail(batch, this.closed ? new PoolClosedError() : e);
        });
      }
    }
    if (this.takes && !this.looping) {
      this.looping = true;
      setImmediate(() => this.takeNext());
    }
  }

  /** This thread's loop: one task from the oldest batch with any left, then the event loop. */
  private takeNext(): void {
    while (this.batches.length > 0 && !this.closed) {
      const batch = this.batches.find((b) => Atomics.load(b.next, 0) < b.items.length);
      if (batch === undefined) break;
      const index = Atomics.add(batch.next, 0, 1);
      if (index >= batch.items.length) continue;
      let reply: WorkerReply | { error: unknown };
      this.ranHere++;
      try {
        reply = runTask(batch.items[index].task);
      } catch (e) {
        reply = { error: e };
      }
      this.settle(batch, index, reply);
      setImmediate(() => this.takeNext());
      return;
    }
    this.looping = false;
  }

  /** A task's reply, from this thread or a worker. */
  private settle(batch: Batch, index: number, reply: WorkerMessage["reply"]): void {
    const p = batch.items[index];
    if (p.settled) return;
    p.settled = true;
    if ("error" in reply) p.reject(reply.error);
    else if ("traceError" in reply) {
      const { file, line, problem } = reply.traceError;
      p.reject(new TraceError(file, line, problem));
    } else p.resolve(reply);
    if (--batch.unsettled === 0) this.retire(batch);
  }

  /** Every task of the batch not yet settled fails with `e`, and no more are taken. */
  private fail(batch: Batch, e: unknown): void {
    Atomics.store(batch.next, 0, batch.items.length);
    for (const p of batch.items) {
      if (p.settled) continue;
      p.settled = true;
      p.reject(e);
    }
    this.retire(batch);
  }

  private retire(batch: Batch): void {
    const at = this.batches.indexOf(batch);
    if (at >= 0) this.batches.splice(at, 1);
    for (const port of batch.ports) port.close();
  }

  /**
   * Ends the worker threads (those running a task are stopped); tasks not started are refused.
   * The replies the workers sent and this thread has not yet read (it was busy with a run) are
   * read first: those runs finished, and their outcomes count.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const batch of [...this.batches]) {
      for (const port of batch.ports) {
        for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
          const { index, reply } = m.message as WorkerMessage;
          this.settle(batch, index, reply);
        }
      }
      this.fail(batch, new PoolClosedError());
    }
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
