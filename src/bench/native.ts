/**
 * The native-mode benchmarks of the foundation issue. They drive a booted guest directly (the
 * same code path a run takes: the process driver's access with fault handling), so that the
 * figure is the simulator's speed on one access, not the scenario machinery's.
 */

import type { ProcessSpec } from "../api/types.js";
import { Kernel } from "../guest/kernel.js";
import { USER_HEAP_BASE } from "../guest/layout.js";
import { NativePagingOps } from "../guest/paging-ops.js";
import { Scheduler } from "../guest/scheduler.js";
import { KIND_USER_READ, KIND_USER_WRITE } from "../hw/access.js";
import { Vcpu } from "../hw/cpu.js";
import { HostMemory } from "../hw/memory.js";
import { newCounters } from "../metrics/counters.js";
import { ProcessDriver } from "../workload/driver.js";
import { Rng } from "../workload/rng.js";

export interface BenchResult {
  name: string;
  [figure: string]: number | string;
}

const PAGES = 2 ** 20;
const HOT_PAGES = 256;

/** A booted native guest with one process whose heap is `heapPages` pages. */
export function nativeGuest(memBytes: number, heapPages: number) {
  const frames = memBytes / 4096;
  const mem = new HostMemory(frames);
  const counters = newCounters();
  const cpu = new Vcpu(mem, counters);
  const kernel = new Kernel(cpu, new NativePagingOps(cpu), frames, counters, {
    gigaPages: false,
    pcid: false,
  });
  kernel.boot();
  const spec: ProcessSpec = {
    name: "bench",
    kind: "database",
    instances: 1,
    workingSet: heapPages * 4096,
    code: 4096,
    pattern: { type: "uniform" },
    writes: 0.25,
    fetches: 0,
    childAccesses: 1,
    jobs: 1,
    churnAccesses: 1,
    hugePages: false,
  };
  const proc = kernel.spawn("bench", ProcessDriver.image(spec, false));
  if (proc === null) throw new Error("bench: cannot start the process");
  const sched = new Scheduler(kernel, 1e18);
  sched.add(proc);
  sched.pick(0);
  const driver = new ProcessDriver(kernel, sched, spec, proc, new Rng(7), "database");
  return { mem, cpu, kernel, driver, counters };
}

/** Touch every page of the heap once so that the page tables are populated. */
function populate(driver: ProcessDriver, pages: number): void {
  for (let p = 0; p < pages; p++) driver.access(USER_HEAP_BASE + p * 4096, KIND_USER_WRITE, p);
}

/** Run `count` accesses: with probability `hotShare` to one of the hot pages, else uniform. */
function accessLoop(driver: ProcessDriver, rng: Rng, count: number, hotShare: number): void {
  for (let i = 0; i < count; i++) {
    const page =
      rng.nextFloat() < hotShare ? (rng.nextBelow(HOT_PAGES) * 4099) % PAGES : rng.nextBelow(PAGES);
    const kind = rng.nextFloat() < 0.25 ? KIND_USER_WRITE : KIND_USER_READ;
    driver.access(USER_HEAP_BASE + page * 4096 + ((i * 8) & 4095), kind, i);
  }
}

function timeIt(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}

export function benchNativeAccess(name: string, hotShare: number, count: number): BenchResult {
  const g = nativeGuest(4.5 * 2 ** 30, PAGES);
  populate(g.driver, PAGES);
  const rng = new Rng(11);
  accessLoop(g.driver, rng, count / 4, hotShare); // warm-up: JIT and TLB
  const missesBefore = g.counters[7];
  const seconds = timeIt(() => accessLoop(g.driver, rng, count, hotShare));
  const rss = process.memoryUsage().rss / 2 ** 20;
  return {
    name,
    accesses: count,
    seconds: round(seconds),
    accesses_per_s: Math.round(count / seconds),
    tlb_miss_rate: round((g.counters[7] - missesBefore) / count),
    rss_mib: Math.round(rss),
  };
}

export function benchNativeFault(): BenchResult {
  const pages = 2 ** 18; // 1 GiB
  const g = nativeGuest(1.5 * 2 ** 30, pages);
  // Warm-up on a separate guest so the JIT has seen the fault path.
  const w = nativeGuest(256 * 2 ** 20, 16384);
  populate(w.driver, 16384);
  const faultsBefore = g.kernel.counters[15];
  const seconds = timeIt(() => populate(g.driver, pages));
  const faults = g.kernel.counters[15] - faultsBefore;
  return {
    name: "native-fault",
    faults,
    seconds: round(seconds),
    faults_per_s: Math.round(faults / seconds),
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
