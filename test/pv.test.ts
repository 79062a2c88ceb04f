/**
 * PV direct paging in whole runs: a scenario under mode pv with the invariant checks on gives
 * the guest what native and shadow paging give it, makes the exits PV makes (hypercalls and
 * #PF bounces, no CR3 or INVLPG exits) and reports its counters; a ballooning PV domain
 * unmaps what it gives away.
 */

import { describe, expect, test } from "vitest";
import { compareModes } from "../src/api/compare.js";
import { Simulation } from "../src/api/simulation.js";
import { parseScenario } from "../src/workload/scenario/parse.js";

const SCENARIO = `name: pv-small
seed: 5
run: { accesses: 40000 }
domains:
  - name: g
    memory: 64MiB
    processes:
      - { name: db, kind: database, working_set: 16MiB, pattern: { type: uniform } }
      - { name: make, kind: build, jobs: 2, working_set: 2MiB, child_accesses: 2000 }
      - { name: churn, kind: mmap-churn, working_set: 1MiB, churn_accesses: 1500 }
`;

describe("PV direct paging in a run", () => {
  test("native, shadow and pv give the guest the same view, checks on", () => {
    const scenario = parseScenario(SCENARIO, "pv-small.yaml");
    const c = compareModes(scenario, ["native", "shadow", "pv"], { check: true });
    expect(c.same_guest_view).toBe(true);
    for (const r of c.results) expect(r.report.checks.violations, r.mode).toBe(0);
    const pv = c.results[2];
    const counters = pv.report.domains[0].counters;
    expect(pv.vmexits.cr3).toBe(0);
    expect(pv.vmexits.invlpg).toBe(0);
    expect(pv.vmexits.hypercall).toBeGreaterThan(0);
    // Every #PF bounces through Xen: as many PF exits as the guest's faults.
    expect(pv.vmexits.pf).toBe(pv.guest_page_faults);
    expect(counters.calls_to_mmu_update).toBeGreaterThan(0);
    expect(counters.num_page_updates).toBeGreaterThanOrEqual(counters.calls_to_mmu_update);
    expect(counters.pv_page_validations).toBeGreaterThan(0);
    expect(counters.pv_validation_failures).toBe(0);
    expect(counters.pv_hypercall_errors).toBe(0);
    expect(counters.shadow_fault).toBe(0);
    // The VMM's count of tables: the processes' and the kernel's 4 KiB direct map (64 MiB: 32 L1s).
    expect(counters.pv_pt_pages).toBeGreaterThan(counters.pt_pages + 32);
    expect(counters.m2p_pages).toBeGreaterThan(0);
    // Its memory is allocated whole when it is built: nothing populated on demand.
    expect(counters.p2m_populate).toBe(0);
    expect(counters.p2m_entries).toBe(counters.guest_frames);
  });

  test("a PV domain balloons down and up, checks on", () => {
    const scenario = parseScenario(
      `name: pv-balloon
seed: 6
run: { accesses: 40000 }
domains:
  - name: g
    memory: 64MiB
    mode: pv
    balloon: { schedule: [{ at: 10000, target: 40MiB }, { at: 30000, target: 64MiB }] }
    processes:
      - { name: db, kind: database, working_set: 16MiB, pattern: { type: uniform } }
`,
      "pv-balloon.yaml",
    );
    const r = new Simulation(scenario, { check: true }).run();
    expect(r.checks.violations).toBe(0);
    const c = r.domains[0].counters;
    expect(c.balloon_inflated_pages).toBeGreaterThan(0);
    expect(c.balloon_deflated_pages).toBeGreaterThan(0);
    expect(c.calls_to_update_va).toBeGreaterThan(c.balloon_inflated_pages);
  });

  test("PV refuses 1 GiB pages", () => {
    const scenario = parseScenario(
      `${SCENARIO.replace("run:", "hardware: { giga_pages: true }\nrun:")}`,
      "pv-giga.yaml",
    );
    expect(() => new Simulation(scenario, { mode: "pv" })).toThrow(/no large pages/);
  });
});
