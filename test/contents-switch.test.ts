/**
 * The page-contents switch (host.contents, HostMemory.contents): off, data accesses leave
 * memory alone and read 0, everything else about a run is unchanged; it refuses page sharing,
 * which merges pages by their contents, in a scenario file and in a scenario built in code.
 */

import { describe, expect, it } from "vitest";
import { OptionsError } from "../src/api/options.js";
import { Simulation } from "../src/api/simulation.js";
import type { Scenario } from "../src/config/scenario.js";
import { builtinScenario } from "../src/workload/scenario/builtin.js";
import { parseScenario } from "../src/workload/scenario/parse.js";
import { scenarioToFile } from "../src/workload/scenario/to-file.js";

const DOMAIN =
  "domains: [{ name: d, memory: 64MiB, mode: shadow, processes: [{ name: p, kind: database, working_set: 4MiB }] }]";

function withContents(s: Scenario, contents: boolean): Scenario {
  return { ...s, host: { ...s.host, contents } };
}

describe("host.contents", () => {
  it("off: the same translations, faults and counters; only what reads return differs", () => {
    const scenario = builtinScenario("tlb-thrash");
    const on = new Simulation(scenario, { accesses: 20_000 }).run();
    const off = new Simulation(withContents(scenario, false), { accesses: 20_000 }).run();
    const [a, b] = [on.domains[0], off.domains[0]];
    expect(b.counters.tlb_misses).toBe(a.counters.tlb_misses);
    expect(b.counters.guest_page_faults).toBe(a.counters.guest_page_faults);
    expect(b.counters.reads).toBe(a.counters.reads);
    expect(b.processes[0].read_hash).not.toBe(a.processes[0].read_hash);
  });

  it("is read from a scenario file, and written back only when off", () => {
    const off = parseScenario(`host: { contents: false }\n${DOMAIN}`, "c.yaml");
    expect(off.host.contents).toBe(false);
    expect(scenarioToFile(off).host).toMatchObject({ contents: false });
    const on = parseScenario(DOMAIN, "c.yaml");
    expect(on.host.contents).toBeUndefined();
    expect(scenarioToFile(on).host).not.toHaveProperty("contents");
  });

  it("refuses page sharing without contents, in a file and in code", () => {
    expect(() =>
      parseScenario(`host: { contents: false, sharing: { enabled: true } }\n${DOMAIN}`, "c.yaml"),
    ).toThrow(/contents.*page sharing \(sharing\.enabled\)/);
    const sharing = parseScenario(`host: { sharing: { enabled: true } }\n${DOMAIN}`, "c.yaml");
    expect(() => new Simulation(withContents(sharing, false))).toThrow(OptionsError);
    expect(() => new Simulation(withContents(sharing, false))).toThrow(
      /host\.contents false turns off the page-contents model/,
    );
    const odd = { ...sharing, host: { ...sharing.host, contents: "no" as unknown as boolean } };
    expect(() => new Simulation(odd)).toThrow('host.contents: expected true or false, got "no"');
  });
});
