/**
 * The access and fault benchmarks, natively, under shadow paging or PV. They drive a booted guest's
 * process directly (the same path a run takes: the process driver's access with fault
 * handling), so that a figure is the simulator's speed on one access, not the scenario
 * machinery's.
 */

import type { GuestClock } from "../guest/clock.js";
import { USER_HEAP_BASE } from "../guest/layout.js";
import { KIND_USER_READ, KIND_USER_WRITE } from "../hw/access.js";
import { AccessBuffer } from "../hw/access-buffer.js";
import {
  C_GUEST_PAGE_FAULTS,
  C_TLB_MISSES,
  C_VMEXITS_HYPERCALL,
  C_WALK_REFS,
} from "../metrics/counters.js";
import type { ProcessDriver } from "../workload/driver.js";
import { Rng } from "../workload/rng.js";
import { type BenchMode, type BenchOptions, benchGuest } from "./guest.js";

export interface BenchResult {
  name: string;
  [figure: string]: number | string;
}

export const PAGES = 2 ** 20;
const HOT_PAGES = 256;

/** Touch every page of the heap once so that the page tables are populated. */
export function populate(driver: ProcessDriver, pages: number): void {
  for (let p = 0; p < pages; p++) driver.access(USER_HEAP_BASE + p * 4096, KIND_USER_WRITE, p);
}

/** Accesses generated at a time: the stream is made between timed batches, as a C harness would. */
export const CHUNK = 65536;

/** Wall and CPU seconds spent in the timed parts of a loop. */
export interface Timed {
  seconds: number;
  cpuSeconds: number;
}

/**
 * Accesses done..done+n-1 of the benchmarks' stream into `buf` (emptied first): with probability
 * `hotShare` to one of the hot pages, else uniformly over PAGES; a quarter are writes.
 */
export function fillStream(
  buf: AccessBuffer,
  rng: Rng,
  done: number,
  n: number,
  hotShare: number,
): void {
  buf.length = 0;
  for (let k = 0; k < n; k++) {
    const i = done + k;
    const page =
      rng.nextFloat() < hotShare ? (rng.nextBelow(HOT_PAGES) * 4099) % PAGES : rng.nextBelow(PAGES);
    const kind = rng.nextFloat() < 0.25 ? KIND_USER_WRITE : KIND_USER_READ;
    buf.push(USER_HEAP_BASE + page * 4096 + ((i * 8) & 4095), kind, i);
  }
}

/**
 * The timed parts of a loop, wall and CPU seconds, summed: start() and stop() around each (the
 * stream is made outside them, as a C harness would).
 */
export class ChunkTimer implements Timed {
  seconds = 0;
  cpuSeconds = 0;
  private cpuBefore = process.cpuUsage();
  private t0 = 0;

  start(): void {
    this.cpuBefore = process.cpuUsage();
    this.t0 = performance.now();
  }

  stop(): void {
    this.seconds += (performance.now() - this.t0) / 1000;
    const cpu = process.cpuUsage(this.cpuBefore);
    this.cpuSeconds += (cpu.user + cpu.system) / 1e6;
  }
}

/** An access benchmark's rates over `count` accesses in the time `timed` measured. */
export function accessRates(name: string, count: number, timed: Timed): BenchResult {
  return {
    name,
    accesses: count,
    seconds: round(timed.seconds),
    accesses_per_s: Math.round(count / timed.seconds),
    // CPU time beside wall time: on a shared machine the wall clock also counts other work.
    cpu_seconds: round(timed.cpuSeconds),
    accesses_per_cpu_s: Math.round(count / timed.cpuSeconds),
  };
}

/**
 * Run `count` accesses of the stream (fillStream), a chunk at a time, each made outside the
 * timed part and run as one batch (ProcessDriver.accessBatch). With the timing model, each
 * access also moves the guest's clock, as the run loop does, so those run one at a time.
 */
function accessLoop(
  driver: ProcessDriver,
  clock: GuestClock | null,
  rng: Rng,
  count: number,
  hotShare: number,
): Timed {
  const pid = driver.proc.pid;
  const buf = new AccessBuffer(CHUNK);
  const timer = new ChunkTimer();
  for (let done = 0; done < count; done += buf.length) {
    const n = Math.min(CHUNK, count - done);
    fillStream(buf, rng, done, n, hotShare);
    timer.start();
    if (clock === null) {
      if (driver.accessBatch(buf, 0, n) !== n) throw new Error("bench: the process was killed");
    } else {
      for (let k = 0; k < n; k++) {
        const gva = buf.gva(k);
        driver.access(gva, buf.kind[k], buf.value[k]);
        clock.dataAccess(pid, gva);
      }
    }
    timer.stop();
  }
  return timer;
}

export function timeIt(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}

/**
 * Page tables populated for 2^20 pages (4 GiB); each access goes with probability `hotShare` to
 * one of 256 hot pages, else uniformly anywhere; a quarter are writes. Measured after warm-up.
 */
export function benchAccess(
  mode: BenchMode,
  name: string,
  hotShare: number,
  count: number,
  options: BenchOptions = {},
): BenchResult {
  const g = benchGuest(mode, 4.5 * 2 ** 30, PAGES, options);
  populate(g.driver, PAGES);
  const rng = new Rng(11);
  accessLoop(g.driver, g.clock, rng, count / 4, hotShare); // warm-up: JIT and TLB
  const missesBefore = g.counters[C_TLB_MISSES];
  const refsBefore = g.counters[C_WALK_REFS];
  const timed = accessLoop(g.driver, g.clock, rng, count, hotShare);
  const misses = g.counters[C_TLB_MISSES] - missesBefore;
  return {
    ...accessRates(name, count, timed),
    tlb_miss_rate: round(misses / count),
    walk_refs_per_miss: round((g.counters[C_WALK_REFS] - refsBefore) / Math.max(1, misses)),
    rss_mib: Math.round(process.memoryUsage().rss / 2 ** 20),
  };
}

/** A process touching a fresh 1 GiB region page by page: every touch a demand fault. */
export function benchFault(mode: BenchMode, name: string): BenchResult {
  const warm = benchGuest(mode, 256 * 2 ** 20, 16384);
  populate(warm.driver, 16384); // the JIT sees the fault path first
  const pages = 2 ** 18;
  const g = benchGuest(mode, 1.5 * 2 ** 30, pages);
  const before = g.counters[C_GUEST_PAGE_FAULTS];
  const cpuBefore = process.cpuUsage();
  const seconds = timeIt(() => populate(g.driver, pages));
  const cpu = process.cpuUsage(cpuBefore);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const faults = g.counters[C_GUEST_PAGE_FAULTS] - before;
  const result: BenchResult = {
    name,
    faults,
    seconds: round(seconds),
    faults_per_s: Math.round(faults / seconds),
    // CPU time beside wall time, as the access benchmarks give it.
    cpu_seconds: round(cpuSeconds),
    faults_per_cpu_s: Math.round(faults / cpuSeconds),
  };
  // PV: each demand fault's entry goes through mmu_update (and a new L1 through pin/flush).
  if (mode === "pv") result.hypercalls_per_fault = round(g.counters[C_VMEXITS_HYPERCALL] / faults);
  return result;
}

export function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
