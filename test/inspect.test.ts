import { describe, expect, test } from "vitest";
import { FRAME_DOMAIN, FRAME_FREE } from "../src/api/inspect.js";
import { Simulation } from "../src/api/simulation.js";
import { builtinScenario } from "../src/workload/scenario/builtin.js";

describe("the step API's guest walk and P2M lookup", () => {
  test.each(["native", "shadow", "hap", "pv"] as const)(
    "under %s, the guest walk and the P2M lead to the frame the access reached",
    (mode) => {
      const sim = new Simulation(builtinScenario("database"), { mode, accesses: 400 });
      let checked = 0;
      for (let r = sim.step(); r !== null; r = sim.step()) {
        if (r.mfn < 0) continue;
        const leaf = r.guest.levels[r.guest.levels.length - 1];
        expect(leaf.flags).toContain("P");
        expect(r.guest.gfn).toBeGreaterThanOrEqual(0);
        expect(r.guest.gpa).toBe(`0x${(r.guest.gfn * 4096 + r.offset).toString(16)}`);
        expect(r.guest.levels.map((l) => l.index)).toEqual(
          r.indices.slice(0, r.guest.levels.length),
        );
        if (mode === "native") {
          expect(r.p2m).toBeNull();
          expect(r.guest.gfn).toBe(r.mfn);
        } else {
          expect(r.p2m).toMatchObject({ gfn: r.guest.gfn, mfn: r.mfn });
          expect(["ram_rw", "ram_shared"]).toContain(r.p2m?.type);
        }
        checked++;
      }
      expect(checked).toBeGreaterThan(300);
    },
  );
});

describe("the step API's TLB sets", () => {
  test.each(["native", "shadow", "hap"] as const)(
    "under %s, the L1 set the gva indexes holds the access's entry, most recently used",
    (mode) => {
      const sim = new Simulation(builtinScenario("database"), { mode, accesses: 300 });
      let found = 0;
      let n = 0;
      for (let r = sim.step(); r !== null; r = sim.step()) {
        if (r.mfn < 0) continue;
        n++;
        const l1 = r.tlbSets.find((s) => s.array === "L1");
        expect(l1?.ways.length).toBe(4);
        expect(l1?.set).toBe(Math.floor(Number.parseInt(r.gva, 16) / 4096) % 16);
        const current = l1?.ways.find((w) => w.current);
        if (current === undefined) continue;
        expect(current.mfn).toBe(r.mfn);
        expect(current.age).toBe(0);
        expect(current.gva).toBe(
          `0x${(Math.floor(Number.parseInt(r.gva, 16) / 4096) * 4096).toString(16)}`,
        );
        found++;
      }
      expect(found).toBeGreaterThan(n * 0.9);
    },
  );
});

describe("the frame map", () => {
  test.each([
    ["mixed", "native"],
    ["two-domains", "shadow"],
    ["two-domains", "hap"],
    ["sharing", undefined],
  ] as const)("of %s (%s) counts what the host's counters count", (name, mode) => {
    const sim = new Simulation(builtinScenario(name), { mode, accesses: 20_000 });
    const report = sim.run();
    const map = sim.frameMap();
    expect(map.used).toBe(report.host.frames_used);
    expect(map.owners.length).toBe(report.host.frames_total);
    expect(map.counts[FRAME_FREE]).toBe(report.host.frames_total - report.host.frames_used);
    expect(map.names.slice(FRAME_DOMAIN)).toEqual(report.domains.map((d) => d.name));
    // Every domain's own frames (natively: its machine's; else its RAM) are on the map.
    report.domains.forEach((_d, i) => {
      expect(map.counts[FRAME_DOMAIN + i]).toBeGreaterThan(0);
    });
  });
});
