/**
 * How a run ends: a run that stops before its accesses says why, domain by domain (every
 * process gone, and how; a domain crashed, at boot or later), a report taken mid-run says it is
 * partial, and a mode that drops part of a scenario says what it dropped.
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { compareVarying, parameterProblem } from "../src/api/compare.js";
import { modeDrops } from "../src/api/mode-drops.js";
import { OptionsError } from "../src/api/options.js";
import { Simulation } from "../src/api/simulation.js";
import type { Report } from "../src/api/types.js";
import { builtinScenario } from "../src/workload/scenario/builtin.js";
import { loadScenarioFile } from "../src/workload/scenario/file.js";
import { parseScenario } from "../src/workload/scenario/parse.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "memvisor-ending-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A one-domain scenario: `domain` holds the domain's keys after its name. */
function scenario(domain: string[], run = "run: { accesses: 100000 }", host = ""): string {
  return [
    "name: ending",
    run,
    ...(host === "" ? [] : [host]),
    "domains:",
    "  - name: d",
    ...domain.map((l) => `    ${l}`),
    "",
  ].join("\n");
}

const run = (yaml: string): Report => new Simulation(parseScenario(yaml, "e.yaml")).run();

describe("a run that ends before its accesses says why", () => {
  it("a complete run says so", () => {
    const r = run(
      scenario(["memory: 16MiB", "processes: [{ name: p, kind: database, working_set: 1MiB }]"]),
    );
    expect(r.host.counters.user_accesses).toBe(100_000);
    expect(r.ending).toEqual({
      status: "complete",
      planned_accesses: 100_000,
      during_warmup: false,
      may_end_early: false,
      reasons: [],
    });
  });

  it("every process reached its lifetime", () => {
    const r = run(
      scenario([
        "memory: 16MiB",
        "processes: [{ name: p, kind: database, working_set: 1MiB, lifetime: 5000 }]",
      ]),
    );
    expect(r.host.counters.user_accesses).toBe(5000);
    expect(r.ending.status).toBe("early");
    expect(r.ending.reasons).toEqual([
      {
        domain: "d",
        cause: "exited",
        detail: "every process is gone: p: 1 reached the lifetime (5000 accesses)",
      },
    ]);
  });

  it("every process was killed by the OOM killer (its balloon took the memory)", () => {
    const r = run(
      scenario([
        "memory: 64MiB",
        "mode: hap",
        "balloon: { schedule: [{ at: 2000, target: 12MiB }] }",
        "processes:",
        "  - { name: p, kind: database, working_set: 40MiB, pattern: { type: sequential }, writes: 1, fetches: 0 }",
      ]),
    );
    expect(r.ending.status).toBe("early");
    expect(r.ending.reasons[0].cause).toBe("exited");
    expect(r.ending.reasons[0].detail).toBe("every process is gone: p: 1 killed by the OOM killer");
    expect(r.domains[0].processes[0].oom_killed).toBe(1);
  });

  it("a trace without loop came to its end", () => {
    const file = join(tmp, "trace.yaml");
    writeFileSync(
      file,
      scenario(
        [
          "memory: 64MiB",
          `processes: [{ name: sort, kind: trace, trace: ${join(ROOT, "traces/sort-services.lackey.gz")} }]`,
        ],
        "run: { accesses: 5000000 }",
      ),
    );
    const r = new Simulation(loadScenarioFile(file)).run();
    expect(r.host.counters.user_accesses).toBeLessThan(5_000_000);
    expect(r.ending.status).toBe("early");
    expect(r.ending.reasons[0].detail).toBe(
      "every process is gone: sort: 1 came to the end of the trace (no loop)",
    );
  });

  it("a domain the VMM crashed mid-run, with the crash's reason", () => {
    const r = run(
      scenario(
        [
          "memory: 64MiB",
          "mode: shadow",
          "processes: [{ name: p, kind: database, working_set: 48MiB, pattern: { type: sequential }, writes: 1 }]",
        ],
        "run: { accesses: 200000 }",
        "host: { memory: 40MiB }",
      ),
    );
    expect(r.ending.status).toBe("early");
    expect(r.ending.reasons).toHaveLength(1);
    expect(r.ending.reasons[0].cause).toBe("crashed");
    expect(r.ending.reasons[0].detail).toMatch(/^the VMM crashed it: the host has no memory left/);
    expect(r.domains[0].crashed).toMatch(/^the host has no memory left/);
  });

  it("a domain crashed at boot says so, with no memory in use (not a negative figure)", () => {
    const r = run(
      scenario(
        [
          "memory: 512MiB",
          "mode: shadow",
          "balloon: { target: 8MiB }",
          "processes: [{ name: p, kind: database, working_set: 1MiB }]",
        ],
        "run: { accesses: 200000 }",
        "host: { memory: 6MiB }",
      ),
    );
    const d = r.domains[0];
    expect(d.crashed).toMatch(/^at boot: the host has no memory left/);
    expect(d.counters.guest_frames_used).toBe(0);
    expect(r.host.counters.user_accesses).toBe(0);
    expect(r.ending.reasons[0].detail).toMatch(/^the VMM crashed it at boot: /);
  });

  it("only the domains that stopped are named; the scenario may expect it", () => {
    const yaml = [
      "name: two",
      "run: { accesses: 40000, may_end_early: true }",
      "domains:",
      "  - { name: short, memory: 16MiB, processes: [{ name: p, kind: database, working_set: 1MiB, lifetime: 1000 }] }",
      "  - { name: long, memory: 16MiB, processes: [{ name: q, kind: database, working_set: 1MiB }] }",
      "",
    ].join("\n");
    const r = run(yaml);
    expect(r.host.counters.user_accesses).toBe(21_000);
    expect(r.ending.status).toBe("early");
    expect(r.ending.may_end_early).toBe(true);
    expect(r.ending.reasons.map((x) => x.domain)).toEqual(["short"]);
  });

  it("a run that ends in its warm-up says so", () => {
    const r = run(
      scenario(
        [
          "memory: 16MiB",
          "processes: [{ name: p, kind: database, working_set: 1MiB, lifetime: 3000 }]",
        ],
        "run: { accesses: 10000, warmup: 5000 }",
      ),
    );
    expect(r.ending.status).toBe("early");
    expect(r.ending.during_warmup).toBe(true);
  });

  it("a slice a host timer cut short before any access is not the end of the run", () => {
    // The scanner wakes every 1,000 cycles and cuts the slice there; a make forking 16 children
    // in a row makes only system calls in such a slice. The run ended there (after 97 accesses),
    // its processes called blocked, when a slice with no access counted as an idle domain.
    const r = run(
      scenario(
        [
          "memory: 256MiB",
          "mode: shadow",
          "processes: [{ name: make, kind: build, jobs: 16, working_set: 64KiB, child_accesses: 1 }]",
        ],
        "run: { accesses: 1000 }",
        "host: { sharing: { enabled: true, sleep: 1000, pages_to_scan: 1 } }",
      ),
    );
    expect(r.ending.status).toBe("complete");
    expect(r.host.counters.user_accesses).toBe(1000);
  });

  it("a report taken before the run is over is partial; the step API ends it as a run does", () => {
    const yaml = scenario([
      "memory: 16MiB",
      "processes: [{ name: p, kind: database, working_set: 1MiB, lifetime: 50 }]",
    ]);
    const sim = new Simulation(parseScenario(yaml, "e.yaml"));
    expect(sim.runTurn()).toBe(true);
    expect(sim.report().ending.status).toBe("partial");
    const stepped = new Simulation(parseScenario(yaml, "e.yaml"));
    while (stepped.step() !== null);
    expect(stepped.report().ending.status).toBe("early");
  });
});

describe("a mode that cannot apply part of a scenario says what it dropped", () => {
  it("native drops the balloon, the host's memory and swapping of overcommit", () => {
    const s = builtinScenario("overcommit");
    const dropped = modeDrops(s, "native");
    expect(dropped).toEqual([
      "ballooning and memory targets (the balloon settings of domains vm1, vm2, vm3, vm4)",
      "the host's memory (host.memory 1GiB): each native domain is a machine of its own",
      "host swapping (host.swap)",
    ]);
    const r = new Simulation(s, { mode: "native", accesses: 2000 }).run();
    expect(r.dropped_settings).toEqual(dropped);
  });

  it("pv drops sharing; shadow and hap drop nothing; no mode option drops nothing", () => {
    const s = builtinScenario("sharing");
    expect(modeDrops(s, "pv")).toEqual([
      "page sharing (host.sharing) of domains vm1, vm2, vm3, vm4: the host never shares a PV domain",
    ]);
    expect(modeDrops(s, "shadow")).toEqual([]);
    expect(modeDrops(s, "hap")).toEqual([]);
    expect(modeDrops(s, undefined)).toEqual([]);
    expect(new Simulation(s, { accesses: 1000 }).run().dropped_settings).toEqual([]);
  });
});

describe("compareVarying on a parameter no process reads", () => {
  it("is an OptionsError naming the parameter", () => {
    expect(() =>
      compareVarying(builtinScenario("fork-storm"), ["native"], "lifetime", [1, 2]),
    ).toThrow(
      new OptionsError(
        "parameter: no process of scenario fork-storm reads lifetime (database processes do; " +
          "its processes are build): every value would give the same run",
      ),
    );
    expect(parameterProblem(builtinScenario("fork-storm"), "child_accesses")).toBe("");
  });
});
