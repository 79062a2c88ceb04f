/**
 * The pool of runs (api/pool.ts), built (dist/: from the sources there is no worker file and
 * every task runs in the calling thread): this thread and the workers share a batch through one
 * counter, and each task's outcome is the one a run in this thread gives, whoever ran it.
 */

import { describe, expect, it } from "vitest";
import { parseScenario } from "../src/api/index.js";
import type * as PoolModule from "../src/api/pool.js";
import { type RunOutcome, type RunTask, runTask } from "../src/api/run-task.js";

const built = new URL("../dist/api/pool.js", import.meta.url).href;
const { RunPool, PoolClosedError } = (await import(built)) as typeof PoolModule;

const scenario = parseScenario(
  `
run: { accesses: 3000 }
domains:
  - name: d
    memory: 32MiB
    processes:
      - { name: p, kind: database, working_set: 2MiB }
`,
  "pool.yaml",
);

const tasks: RunTask[] = [1, 2, 3, 4, 5, 6, 7, 8].map((seed) => ({
  scenario,
  options: { mode: seed % 2 === 0 ? "hap" : "native", seed },
}));

/** The report without the wall time, which differs from run to run. */
const reportOf = (o: RunOutcome) => o.report ?? o.notRun;

describe("the pool of runs", () => {
  const here = tasks.map((t) => reportOf(runTask(t)));

  it("runs a batch in this thread and a worker, each outcome the one this thread gives", async () => {
    const pool = new RunPool(2);
    try {
      expect(pool.threaded).toBe(true);
      const outcomes = await Promise.all(tasks.map((t) => pool.run(t)));
      expect(outcomes.map(reportOf)).toEqual(here);
      // This thread can start at once, before a worker has loaded: it takes tasks too.
      expect(pool.ranHere).toBeGreaterThan(0);
      // A second batch, asked for later, is handed out in its turn.
      const again = await Promise.all(tasks.slice(0, 3).map((t) => pool.run(t)));
      expect(again.map(reportOf)).toEqual(here.slice(0, 3));
    } finally {
      await pool.close();
    }
  });

  it("leaves every task to the workers when this thread is not to take any", async () => {
    const pool = new RunPool(2, { inThisThread: false });
    try {
      const outcomes = await Promise.all(tasks.map((t) => pool.run(t)));
      expect(outcomes.map(reportOf)).toEqual(here);
      expect(pool.ranHere).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it("fails only the task that threw, with its error, in a worker as in this thread", async () => {
    for (const inThisThread of [false, true]) {
      const pool = new RunPool(2, { inThisThread });
      try {
        const broken = { scenario: { ...scenario, domains: null }, options: {} } as never;
        const runs = [tasks[0], broken, tasks[1]].map((t) => pool.run(t));
        const settled = await Promise.allSettled(runs);
        expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
        // The TypeError of reading a scenario with no domains (cloned, from a worker).
        expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ name: "TypeError" });
        expect(reportOf((settled[2] as PromiseFulfilledResult<RunOutcome>).value)).toEqual(here[1]);
      } finally {
        await pool.close();
      }
    }
  });

  it("keeps, when closed, the outcomes the workers sent while this thread was busy", async () => {
    const pool = new RunPool(2, { inThisThread: false });
    const settled = Promise.allSettled(tasks.map((t) => pool.run(t)));
    await Promise.resolve(); // the batch is handed out
    // This thread stays busy (never back in the event loop) until a worker has taken a third
    // task: with two workers, one of them has finished a task and sent its outcome.
    const next = (pool as unknown as { batches: { next: Int32Array }[] }).batches[0].next;
    const nap = new Int32Array(new SharedArrayBuffer(4));
    for (let waited = 0; Atomics.load(next, 0) < 3 && waited < 30_000; waited += 50) {
      Atomics.wait(nap, 0, 0, 50);
    }
    await pool.close();
    const results = await settled;
    const done = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
    expect(done.length).toBeGreaterThan(0);
    for (const i of done) {
      expect(reportOf((results[i] as PromiseFulfilledResult<RunOutcome>).value)).toEqual(here[i]);
    }
    for (const r of results) {
      if (r.status === "rejected") expect(r.reason).toBeInstanceOf(PoolClosedError);
    }
  });

  it("refuses, once closed, the tasks not finished, and any asked for after", async () => {
    const pool = new RunPool(2, { inThisThread: false });
    const runs = tasks.map((t) => pool.run(t));
    const settled = Promise.allSettled(runs);
    await pool.close();
    const results = await settled;
    expect(results.some((r) => r.status === "rejected")).toBe(true);
    for (const r of results) {
      if (r.status === "rejected") expect(r.reason).toBeInstanceOf(PoolClosedError);
    }
    await expect(pool.run(tasks[0])).rejects.toBeInstanceOf(PoolClosedError);
  });
});
