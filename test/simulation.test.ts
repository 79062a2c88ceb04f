import { describe, expect, test } from "vitest";
import { MAX_SERIES_ROWS, MAX_SERIES_SAMPLES, Simulation } from "../src/api/simulation.js";
import { SERIES_COUNTERS } from "../src/api/types.js";
import { PTE_P, PTE_US, pteLo } from "../src/hw/pte.js";
import { BUILTIN_SCENARIOS, builtinScenario } from "../src/workload/scenario/builtin.js";
import { loadBuiltinScenario } from "../src/workload/scenario/file.js";
import { parseScenario } from "../src/workload/scenario/parse.js";
import { shadowOf } from "./support/modes.js";

const short = (_name: string, accesses = 30_000) => ({ accesses });

describe("simulation", () => {
  test("the same scenario and seed give the same report, to the counter", () => {
    const a = new Simulation(builtinScenario("mixed"), short("mixed")).run();
    const b = new Simulation(builtinScenario("mixed"), short("mixed")).run();
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    const c = new Simulation(builtinScenario("mixed"), { accesses: 30_000, seed: 43 }).run();
    expect(c.domains[0].counters.tlb_misses).not.toBe(a.domains[0].counters.tlb_misses);
  });

  test.each(BUILTIN_SCENARIOS.map((s) => s.name))(
    "built-in %s runs with every check passing",
    (name) => {
      const scenario = loadBuiltinScenario(name);
      const report = new Simulation(scenario, { accesses: 40_000, check: true }).run();
      expect(report.checks).toEqual({ enabled: true, violations: 0 });
      expect(report.host.counters.user_accesses).toBe(40_000);
      for (const d of report.domains) {
        const c = d.counters;
        expect(c.tlb_l1_hits + c.tlb_l2_hits + c.tlb_misses).toBe(c.accesses);
        // Natively a miss is one walk; under shadow paging a hidden fault walks again.
        if (d.mode === "native") expect(c.walks).toBe(c.tlb_misses);
        else if (d.mode === "shadow") expect(c.walks).toBe(c.tlb_misses + c.shadow_fault_fixed);
        else {
          // Under HAP a walk that ends in an EPT violation is walked again once it is fixed
          // (violations with paging off, at boot, walk nothing).
          expect(c.walks).toBeGreaterThanOrEqual(c.tlb_misses);
          expect(c.walks).toBeLessThanOrEqual(c.tlb_misses + c.vmexits_ept_violation);
        }
        // Process totals count the warm-up too.
        if (scenario.run.warmup === 0) {
          expect(c.user_accesses).toBe(d.processes.reduce((s, p) => s + p.accesses, 0));
        }
        expect(d.cycles.total).toBeCloseTo(
          Object.values(d.cycles.by_event).reduce((s, x) => s + x, 0),
          3,
        );
      }
    },
  );

  test("the cost model is the counters priced: overriding a cost changes cycles only", () => {
    const base = builtinScenario("tlb-thrash");
    const a = new Simulation(base, { accesses: 20_000 }).run();
    const b = new Simulation({ ...base, costs: { walk_ref: 200 } }, { accesses: 20_000 }).run();
    const ca = a.domains[0];
    const cb = b.domains[0];
    expect(cb.counters).toEqual(ca.counters);
    expect(cb.cycles.by_event.walk_ref).toBe(ca.counters.walk_refs * 200);
    // With the data caches modelled a walk reference is priced by its cache level; walk_ref,
    // set here, comes on top.
    const before = ca.cycles.by_event.walk_ref ?? 0;
    expect(cb.cycles.total - ca.cycles.total).toBe(ca.counters.walk_refs * 200 - before);
  });

  test("a build storm forks, execs and exits, and gives back its memory", () => {
    // Short children (the built-in's live for 1.4 million accesses), so that many come and go.
    const storm = parseScenario(
      `domains:
  - name: builder
    memory: 256MiB
    quantum: 0.1ms
    processes:
      - { name: make, kind: build, jobs: 4, working_set: 1MiB, child_accesses: 5000 }
`,
      "storm.yaml",
    );
    const r = new Simulation(storm, { accesses: 60_000, check: true }).run();
    const c = r.domains[0].counters;
    expect(c.forks).toBeGreaterThan(3);
    expect(c.exits).toBeGreaterThan(0);
    // make's own exec, then one for each child when it first runs; those forked last may not
    // have run when the run ends.
    expect(c.execs).toBeLessThanOrEqual(c.forks + 1);
    expect(c.execs).toBeGreaterThanOrEqual(c.forks + 1 - 4);
    const make = r.domains[0].processes[0];
    expect(make.started).toBe(c.forks + 1);
    expect(r.checks.violations).toBe(0);
  });

  test("time series are sampled on simulated time", () => {
    const scenario = { ...builtinScenario("database") };
    scenario.run = { ...scenario.run, sampleEvery: 2_000_000 };
    const r = new Simulation(scenario, { accesses: 50_000 }).run();
    expect(r.series.length).toBeGreaterThan(3);
    for (let i = 1; i < r.series.length; i++) {
      expect(r.series[i].time).toBeGreaterThan(r.series[i - 1].time);
      const row = r.series[i].domains[scenario.domains[0].name];
      expect(row.user_accesses).toBeGreaterThanOrEqual(
        r.series[i - 1].domains[scenario.domains[0].name].user_accesses,
      );
    }
    expect(r.series[r.series.length - 1].domains[scenario.domains[0].name].user_accesses).toBe(
      50_000,
    );
  });

  test("a series row is what the report says of the series counters, in every mode", () => {
    for (const name of ["overcommit", "sharing", "two-domains", "build"]) {
      for (const mode of ["native", "shadow", "hap", "pv"] as const) {
        if (name.startsWith("overcommit") && mode === "pv") continue; // pv cannot boot on its small host
        const sim = new Simulation(builtinScenario(name), { accesses: 30_000, mode });
        for (let turn = 0; !sim.done && turn < 40; turn++) {
          sim.runTurn();
          for (const d of sim.domains) {
            const counters = d.report().counters as Record<string, number | undefined>;
            const want = { cycles: d.time() } as Record<string, number>;
            for (const c of SERIES_COUNTERS) want[c] = counters[c] ?? 0;
            expect(d.seriesRow(), `${name} ${mode} ${d.spec.name} turn ${turn}`).toEqual(want);
          }
        }
      }
    }
  });

  test("a run of many domains keeps fewer samples: the series holds at most MAX_SERIES_ROWS rows", () => {
    // 128 small domains; a scanner waking every 400 cycles cuts the turns short, so that the run
    // would sample far more often than 2,048 times (MAX_SERIES_ROWS / 128).
    const base = builtinScenario("sharing");
    const vm = base.domains[0];
    const scenario = {
      ...base,
      host: { ...base.host, sharing: { ...base.host.sharing, sleep: 400 } },
      domains: Array.from({ length: 128 }, (_, i) => ({
        ...vm,
        name: `d${i}`,
        memory: 8 * 2 ** 20,
        processes: [{ ...vm.processes[0], code: 2 ** 20, workingSet: 2 ** 20 }],
      })),
      run: { ...base.run, sampleEvery: 100 },
    };
    const r = new Simulation(scenario, { accesses: 38_400 }).run();
    expect(r.host.counters.cycles / 400).toBeGreaterThan(2 * (MAX_SERIES_ROWS / 128));
    expect(r.series.length * 128).toBeLessThanOrEqual(MAX_SERIES_ROWS);
    expect(r.series.length * 128).toBeGreaterThan(MAX_SERIES_ROWS / 2);
  });

  test("a long run's time series stays bounded: thinned by half, its interval doubled", () => {
    // A scanner waking every 400 cycles cuts the turns short, so that the run samples often.
    const scenario = { ...builtinScenario("sharing") };
    scenario.domains = scenario.domains.slice(0, 1);
    scenario.host = { ...scenario.host, sharing: { ...scenario.host.sharing, sleep: 400 } };
    scenario.run = { ...scenario.run, sampleEvery: 100 };
    const r = new Simulation(scenario, { accesses: 100_000 }).run();
    expect(r.series.length).toBeLessThanOrEqual(MAX_SERIES_SAMPLES);
    // The scanner's wake-ups alone cut the run into more turns than the series may hold.
    expect(r.host.counters.cycles / 400).toBeGreaterThan(2 * MAX_SERIES_SAMPLES);
    expect(r.series.length).toBeGreaterThan(MAX_SERIES_SAMPLES / 2);
    // Thinned at least once: the samples are further apart than sample_every.
    const gaps = r.series.slice(1).map((x, i) => x.time - r.series[i].time);
    expect(Math.min(...gaps)).toBeGreaterThan(100);
    for (const g of gaps) expect(g).toBeGreaterThan(0);
    const name = scenario.domains[0].name;
    expect(r.series[r.series.length - 1].domains[name].user_accesses).toBe(100_000);
  });

  test("two domains share the CPU by turns and stay apart", () => {
    const r = new Simulation(builtinScenario("two-domains"), {
      accesses: 100_000,
      check: true,
    }).run();
    expect(r.domains).toHaveLength(2);
    const [a, b] = r.domains;
    expect(a.counters.user_accesses + b.counters.user_accesses).toBe(100_000);
    expect(a.counters.user_accesses).toBeGreaterThan(20_000);
    expect(b.counters.user_accesses).toBeGreaterThan(20_000);
  });

  test.each([30_000, 200_000, 3_000_000])(
    "the sharing scanner wakes every %i cycles, shorter or longer than a domain's turn",
    (sleep) => {
      const scenario = builtinScenario("sharing");
      scenario.host.sharing = { ...scenario.host.sharing, sleep, pagesToScan: 64 };
      const sim = new Simulation(scenario, { accesses: 300_000 });
      const r = sim.run();
      const wakes = sim.host?.scannerWakeups ?? 0;
      // The first scan comes at time 0 and each sleep starts when a scan ends (as KSM's
      // thread sleeps): scans are due every `sleep` cycles of the domains' own time. A step of
      // a domain (an access and the faults it takes) is not interrupted, so a scan comes at
      // the end of the step in flight: with steps of a few thousand cycles, a sleep of 30,000
      // is late by a third on average. (Turns of 1M cycles gave at most one scan a turn.)
      const domainCycles = r.host.counters.cycles - (r.host.counters.sharing_cycles ?? 0);
      const due = 1 + Math.floor(domainCycles / sleep);
      expect(wakes).toBeLessThanOrEqual(due);
      expect(wakes).toBeGreaterThanOrEqual((sleep >= 200_000 ? 0.9 : 0.5) * due);
    },
  );

  test("a mode that cannot build the scenario's domains is refused with a clear error", () => {
    // PV domains are built whole: four 512 MiB guests do not fit the 1 GiB overcommit host.
    expect(() => new Simulation(builtinScenario("overcommit"), { mode: "pv" })).toThrow(
      /the host has no memory for the PV domain/,
    );
  });

  test("huge pages and PCIDs run clean", () => {
    const scenario = parseScenario(
      `name: thp
seed: 3
hardware: { pcid: true }
run: { accesses: 60000 }
domains:
  - name: g
    memory: 256MiB
    processes:
      - { name: db, kind: database, working_set: 64MiB, huge_pages: true, pattern: { type: uniform } }
      - { name: make, kind: build, jobs: 2, working_set: 4MiB, child_accesses: 3000 }
`,
      "thp.yaml",
    );
    const r = new Simulation(scenario, { check: true }).run();
    expect(r.checks.violations).toBe(0);
    const c = r.domains[0].counters;
    expect(c.walk_refs_3).toBeGreaterThan(0); // 2 MiB leaves end walks one level early
  });
});

describe("step API", () => {
  test("stepping gives the same run as running, and describes each access", () => {
    const scenario = parseScenario(
      `name: scan
run: { accesses: 6000 }
hardware: { walk_caches: { pwc: false } } # every walk from the root: four levels to describe
domains:
  - name: g
    memory: 64MiB
    processes:
      - { name: scan, kind: database, working_set: 8MiB, fetches: 0, pattern: { type: stride, stride: 1 } }
`,
      "scan.yaml",
    );
    const ran = new Simulation(scenario).run();
    const stepped = new Simulation(scenario);
    const records = [];
    for (let i = 0; i < 6000; i++) {
      const r = stepped.step();
      expect(r).not.toBeNull();
      records.push(r!);
    }
    expect(stepped.report().domains[0].counters).toEqual(ran.domains[0].counters);
    const miss = records.find((r) => r.tlb === "miss" && r.guestFaults === 0)!;
    expect(miss.walks).toHaveLength(1);
    expect(miss.walks[0].levels.map((l) => l.level)).toEqual([4, 3, 2, 1]);
    expect(miss.walks[0].result).toBe("ok");
    const gva = BigInt(miss.gva);
    expect(miss.indices).toEqual([39n, 30n, 21n, 12n].map((s) => Number((gva >> s) & 511n)));
    expect(miss.walks[0].levels.map((l) => l.index)).toEqual(miss.indices);
    expect(BigInt(miss.hpa) & 4095n).toBe(BigInt(miss.offset));
    const faulted = records.find((r) => r.guestFaults > 0)!;
    expect(faulted.walks[0].result).toMatch(/^#PF 0x/);
    expect(stepped.step()).toBeNull(); // the run's length is reached
  });
});

describe("warm-up", () => {
  test("counters start from zero after the warm-up, and the guest carries on", () => {
    const base = builtinScenario("tlb-thrash");
    const warm = { ...base, run: { ...base.run, accesses: 20_000, warmup: 20_000 } };
    const r = new Simulation(warm).run();
    const c = r.domains[0].counters;
    expect(c.user_accesses).toBe(20_000);
    expect(r.host.counters.user_accesses).toBe(20_000);
    // The whole run, measured: its second half is the warmed-up run.
    const whole = new Simulation({
      ...base,
      run: { ...base.run, accesses: 40_000, warmup: 0 },
    }).run();
    const half = new Simulation({
      ...base,
      run: { ...base.run, accesses: 20_000, warmup: 0 },
    }).run();
    for (const name of ["accesses", "tlb_misses", "guest_page_faults", "walk_refs"] as const) {
      expect(c[name], name).toBe(whole.domains[0].counters[name] - half.domains[0].counters[name]);
    }
  });
});

describe("check mode under shadow paging", () => {
  test("a corrupted shadow entry is reported", () => {
    const sim = new Simulation(builtinScenario("fork-storm"), { accesses: 5_000, check: true });
    const report = sim.run();
    expect(report.checks.violations).toBe(0);
    const d = sim.domains[0];
    const shadow = shadowOf(d.platform.vmm);
    // Point a live shadow leaf at a frame of the shadow pool: no guest may reach that.
    const leafPage = [...shadow.tables.pages()].find((sp) => sp.level === 1)!;
    const someShadowFrame = [...shadow.tables.pages()][0].mfn;
    d.platform.mem.write64(leafPage.mfn, 0, pteLo(someShadowFrame, PTE_P | PTE_US), 0);
    d.runChecks(true);
    expect(d.violations).toBe(1);
    expect(d.firstViolation).toMatch(/does not own/);
  });
});

describe("step API under shadow paging", () => {
  test("a step shows the exits and the VMM's walk of the guest's tables", () => {
    const sim = new Simulation(builtinScenario("tlb-thrash"), { mode: "shadow", accesses: 200 });
    const records = [];
    for (let r = sim.step(); r !== null; r = sim.step()) records.push(r);
    expect(records).toHaveLength(200);
    const faulting = records.find((r) => r.guestFaults > 0)!;
    const outcomes = faulting.exits.map((e) => e.outcome);
    // The article's sequence: a true fault injected, then the guest's PTE write emulated.
    expect(outcomes.some((o) => o.startsWith("true fault: injected #PF"))).toBe(true);
    expect(outcomes.some((o) => o.startsWith("emulated write to guest table gfn"))).toBe(true);
    const injected = faulting.exits.find((e) => e.outcome.startsWith("true fault"))!;
    expect(injected.reason).toBe("PF");
    expect(injected.guestWalk?.result).toMatch(/^#PF/);
    expect(injected.gva).toBe(faulting.gva);
    const native = new Simulation(builtinScenario("tlb-thrash"), { accesses: 20 });
    expect(native.step()!.exits).toEqual([]);
  });
});

describe("the OOM killer in a run", () => {
  test("a process killed while another ran leaves the run queue, in every mode", () => {
    for (const mode of ["native", "shadow"] as const) {
      const s = builtinScenario("two-domains");
      s.domains = [s.domains[0]];
      const d = s.domains[0];
      d.memory = 32 * 2 ** 20;
      d.mode = mode;
      d.balloon.target = d.memory;
      // Two databases that together need more than the guest has: the one that faults last
      // finds no page, and the OOM killer takes the larger, which is not running.
      const db = d.processes[0];
      d.processes = [
        { ...db, name: "big", workingSet: 16 * 2 ** 20, pattern: { type: "sequential" } },
        { ...db, name: "small", workingSet: 16 * 2 ** 20, pattern: { type: "uniform" } },
      ];
      // Slices of about 1,000 accesses (2.2 cycles of the guest's clock each).
      d.quantum = { type: "fixed", cycles: 2200 };
      s.run.accesses = 60_000;
      const report = new Simulation(s, { check: true }).run();
      expect(report.checks.violations).toBe(0);
      expect(report.domains[0].counters.guest_oom).toBeGreaterThan(0);
      const killed = report.domains[0].processes.reduce((n, p) => n + p.oom_killed, 0);
      expect(killed).toBeGreaterThan(0);
      expect(report.host.counters.user_accesses).toBe(60_000);
    }
  });
});
