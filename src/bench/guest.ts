/**
 * A booted guest with one process, natively, under shadow paging or PV, for benchmarks: they drive
 * its process directly (the same access path a run takes), so that a figure is the simulator's
 * speed on one access, not the scenario machinery's.
 */

import { nativePlatform, newGuestClock, type Platform, virtualPlatform } from "../api/platform.js";
import { CPU_PROFILES, DEFAULT_CPU } from "../config/cpu.js";
import { defaultBalloon, SCENARIO_DEFAULTS } from "../config/defaults.js";
import type { DomainSpec, HardwareSpec, ProcessSpec } from "../config/scenario.js";
import { Kernel } from "../guest/kernel.js";
import { Scheduler } from "../guest/scheduler.js";
import { CostModel } from "../metrics/cost.js";
import { newCounters } from "../metrics/counters.js";
import { Host } from "../vmm/host.js";
import { ProcessDriver } from "../workload/driver.js";
import { Rng } from "../workload/rng.js";

export type BenchMode = "native" | "shadow" | "hap" | "pv";

/**
 * What the benchmarks can switch on: the timing model (its data caches, instructions counted,
 * and the guest's clock with its own view of the caches, as a run keeps it).
 */
export interface BenchOptions {
  timing?: boolean;
  /** The page-contents model of data accesses (HostMemory.contents); default on, as in a run. */
  contents?: boolean;
}

export function benchGuest(
  mode: BenchMode,
  memBytes: number,
  heapPages: number,
  options: BenchOptions = {},
) {
  const frames = memBytes / 4096;
  const counters = newCounters();
  const domain: DomainSpec = {
    name: "bench",
    memory: memBytes,
    mode,
    quantum: { type: "fixed", cycles: 1e18 },
    processes: [],
    shadow: { pool: 0, unshadow: "early", prefetch: 0, writableSearch: "rmap", outOfSync: true },
    balloon: defaultBalloon(memBytes),
    osImage: SCENARIO_DEFAULTS.osImage,
  };
  const hardware: HardwareSpec = {
    tlb: { l1: { entries: 64, ways: 4 }, l2: { entries: 1536, ways: 12 } },
    pcid: false,
    gigaPages: false,
    dataCache: options.timing ?? false,
  };
  let host: Host | null = null;
  let platform: Platform;
  if (mode === "native") {
    platform = nativePlatform(domain, hardware, counters);
  } else {
    // RAM, the P2M's pages, the EPT's (or the shadow pool) and room to spare.
    host = new Host(frames + (3 * frames) / 512 + 8192);
    platform = virtualPlatform(host, domain, hardware, counters);
  }
  const { cpu, ops } = platform;
  cpu.mem.contents = options.contents ?? true;
  const kernel = new Kernel(cpu, ops, frames, counters, {
    gigaPages: false,
    pcid: false,
  });
  kernel.boot();
  const spec = benchProcess(heapPages * 4096, options.timing ? 2 : 0);
  const proc = kernel.spawn("bench", ProcessDriver.image(spec, false));
  if (proc === null) throw new Error("bench: cannot start the process");
  const sched = new Scheduler(kernel, { type: "fixed", cycles: 1e18 }, 1);
  sched.add(proc);
  sched.pick(0);
  const driver = new ProcessDriver(kernel, sched, spec, proc, new Rng(7), "database");
  const clock = options.timing
    ? newGuestClock(hardware, new CostModel(CPU_PROFILES[DEFAULT_CPU], {}, true))
    : null;
  return { cpu, kernel, driver, counters, host, sched, clock };
}

/** The benchmarks' process: a database of `workingSet` bytes (with the timing model, 2 instructions per access). */
export function benchProcess(workingSet: number, instructionsPerAccess = 0): ProcessSpec {
  return {
    name: "bench",
    kind: "database",
    instances: 1,
    workingSet,
    code: 4096,
    pattern: { type: "uniform" },
    writes: 0.25,
    fetches: 0,
    childAccesses: 1,
    jobs: 1,
    churnAccesses: 1,
    lifetime: 0,
    image: "bench",
    imageData: 0,
    hugePages: false,
    instructionsPerAccess,
    cpi: 1,
    trace: null,
  };
}
