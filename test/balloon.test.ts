/**
 * The balloon and host swapping: the driver reaches its target when the guest has free memory
 * and stops (backing off) when it has not; every frame it gives is free on the host and the
 * accounting balances; data survives inflate, deflate, swap-out and swap-in; touching a
 * ballooned page does what the domain's policy says; the automatic policy keeps its floor and
 * converges when the pressure ends; the host pager never takes from the domain in flight.
 */

import { describe, expect, test } from "vitest";
import { Simulation } from "../src/api/simulation.js";
import type { DomainCounterName } from "../src/api/types.js";
import { minFreePages } from "../src/guest/balloon.js";
import { directMap, USER_HEAP_BASE } from "../src/guest/layout.js";
import type { Process } from "../src/guest/process.js";
import { KIND_SUP_READ } from "../src/hw/access.js";
import { HostMemory } from "../src/hw/memory.js";
import {
  C_BALLOON_BACKOFFS,
  C_BALLOON_TOUCH_POPULATE,
  C_GUEST_OOM,
  C_HOST_SWAP_INS,
  C_HOST_SWAP_OUTS,
  newCounters,
} from "../src/metrics/counters.js";
import { AutoBalloonPolicy, setTarget, targetOf } from "../src/vmm/balloon/policy.js";
import { DomainCrash } from "../src/vmm/crash.js";
import { HostFrames } from "../src/vmm/frames.js";
import { checkHostFrames } from "../src/vmm/frames-check.js";
import { P2M_INVALID, P2M_RAM_PAGED, P2M_RAM_RW, P2m } from "../src/vmm/p2m.js";
import { Xenstore, XS_MEMINFO_FREE } from "../src/vmm/xenstore.js";
import { builtinScenario } from "../src/workload/scenario/builtin.js";
import { parseScenario } from "../src/workload/scenario/parse.js";
import { bootGuest, type TestGuest } from "./support/guest.js";
import { shadowOf } from "./support/modes.js";

function shadowGuest(memMiB = 16): TestGuest {
  return bootGuest(memMiB, { mode: "shadow" });
}

/** A process whose heap of `pages` pages is written, page by page, with distinct values. */
function fill(g: TestGuest, pages: number): Process {
  const p = g.kernel.spawn("filler", { code: 4096, heap: pages * 4096, hugeHeap: false });
  if (p === null) throw new Error("cannot spawn");
  for (let i = 0; i < pages; i++)
    expect(g.write(p, USER_HEAP_BASE + i * 4096, 1000 + i)).toBe(true);
  return p;
}

function readsBack(g: TestGuest, p: Process, pages: number): void {
  for (let i = 0; i < pages; i++) expect(g.read(p, USER_HEAP_BASE + i * 4096)).toBe(1000 + i);
}

describe("the balloon driver", () => {
  test("reaches its target when the guest has free memory, and every frame it gives is free on the host", () => {
    const g = shadowGuest();
    const p = fill(g, 300);
    // A process that touched memory and exited: free in the guest, still backed on the host.
    g.kernel.exit(fill(g, 500));
    const host = g.host!;
    const vmm = g.vmm!;
    const usedBefore = host.frames.used;
    const populatedBefore = vmm.p2m.populated;
    const target = 2048;
    g.setBalloonTarget(target);
    const balloon = g.kernel.balloon!;
    expect(balloon.currentPages).toBe(target);
    expect(vmm.p2m.ballooned).toBe(g.kernel.memFrames - target);
    // The host got back exactly the frames that were behind the ballooned gfns.
    const given = populatedBefore - vmm.p2m.populated;
    expect(given).toBeGreaterThanOrEqual(500);
    expect(host.frames.used).toBe(usedBefore - given);
    expect(checkHostFrames(host.frames)).toBeNull();
    g.check();
    readsBack(g, p, 300);
    // Deflate all the way back.
    g.setBalloonTarget(g.kernel.memFrames);
    expect(balloon.count).toBe(0);
    expect(vmm.p2m.ballooned).toBe(0);
    g.check();
    readsBack(g, p, 300);
  });

  test("stops at what it can get when the guest has none to give, backs off, and takes no used page", () => {
    const g = shadowGuest();
    const pages = 3200;
    const p = fill(g, pages);
    const free = g.kernel.frames.freeCount;
    const min = minFreePages(g.kernel.memFrames);
    g.setBalloonTarget(1024);
    const balloon = g.kernel.balloon!;
    expect(balloon.count).toBe(free - min);
    expect(g.kernel.frames.freeCount).toBe(min);
    expect(g.counters[C_BALLOON_BACKOFFS]).toBe(1);
    g.check();
    readsBack(g, p, pages);
    // Retries double their delay while nothing can be had.
    const first = balloon.nextRun;
    balloon.poll(first);
    const second = balloon.nextRun;
    balloon.poll(second);
    expect(second - first).toBe(20);
    expect(balloon.nextRun - second).toBe(40);
    expect(g.counters[C_BALLOON_BACKOFFS]).toBe(3);
    // When the process exits, the balloon takes what it left.
    g.kernel.exit(p);
    balloon.poll(balloon.nextRun);
    expect(balloon.currentPages).toBe(1024);
    g.check();
  });

  test("a guest pushed below what its processes use kills a process rather than lose data", () => {
    const g = shadowGuest();
    const a = fill(g, 1500);
    g.setBalloonTarget(1024); // far below what the guest already uses
    const b = g.kernel.spawn("b", { code: 4096, heap: 2000 * 4096, hugeHeap: false })!;
    let alive = true;
    for (let i = 0; i < 2000 && alive; i++) alive = g.write(b, USER_HEAP_BASE + i * 4096, i);
    expect(g.counters[C_GUEST_OOM]).toBeGreaterThan(0);
    g.check();
    // The OOM killer chose the largest process; whoever survived reads its data back.
    if (a.alive) readsBack(g, a, 1500);
  });
});

describe("touching a ballooned page", () => {
  function ballooned(touch: "populate" | "mmio") {
    const g = shadowGuest();
    g.vmm!.p2m.touchPolicy = touch;
    g.setBalloonTarget(2048);
    const balloon = g.kernel.balloon!;
    let gfn = -1;
    for (let i = 0; i < balloon.inBalloon.length && gfn < 0; i++) {
      if (balloon.inBalloon[i] === 1 && g.vmm!.p2m.type[i] === P2M_INVALID) gfn = i;
    }
    expect(gfn).toBeGreaterThanOrEqual(0);
    return { g, gfn };
  }

  test('"populate" gives it a new zeroed page', () => {
    const { g, gfn } = ballooned("populate");
    const p2m = g.vmm!.p2m;
    const before = p2m.ballooned;
    // A kernel read through the direct map, as a buggy driver or a crash dump would make.
    expect(g.cpu.access(directMap(gfn) + 64, KIND_SUP_READ, 0)).toBeGreaterThanOrEqual(0);
    expect(g.cpu.readValue).toBe(0);
    expect(p2m.type[gfn]).toBe(P2M_RAM_RW);
    expect(p2m.ballooned).toBe(before - 1);
    expect(g.counters[C_BALLOON_TOUCH_POPULATE]).toBe(1);
    expect(checkHostFrames(g.host!.frames)).toBeNull();
  });

  test('"mmio" crashes the domain: the page is not RAM any more', () => {
    const { g, gfn } = ballooned("mmio");
    expect(() => g.cpu.access(directMap(gfn), KIND_SUP_READ, 0)).toThrow(DomainCrash);
    expect(() => g.cpu.access(directMap(gfn), KIND_SUP_READ, 0)).toThrow(/ballooned out/);
  });
});

describe("host swapping", () => {
  test("a swapped page reads back intact, and costs a swap-in", () => {
    const g = shadowGuest();
    const p = fill(g, 200);
    const vmm = g.vmm!;
    const swapped = g.swapOut(150);
    expect(swapped).toBe(150);
    expect(vmm.p2m.swappedOut).toBe(150);
    expect(g.counters[C_HOST_SWAP_OUTS]).toBe(150);
    let paged = 0;
    for (let gfn = 0; gfn < vmm.p2m.gfns; gfn++) if (vmm.p2m.type[gfn] === P2M_RAM_PAGED) paged++;
    expect(paged).toBe(150);
    g.check();
    readsBack(g, p, 200);
    expect(g.counters[C_HOST_SWAP_INS]).toBeGreaterThan(0);
    expect(g.counters[C_HOST_SWAP_INS]).toBeLessThanOrEqual(150);
    expect(checkHostFrames(g.host!.frames)).toBeNull();
  });

  test("never swaps out a page table the VMM shadows", () => {
    const g = shadowGuest();
    fill(g, 100);
    const vmm = g.vmm!;
    g.swapOut(100_000); // everything it may take
    for (let gfn = 0; gfn < vmm.p2m.gfns; gfn++) {
      if (shadowOf(vmm).tables.isShadowedTable(gfn))
        expect(vmm.p2m.mfn[gfn]).toBeGreaterThanOrEqual(0);
    }
    g.check();
  });
});

describe("the automatic policy (oVirt MOM's rules)", () => {
  function domains(n: number, gfns: number, floorPages: number) {
    const mem = new HostMemory(n * gfns + 4096);
    const frames = new HostFrames(mem);
    return Array.from({ length: n }, (_, id) => {
      const d = {
        p2m: new P2m(id, gfns, frames, newCounters()),
        xenstore: new Xenstore(),
        floorPages,
        schedule: [],
      };
      setTarget(d, gfns);
      return d;
    });
  }
  const options = {
    interval: 1,
    pressureThreshold: 0.2,
    pressureCritical: 0.05,
    minGuestFree: 0.2,
    maxChange: 0.05,
    minChange: 0.0025,
  };

  test("shrinks by at most 5% a step under pressure, never below the floor", () => {
    const ds = domains(2, 10_000, 6_000);
    const policy = new AutoBalloonPolicy(ds, options);
    for (let step = 0; step < 40; step++) {
      for (const d of ds) {
        // The guest gives what it is asked (as its driver would) and reports most of it free.
        d.p2m.ballooned = d.p2m.gfns - targetOf(d);
        d.xenstore.write(XS_MEMINFO_FREE, (targetOf(d) - 1000) * 4);
      }
      const before = ds.map(targetOf);
      policy.run(0.1); // 10% of the host free: under pressure
      ds.forEach((d, i) => {
        expect(targetOf(d)).toBeGreaterThanOrEqual(6_000);
        expect(targetOf(d)).toBeGreaterThanOrEqual(Math.floor(before[i] * 0.95));
        expect(targetOf(d)).toBeLessThanOrEqual(before[i]);
      });
    }
    for (const d of ds) expect(targetOf(d)).toBe(6_000);
  });

  test("grows the guests back to their full size when the pressure ends", () => {
    const ds = domains(2, 10_000, 0);
    for (const d of ds) setTarget(d, 5_000);
    const policy = new AutoBalloonPolicy(ds, options);
    let steps = 0;
    while (ds.some((d) => targetOf(d) < d.p2m.gfns) && steps < 100) {
      for (const d of ds) {
        d.p2m.ballooned = d.p2m.gfns - targetOf(d);
        d.xenstore.write(XS_MEMINFO_FREE, 400);
      }
      policy.run(0.5);
      steps++;
    }
    for (const d of ds) expect(targetOf(d)).toBe(10_000);
    expect(steps).toBeLessThan(20); // at least 5% a step
  });

  test("leaves alone a guest that publishes no statistics (no driver)", () => {
    const [d] = domains(1, 10_000, 0);
    new AutoBalloonPolicy([d], options).run(0.01);
    expect(targetOf(d)).toBe(10_000);
  });
});

describe("the host pager", () => {
  test("a domain without a balloon driver is swapped to its target at once", () => {
    const g = shadowGuest();
    fill(g, 1000);
    const vmm = g.vmm!;
    vmm.xenstore.write("control/feature-balloon", 0);
    const host = g.host!;
    const populated = vmm.p2m.populated;
    setTarget(vmm, populated - 300);
    (host.swap.options as { enabled: boolean }).enabled = true;
    host.swap.enforceTargets();
    expect(vmm.p2m.populated).toBeLessThanOrEqual(populated - 300);
    expect(vmm.p2m.swappedOut).toBeGreaterThanOrEqual(300);
  });

  test("an emergency reclaim takes from the other domains, never from the one in flight", () => {
    const a = shadowGuest();
    fill(a, 200);
    const host = a.host!;
    (host.swap.options as { enabled: boolean }).enabled = true;
    const vmm = a.vmm!;
    expect(host.swap.reclaim(50, vmm)).toBe(false); // no other domain
    expect(vmm.p2m.swappedOut).toBe(0);
    expect(host.swap.reclaim(50, null)).toBe(true);
    expect(vmm.p2m.swappedOut).toBeGreaterThanOrEqual(50);
  });
});

describe("frame accounting", () => {
  test("balances through inflate, touch, swap and deflate", () => {
    const g = shadowGuest(32);
    const p = fill(g, 500);
    const host = g.host!;
    for (const step of [
      () => g.setBalloonTarget(4000),
      () => g.swapOut(200),
      () => readsBack(g, p, 500),
      () => g.setBalloonTarget(6000),
      () => g.swapOut(50),
      () => g.setBalloonTarget(g.kernel.memFrames),
    ]) {
      step();
      expect(checkHostFrames(host.frames)).toBeNull();
      const vmm = g.vmm!;
      // Every frame owned by the domain backs one of its gfns, and no more.
      expect(host.frames.countOwned(1, vmm.id)).toBe(vmm.p2m.populated);
      g.check();
    }
  });
});

describe("the overcommit pair (ESX's comparison)", () => {
  /** The built-in, scaled down by four so that it runs in a test's time. */
  function scaled(name: "overcommit" | "overcommit-swap") {
    const s = builtinScenario(name);
    s.host.memory /= 4;
    s.run.accesses = 600_000;
    for (const d of s.domains) {
      d.memory /= 4;
      d.balloon.target = d.memory;
      d.balloon.schedule = d.balloon.schedule.map((c) => ({ at: c.at / 4, target: c.target / 4 }));
      // A quarter of the slice CFS gives two processes (3 ms at skylake-sp's 2.1 GHz).
      expect(d.quantum.type).toBe("cfs");
      d.quantum = { type: "fixed", cycles: (3e-3 * 2.1e9) / 4 };
      for (const p of d.processes) {
        p.workingSet /= 4;
        p.lifetime /= 4;
      }
    }
    return new Simulation(s).run();
  }

  test("ballooning meets the targets with no swap-in; host swapping pays for its random choices", () => {
    const balloon = scaled("overcommit");
    const swap = scaled("overcommit-swap");
    const total = (r: typeof balloon, c: DomainCounterName) =>
      r.domains.reduce((sum, d) => sum + (d.counters[c] ?? 0), 0);
    expect(total(balloon, "balloon_inflated_pages")).toBeGreaterThan(0);
    expect(total(balloon, "host_swap_ins")).toBe(0);
    expect(total(swap, "balloon_inflated_pages")).toBe(0);
    expect(total(swap, "host_swap_outs")).toBeGreaterThan(0);
    expect(total(swap, "host_swap_ins")).toBeGreaterThan(0);
    expect(balloon.host.counters.cycles).toBeLessThan(swap.host.counters.cycles);
    // Both met every target: a ballooned guest holds no more frames than its target; the pager
    // swaps at turn boundaries, so a domain may have read a few pages back in since the last.
    for (const d of balloon.domains) {
      expect(d.counters.p2m_entries).toBeLessThanOrEqual(d.counters.balloon_target_pages!);
    }
    for (const d of swap.domains) {
      expect(d.counters.p2m_entries).toBeLessThanOrEqual(d.counters.balloon_target_pages! + 64);
    }
    // Each guest did the same work and read the same data either way.
    const seen = (r: typeof balloon) =>
      r.domains.map((d) => d.processes.map((p) => [p.accesses, p.read_hash]));
    expect(seen(balloon)).toEqual(seen(swap));
  });
});

describe("the automatic policy in a run", () => {
  test("shrinks the guests under host pressure, never below their floors, with every invariant holding", () => {
    const scenario = parseScenario(`${AUTO_SCENARIO}`, "auto.yaml");
    const report = new Simulation(scenario, { check: true }).run();
    expect(report.checks).toEqual({ enabled: true, violations: 0 });
    const floor = (24 * 2 ** 20) / 4096;
    let lowest = Number.POSITIVE_INFINITY;
    for (const sample of report.series) {
      for (const d of Object.values(sample.domains)) {
        lowest = Math.min(lowest, d.balloon_target_pages);
        // A ballooning guest holds no more host memory than its target allows, once it had the
        // time to get there; never more than its boot size.
        expect(d.host_frames).toBeLessThan(16384 + 1024);
      }
      expect(sample.host?.frames_free).toBeGreaterThanOrEqual(0);
    }
    expect(lowest).toBeLessThan(16384);
    expect(lowest).toBeGreaterThanOrEqual(floor);
    for (const d of report.domains) {
      expect(d.counters.balloon_inflated_pages).toBeGreaterThan(0);
      expect(d.overcommit).toEqual({
        balloon_driver: true,
        on_touch: "populate",
        target_policy: "auto",
        host_swap: true,
      });
    }
  });
});

const AUTO_SCENARIO = `name: auto2
seed: 5
run: { accesses: 100000, sample_every: 1000000 }
host:
  memory: 88MiB
  swap: { enabled: true }
  balloon_policy: { type: auto, interval: 2000000 }
domains:
  - name: a
    memory: 64MiB
    mode: shadow
    quantum: 0.02ms # a run of 0.1 s: the loader runs beside the database
    balloon: { floor: 24MiB }
    processes:
      - { name: db, kind: database, working_set: 12MiB }
      - { name: loader, kind: database, working_set: 32MiB, pattern: { type: sequential }, writes: 1, fetches: 0, lifetime: 8192 }
  - name: b
    memory: 64MiB
    mode: shadow
    quantum: 0.02ms # a run of 0.1 s: the loader runs beside the database
    balloon: { floor: 24MiB }
    processes:
      - { name: db, kind: database, working_set: 12MiB }
      - { name: loader, kind: database, working_set: 32MiB, pattern: { type: sequential }, writes: 1, fetches: 0, lifetime: 8192 }
`;

describe("timers across a warm-up", () => {
  test("the automatic policy keeps running after the counters restart", () => {
    const scenario = parseScenario(
      AUTO_SCENARIO.replace("run: { accesses: 100000,", "run: { accesses: 60000, warmup: 60000,"),
      "auto.yaml",
    );
    const sim = new Simulation(scenario);
    let runsAtWarmEnd = -1;
    while (sim.runTurn()) {
      if (runsAtWarmEnd < 0 && sim.accessesDone > 0 && sim.limit() === 60000 && sim.time() > 0) {
        runsAtWarmEnd = sim.host!.policyRuns;
      }
    }
    const interval = 2_000_000;
    // One run per interval of the measured part (the clock restarted from 0 at the warm-up's end).
    expect(sim.host!.policyRuns - runsAtWarmEnd).toBeGreaterThanOrEqual(
      Math.floor(sim.time() / interval) - 2,
    );
    expect(sim.report().host.counters.balloon_policy_runs).toBe(sim.host!.policyRuns);
  });
});

describe("a crashed domain", () => {
  test("gives all its memory back to the host", () => {
    const g = shadowGuest();
    fill(g, 300);
    g.vmm!.p2m.touchPolicy = "mmio";
    g.setBalloonTarget(2048);
    const host = g.host!;
    const gfn = g.kernel.balloon!.inBalloon.indexOf(1);
    expect(() => g.cpu.access(directMap(gfn), KIND_SUP_READ, 0)).toThrow(DomainCrash);
    const before = host.frames.used;
    host.destroyDomain(g.vmm!);
    expect(host.frames.used).toBe(0);
    expect(before).toBeGreaterThan(0);
    expect(checkHostFrames(host.frames)).toBeNull();
    expect(host.frames.countOwned(1, g.vmm!.id)).toBe(0);
  });

  test("in a run, is destroyed, and the other domain gets the memory it gave back", () => {
    const s = builtinScenario("overcommit");
    s.domains = s.domains.slice(0, 2);
    s.run.accesses = 120_000;
    s.host.memory = 96 * 2 ** 20;
    s.host.swap.enabled = false; // nothing to fall back on: a full host crashes the domain
    for (const d of s.domains) {
      d.memory = 64 * 2 ** 20;
      d.balloon.target = d.memory;
      d.balloon.schedule = [];
      d.processes = [
        { ...d.processes[0], workingSet: 48 * 2 ** 20, pattern: { type: "sequential" } },
      ];
    }
    const report = new Simulation(s, { check: true }).run();
    expect(report.checks.violations).toBe(0);
    const crashed = report.domains.filter((d) => d.crashed !== undefined);
    expect(crashed).toHaveLength(1);
    expect(crashed[0].crashed).toMatch(/no memory left/);
    expect(crashed[0].counters.host_frames).toBe(0);
    const survivor = report.domains.find((d) => d.crashed === undefined)!;
    expect(survivor.counters.user_accesses).toBe(60_000);
  });
});
