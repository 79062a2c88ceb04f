/**
 * The timing model's inputs: the CPU profile a scenario names (its TLBs, caches, walk caches and
 * costs), and the work between accesses (instructions per access, CPI).
 */

import { describe, expect, it } from "vitest";
import {
  COST_EVENTS,
  CPU_NAMES,
  CPU_PROFILES,
  parseScenario,
  Simulation,
} from "../src/api/index.js";
import { loadBuiltinScenario } from "../src/api/node.js";

const domain = (extra = "") => `
domains:
  - name: d
    memory: 64MiB
    processes:
      - { name: db, kind: database, working_set: 2MiB${extra} }
`;

describe("CPU profiles", () => {
  it("give every cost a source, and a figure that is finite and not negative", () => {
    for (const name of CPU_NAMES) {
      const p = CPU_PROFILES[name];
      expect(p.name).toBe(name);
      for (const event of COST_EVENTS) {
        const cost = p.costs[event];
        expect(Number.isFinite(cost.value) && cost.value >= 0, `${name} ${event}`).toBe(true);
        expect(cost.source.length, `${name} ${event}`).toBeGreaterThan(10);
      }
      for (const level of ["l1d", "l2", "llc", "dram"] as const) {
        expect(p.latency[level].source.length).toBeGreaterThan(10);
      }
      // A walk reference found in a level costs that level's latency.
      expect(p.costs.walk_l2.value).toBe(p.latency.l2.value);
      expect(p.costs.walk_dram.value).toBe(p.latency.dram.value);
    }
  });

  it("set the TLBs, walk caches and prices of the scenario that names them", () => {
    const sky = parseScenario(domain(), "s.yaml");
    const neh = parseScenario(`hardware: { cpu: nehalem-ep }\n${domain()}`, "n.yaml");
    expect(sky.hardware.cpu).toBe("skylake-sp");
    expect(sky.hardware.tlb.l2).toEqual({ entries: 1536, ways: 12 });
    expect(neh.hardware.tlb.l2).toEqual({ entries: 512, ways: 4 });
    const a = new Simulation(sky, { accesses: 5000 }).run();
    const b = new Simulation(neh, { accesses: 5000 }).run();
    expect(a.cpu).toEqual({
      profile: "skylake-sp",
      model: CPU_PROFILES["skylake-sp"].model,
      hz: 2.1e9,
    });
    expect(b.cpu.hz).toBe(2.93e9);
    expect(a.seconds).toBeCloseTo(a.host.counters.cycles / 2.1e9, 12);
    // The same guest work, priced by each profile's costs.
    expect(b.domains[0].processes).toEqual(a.domains[0].processes);
    const page = (r: typeof a) => r.domains[0].cycles.by_event.page_zero ?? 0;
    expect(page(b) / b.domains[0].counters.page_zero).toBe(880);
    expect(page(a) / a.domains[0].counters.page_zero).toBe(630);
  });

  it("refuses an unknown profile, and checks a TLB's sets with the profile's other figure", () => {
    expect(() => parseScenario(`hardware: { cpu: pentium }\n${domain()}`, "p.yaml")).toThrow(
      /hardware\.cpu: expected one of skylake-sp, nehalem-ep, got "pentium"/,
    );
    // 512 entries (Nehalem's STLB) in 6 ways: not a whole number of sets.
    expect(() =>
      parseScenario(
        `hardware: { cpu: nehalem-ep, tlb: { l2: { ways: 6 } } }\n${domain()}`,
        "t.yaml",
      ),
    ).toThrow(/hardware\.tlb\.l2\.ways: must divide entries \(512\)/);
  });
});

describe("the work between accesses", () => {
  it("counts the process's instructions per access and their cycles at its CPI", () => {
    const r = new Simulation(
      parseScenario(domain(", instructions_per_access: 3, cpi: 0.5"), "w.yaml"),
      { accesses: 4000 },
    ).run();
    const d = r.domains[0];
    // Every access the process made (its stack's first touch included), each with its work.
    const accesses = d.processes[0].accesses;
    expect(d.counters.instructions).toBe(3 * accesses);
    expect(d.counters.core_cycles).toBeCloseTo(1.5 * accesses, 6);
    expect(d.cycles.by_event.core_cycle).toBeCloseTo(1.5 * accesses, 6);
    expect(d.rates.page_faults_pki).toBeCloseTo(
      (1000 * d.counters.guest_page_faults) / (3 * accesses),
      9,
    );
    expect(d.rates.cpi).toBeCloseTo(d.cycles.total / d.counters.instructions, 9);
  });

  it("counts a trace's instructions as the fetches it replays", () => {
    const r = new Simulation(loadBuiltinScenario("sort-trace"), { accesses: 30_000 }).run();
    const c = r.domains[0].counters;
    expect(c.instructions).toBeGreaterThan(0);
    expect(c.instructions).toBe(c.fetches);
  });

  it("gives each kind its default, and a trace none (its instructions are its fetches)", () => {
    const s = parseScenario(
      `domains:
  - name: d
    memory: 64MiB
    processes:
      - { name: a, kind: database, working_set: 1MiB }
      - { name: b, kind: build, working_set: 1MiB }
      - { name: c, kind: mmap-churn, working_set: 1MiB }
`,
      "k.yaml",
    );
    const work = s.domains[0].processes.map((p) => [p.instructionsPerAccess, p.cpi]);
    expect(work).toEqual([
      [2, 0.6],
      [95, 1.1],
      [2, 0.8],
    ]);
    expect(() =>
      parseScenario(
        `domains:\n  - name: d\n    memory: 64MiB\n    processes:\n      - { name: t, kind: trace, trace: x.mvtr, instructions_per_access: 2 }\n`,
        "t.yaml",
      ),
    ).toThrow(/instructions_per_access: does not apply to trace processes/);
  });
});

describe("the guest's clock", () => {
  /** Two memory-bound processes in one guest, measured after their first touches. */
  const twoDatabases = (dataCache: boolean) => `
run: { accesses: 400000, warmup: 100000 }
hardware: { data_cache: ${dataCache} }
domains:
  - name: d
    memory: 256MiB
    processes:
      - { name: a, kind: database, working_set: 16MiB }
      - { name: b, kind: database, working_set: 16MiB }
`;

  it("counts the data stalls, so that a memory-bound process's slice is Linux's in time", () => {
    const r = new Simulation(parseScenario(twoDatabases(true), "two.yaml")).run();
    const d = r.domains[0];
    // CFS gives each of two runnable processes half of its 6 ms period: 333 switches a second.
    const perSecond = d.counters.context_switches / d.cycles.seconds;
    expect(perSecond).toBeGreaterThan(333 * 0.8);
    expect(perSecond).toBeLessThan(333 * 1.2);
    // Without the caches the clock has only the instructions, a few cycles an access: the same
    // slices take hundreds of times the accesses.
    const flat = new Simulation(parseScenario(twoDatabases(false), "two.yaml")).run().domains[0];
    expect(flat.counters.context_switches).toBeLessThan(d.counters.context_switches / 10);
  });

  it("runs the same schedule in every paging mode", () => {
    const scenario = parseScenario(twoDatabases(true), "two.yaml");
    const seen = (mode: "native" | "shadow" | "hap" | "pv") => {
      const d = new Simulation(scenario, { mode, accesses: 150000 }).run().domains[0];
      return [d.counters.context_switches, ...d.processes.map((p) => [p.accesses, p.read_hash])];
    };
    const native = seen("native");
    expect(native[0]).toBeGreaterThan(2);
    for (const mode of ["shadow", "hap", "pv"] as const) expect(seen(mode), mode).toEqual(native);
  });
});
