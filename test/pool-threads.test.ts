/**
 * The worker threads a command starts before it loads (api/pool-threads.ts, cli/early-threads.ts),
 * built (from the sources there is no worker file): the first pool of as many threads takes them,
 * a pool of another number gets new ones, and the early ones are ended.
 */

import { describe, expect, it } from "vitest";
import type * as PoolModule from "../src/api/pool.js";
import type * as ThreadsModule from "../src/api/pool-threads.js";
import type * as EarlyModule from "../src/cli/early-threads.js";

const dist = (path: string) => new URL(`../dist/${path}`, import.meta.url).href;
const threads = (await import(dist("api/pool-threads.js"))) as typeof ThreadsModule;
const { RunPool } = (await import(dist("api/pool.js"))) as typeof PoolModule;
const { guessJobs } = (await import(dist("cli/early-threads.js"))) as typeof EarlyModule;

describe("worker threads started early", () => {
  it("are the ones the first pool of as many threads takes", async () => {
    const early = threads.startThreadsEarly(1);
    expect(early).not.toBeNull();
    const taken = threads.takeThreads(1);
    expect(taken).toBe(early);
    // Taken once: the next pool starts its own.
    const next = threads.takeThreads(1);
    expect(next).not.toBe(early);
    await Promise.all([taken.destroy(), next.destroy()]);
  });

  it("are ended and replaced when a pool wants another number", async () => {
    const early = threads.startThreadsEarly(1);
    expect(early).not.toBeNull();
    const taken = threads.takeThreads(2);
    expect(taken).not.toBe(early);
    expect(taken.options.maxThreads).toBe(2);
    await taken.destroy();
    // The early ones were ended (piscina lets a thread go as soon as it is told to end).
    expect(early?.threads.length).toBe(0);
  });

  it("serve a RunPool, which runs in them", async () => {
    threads.startThreadsEarly(1);
    const pool = new RunPool(2);
    try {
      expect(pool.threaded).toBe(true);
    } finally {
      await pool.close();
    }
    // The pool took them: none are left waiting.
    expect(threads.startThreadsEarly(1)).not.toBeNull();
    await threads.dropEarlyThreads();
  });

  it("are not started twice, and dropEarlyThreads ends those no pool took", async () => {
    const early = threads.startThreadsEarly(1);
    expect(threads.startThreadsEarly(1)).toBeNull();
    await threads.dropEarlyThreads();
    expect(early?.threads.length).toBe(0);
    expect(threads.takeThreads(1)).not.toBe(early);
  });
});

describe("the --jobs guess made before commander reads the arguments", () => {
  it("reads --jobs N and --jobs=N, the last one winning, up to --", () => {
    expect(guessJobs(["grid.yaml", "--jobs", "3"])).toBe(3);
    expect(guessJobs(["--jobs=4", "grid.yaml"])).toBe(4);
    expect(guessJobs(["--jobs", "2", "--jobs", "5"])).toBe(5);
    expect(guessJobs(["--", "--jobs", "3"])).toBe(threads.defaultJobs());
  });

  it("is the default with no --jobs, and null for what it cannot read", () => {
    expect(guessJobs(["grid.yaml"])).toBe(threads.defaultJobs());
    expect(guessJobs(["--jobs", "two"])).toBeNull();
    expect(guessJobs(["--jobs"])).toBeNull();
  });
});
