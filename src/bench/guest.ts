/**
 * A booted guest with one process, natively, under shadow paging or PV, for benchmarks: they drive
 * its process directly (the same access path a run takes), so that a figure is the simulator's
 * speed on one access, not the scenario machinery's.
 */

import { virtualPlatform } from "../api/platform.js";
import { defaultBalloon, SCENARIO_DEFAULTS } from "../config/defaults.js";
import type { DomainSpec, ProcessSpec } from "../config/scenario.js";
import { Kernel } from "../guest/kernel.js";
import { NativePagingOps, type PagingOps } from "../guest/paging-ops.js";
import { Scheduler } from "../guest/scheduler.js";
import { Vcpu } from "../hw/cpu.js";
import { HostMemory } from "../hw/memory.js";
import { newCounters } from "../metrics/counters.js";
import { Host } from "../vmm/host.js";
import { ProcessDriver } from "../workload/driver.js";
import { Rng } from "../workload/rng.js";

export type BenchMode = "native" | "shadow" | "hap" | "pv";

export function benchGuest(mode: BenchMode, memBytes: number, heapPages: number) {
  const frames = memBytes / 4096;
  const counters = newCounters();
  let cpu: Vcpu;
  let host: Host | null = null;
  let ops: PagingOps;
  if (mode === "native") {
    cpu = new Vcpu(new HostMemory(frames), counters);
    ops = new NativePagingOps(cpu);
  } else {
    const spec: DomainSpec = {
      name: "bench",
      memory: memBytes,
      mode,
      quantum: 1e9,
      processes: [],
      shadow: { pool: 0, unshadow: "early", prefetch: 0, writableSearch: "rmap" },
      balloon: defaultBalloon(memBytes),
      osImage: SCENARIO_DEFAULTS.osImage,
    };
    // RAM, the P2M's pages, the EPT's (or the shadow pool) and room to spare.
    host = new Host(frames + (3 * frames) / 512 + 8192);
    const platform = virtualPlatform(
      host,
      spec,
      {
        tlb: { l1: { entries: 64, ways: 4 }, l2: { entries: 1536, ways: 12 } },
        pcid: false,
        gigaPages: false,
      },
      counters,
    );
    cpu = platform.cpu;
    ops = platform.ops;
  }
  const kernel = new Kernel(cpu, ops, frames, counters, {
    gigaPages: false,
    pcid: false,
  });
  kernel.boot();
  const spec = benchProcess(heapPages * 4096);
  const proc = kernel.spawn("bench", ProcessDriver.image(spec, false));
  if (proc === null) throw new Error("bench: cannot start the process");
  const sched = new Scheduler(kernel, 1e18);
  sched.add(proc);
  sched.pick(0);
  const driver = new ProcessDriver(kernel, sched, spec, proc, new Rng(7), "database");
  return { cpu, kernel, driver, counters, host, sched };
}

export function benchProcess(workingSet: number): ProcessSpec {
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
    trace: null,
  };
}
