/**
 * The step API's story (StepRecord.events, api/story.ts): the events come from the simulator,
 * so each kind is counted exactly as the counter of the code that records it, and the exits
 * listed are every exit the counters count, in every mode (PV's hypercalls and #PF bounces,
 * the guest kernel's steps before the access included). Also the article's words and values.
 */

import { describe, expect, it } from "vitest";
import { Simulation } from "../src/api/simulation.js";
import type { StepRecord } from "../src/api/step.js";
import { decodeErrorCode } from "../src/api/story.js";
import {
  C_BALLOON_INFLATED_PAGES,
  C_COW_BREAKS,
  C_GUEST_PAGE_FAULTS,
  C_P2M_POPULATE,
  C_PAGES_MERGED,
  C_SHADOW_EMULATE_WRITE,
  C_SHADOW_FAULT_BAIL_REAL_FAULT,
  C_SHADOW_FAULT_FIXED,
  C_SHADOW_UNSHADOW,
  C_VMEXITS,
  C_VMEXITS_EPT_VIOLATION,
  C_VMEXITS_HYPERCALL,
  C_VMEXITS_PF,
} from "../src/metrics/counters.js";
import { builtinScenario } from "../src/workload/scenario/builtin.js";
import { parseScenario } from "../src/workload/scenario/parse.js";

type Mode = "shadow" | "hap" | "pv";

/** Step `n` accesses; the records and each counter's growth over them, summed over domains. */
function stepN(sim: Simulation, n: number, counters: number[]) {
  const sum = () => counters.map((c) => sim.domains.reduce((s, d) => s + d.counters[c], 0));
  const before = sum();
  const records: StepRecord[] = [];
  for (let i = 0; i < n; i++) {
    const r = sim.step();
    if (r === null) break;
    records.push(r);
  }
  const after = sum();
  return { records, delta: counters.map((_, i) => after[i] - before[i]) };
}

function count(records: StepRecord[], kind: string): number {
  return records.reduce((s, r) => s + r.events.filter((e) => e.kind === kind).length, 0);
}

describe("the step API's story", () => {
  it.each(["shadow", "hap", "pv"] as Mode[])(
    "under %s lists every exit the counters count, by reason",
    (mode) => {
      const sim = new Simulation(builtinScenario("mixed"), { mode, seed: 3 });
      const { records, delta } = stepN(sim, 60, [
        C_VMEXITS,
        C_VMEXITS_PF,
        C_VMEXITS_HYPERCALL,
        C_VMEXITS_EPT_VIOLATION,
      ]);
      const exits = records.flatMap((r) => r.exits);
      expect(delta[0]).toBeGreaterThan(0);
      expect(exits.length).toBe(delta[0]);
      expect(exits.filter((e) => e.reason === "PF").length).toBe(delta[1]);
      expect(exits.filter((e) => e.reason === "HYPERCALL").length).toBe(delta[2]);
      expect(exits.filter((e) => e.reason === "EPT_VIOLATION").length).toBe(delta[3]);
      // Each exit points at its event in the story, and only a #PF names a gva.
      for (const r of records) {
        for (const e of r.exits) {
          expect(r.events[e.event].values.gva ?? "").toBe(e.gva);
          if (e.reason !== "PF") expect(e.gva).toBe("");
        }
      }
    },
  );

  it("under shadow tells each fault, shadow and P2M event as often as its counter counts it", () => {
    const sim = new Simulation(builtinScenario("mixed"), { mode: "shadow", seed: 5 });
    const { records, delta } = stepN(sim, 150, [
      C_SHADOW_FAULT_BAIL_REAL_FAULT,
      C_SHADOW_FAULT_FIXED,
      C_SHADOW_EMULATE_WRITE,
      C_P2M_POPULATE,
      C_GUEST_PAGE_FAULTS,
    ]);
    expect(count(records, "true-fault")).toBe(delta[0]);
    expect(count(records, "hidden-fault")).toBe(delta[1]);
    expect(count(records, "emulate-write")).toBe(delta[2]);
    expect(count(records, "p2m-populate")).toBe(delta[3]);
    expect(count(records, "guest-fault")).toBe(delta[4]);
    for (const k of ["true-fault", "hidden-fault", "emulate-write", "write-protect"]) {
      expect(count(records, k), k).toBeGreaterThan(0);
    }
    // Every access's story starts with the TLB lookup and ends with its translation; the
    // guest kernel's handling of a fault on the access's gva maps the gfn the access reached.
    let fixed = 0;
    for (const r of records) {
      const fixes = r.events.filter((e) => e.kind === "guest-fault" && e.values.gva === r.gva);
      const last = fixes[fixes.length - 1];
      if (last !== undefined) {
        expect(last.values.gfn).toBe(`0x${r.guest.gfn.toString(16)}`);
        fixed++;
      }
      expect(r.events[0].kind).toBe("tlb");
      expect(r.events[0].values.gva).toBe(r.gva);
      const end = r.events[r.events.length - 1];
      expect(end.kind).toBe("result");
      expect(end.text).toBe(
        `Done: gva ${r.gva} -> gpa ${r.guest.gpa} -> hpa ${r.hpa} (mfn 0x${r.mfn.toString(16)}).`,
      );
    }
    expect(fixed).toBeGreaterThan(0);
    // A shadow entry says whether its P2M entry was populated for it: then the populate is
    // told just before it, for the same gfn.
    let populated = 0;
    for (const r of records) {
      r.events.forEach((e, n) => {
        if (e.kind !== "shadow-entry") return;
        const before = r.events
          .slice(0, n)
          .reverse()
          .find((x) => x.kind === "p2m-populate" || x.kind === "pf-exit");
        const fresh = before?.kind === "p2m-populate" && before.values.gfn === e.values.gfn;
        expect(e.text.endsWith("(populated just now)."), e.text).toBe(fresh);
        if (fresh) populated++;
      });
    }
    expect(populated).toBeGreaterThan(0);
  });

  it("tells the article's sequence in its words, with the values the tables hold", () => {
    const sim = new Simulation(builtinScenario("mixed"), { mode: "shadow", seed: 5 });
    const { records } = stepN(sim, 150, []);
    const events = records.flatMap((r) => r.events);
    const first = (kind: string) => {
      const e = events.find((x) => x.kind === kind);
      if (e === undefined) throw new Error(`no ${kind} event`);
      return e;
    };
    const truth = first("true-fault");
    expect(truth.text).toMatch(/^True fault: the guest's own tables do not allow this access/);
    expect(truth.text).toContain(`injects #PF ${decodeErrorCode(Number(truth.values.code))}`);
    expect(first("hidden-fault").text).toMatch(/^Hidden fault: .* never sees this fault\.$/);
    expect(first("write-protect").text).toMatch(
      /^The VMM write-protects guest table gfn 0x[0-9a-f]+ \(mfn 0x[0-9a-f]+\)/,
    );
    const write = first("emulate-write");
    expect(write.text).toContain("The guest writes its page table");
    expect(write.text).toContain(`${write.values.old} -> ${write.values.new}`);
    // The new value is what the guest table holds now, unless a later write changed it.
    const populate = first("p2m-populate");
    expect(populate.text).toContain(
      `fills the P2M entry gfn ${populate.values.gfn} -> mfn ${populate.values.mfn}`,
    );
    // A write is followed by the revalidation of the shadows of the table it hit.
    const at = events.indexOf(write);
    expect(events[at + 1].kind).toBe("revalidate");
    expect(events[at + 1].values.gfn).toBe(write.values.gfn);
    expect(decodeErrorCode(6)).toBe("0x6 (not present, write, user mode)");
    expect(decodeErrorCode(0x13)).toBe(
      "0x13 (protection violation, write, kernel mode, instruction fetch)",
    );
  });

  it("tells the balloon, page sharing and copy on write as their counters count them", () => {
    const yaml = [
      "name: story",
      "seed: 1",
      "run: { accesses: 500000 }",
      "host: { sharing: { enabled: true, pages_to_scan: 256, sleep: 20000 } }",
      "domains:",
      "  - name: vm",
      "    memory: 64MiB",
      "    mode: shadow",
      "    balloon: { schedule: [{ at: 3000, target: 40MiB }] }",
      "    processes:",
      "      - { name: db, kind: database, working_set: 4MiB, writes: 0.3 }",
      "",
    ].join("\n");
    const sim = new Simulation(parseScenario(yaml, "story.yaml"));
    const { records, delta } = stepN(sim, 6000, [
      C_BALLOON_INFLATED_PAGES,
      C_PAGES_MERGED,
      C_COW_BREAKS,
    ]);
    const inflated = records
      .flatMap((r) => r.events)
      .filter((e) => e.kind === "balloon-inflate")
      .reduce((s, e) => s + Number(e.values.count), 0);
    expect(delta[0]).toBeGreaterThan(0);
    expect(inflated).toBe(delta[0]);
    expect(delta[1]).toBeGreaterThan(0);
    expect(count(records, "share-merge")).toBe(delta[1]);
    expect(delta[2]).toBeGreaterThan(0);
    expect(count(records, "cow-break")).toBe(delta[2]);
  });

  it("tells process exits, which the VMM does not see, and the unshadowing that follows", () => {
    const sim = new Simulation(builtinScenario("fork-storm"), { mode: "shadow", seed: 1 });
    const { records, delta } = stepN(sim, 20_000, [C_SHADOW_UNSHADOW]);
    expect(count(records, "process-exit")).toBeGreaterThan(0);
    expect(delta[0]).toBeGreaterThan(0);
    expect(count(records, "unshadow")).toBe(delta[0]);
    const exit = records.flatMap((r) => r.events).find((e) => e.kind === "process-exit");
    expect(exit?.text).toMatch(/the VMM is not told/);
  });

  it.each(["shadow", "hap", "pv"] as Mode[])(
    "under %s, recording the story changes nothing: stepping gives the counters running gives",
    (mode) => {
      const options = { mode, seed: 2, accesses: 1500 };
      const ran = new Simulation(builtinScenario("fork-storm"), options).run();
      const stepped = new Simulation(builtinScenario("fork-storm"), options);
      while (stepped.step() !== null) {}
      expect(stepped.report().domains[0].counters).toEqual(ran.domains[0].counters);
    },
  );

  it("records nothing when no step is traced", () => {
    const sim = new Simulation(builtinScenario("mixed"), { mode: "shadow", seed: 1 });
    sim.step();
    for (const d of sim.domains) {
      expect(d.platform.cpu.events).toBeNull();
      expect(d.platform.cpu.trace).toBeNull();
    }
  });
});
