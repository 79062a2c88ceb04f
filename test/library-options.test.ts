/**
 * The library checks its options where they enter, with an OptionsError that names the option,
 * what was expected and what came: no silent run of nothing, no TypeError from deep inside.
 */

import { describe, expect, it } from "vitest";
import { compareModes, compareVarying } from "../src/api/compare.js";
import { SimulationError } from "../src/api/domain.js";
import { checkCycleTotals, OptionsError } from "../src/api/options.js";
import { Simulation } from "../src/api/simulation.js";
import { sweepDomains } from "../src/api/sweep.js";
import { builtinScenario } from "../src/workload/scenario/builtin.js";
import { parseScenario } from "../src/workload/scenario/parse.js";

const scenario = builtinScenario("tlb-thrash");

function messageOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(OptionsError);
    return (e as Error).message;
  }
  throw new Error("expected an OptionsError");
}

describe("new Simulation", () => {
  it.each([
    [{ seed: -1 }, "seed: expected an integer from 0 to 4294967295, got -1"],
    [{ seed: 2 ** 32 }, "seed: expected an integer from 0 to 4294967295, got 4294967296"],
    [{ accesses: 0 }, "accesses: expected an integer from 1 to 1000000000000, got 0"],
    [{ accesses: -5 }, "accesses: expected an integer from 1 to 1000000000000, got -5"],
    [{ accesses: Number.NaN }, "accesses: expected an integer from 1 to 1000000000000, got NaN"],
    [{ accesses: "100" }, 'accesses: expected an integer from 1 to 1000000000000, got "100"'],
    [{ mode: "hvm" }, 'mode: expected one of native, shadow, hap, pv, got "hvm"'],
    [{ check: 1 }, 'check: expected true, false or "full", got 1'],
    [{ check: "all" }, 'check: expected true, false or "full", got "all"'],
    [{ sed: 7 }, 'Simulation: unknown option "sed" (the options are mode, seed, check, accesses)'],
  ])("%o", (options, message) => {
    expect(messageOf(() => new Simulation(scenario, options as never))).toBe(message);
  });

  it("refuses domains that the mode chosen makes too large to simulate", () => {
    const big = parseScenario(
      [
        "host: { memory: 1TiB }",
        "domains:",
        ...[1, 2].map(
          (i) =>
            `  - { name: d${i}, memory: 256GiB, mode: hap, processes: [{ name: p, kind: database, working_set: 1MiB }] }`,
        ),
      ].join("\n"),
      "big.yaml",
    );
    expect(messageOf(() => new Simulation(big, { mode: "shadow" }))).toMatch(
      /^scenario big: simulating these domains on this host would take about \d+\.\d+GiB/,
    );
  });
});

describe("compareModes, compareVarying, sweepDomains", () => {
  it("an empty or bad list of modes", () => {
    expect(messageOf(() => compareModes(scenario, []))).toBe(
      "modes: expected a list of one or more of native, shadow, hap, pv, got an empty list",
    );
    expect(messageOf(() => compareModes(scenario, ["native", "native"]))).toBe(
      "modes[1]: native is listed twice",
    );
    expect(messageOf(() => compareModes(scenario, ["native"], { accesses: 0 }))).toBe(
      "accesses: expected an integer from 1 to 1000000000000, got 0",
    );
  });

  it("a bad parameter or values", () => {
    const crossover = builtinScenario("crossover");
    expect(messageOf(() => compareVarying(crossover, ["native"], "size" as never, [1, 2]))).toMatch(
      /^parameter: expected one of child_accesses, /,
    );
    expect(messageOf(() => compareVarying(crossover, ["native"], "jobs", []))).toBe(
      "values: expected a list of values of jobs, got an empty list",
    );
    expect(
      messageOf(() => compareVarying(crossover, ["native"], "jobs", [1, Number.POSITIVE_INFINITY])),
    ).toBe("values[1]: expected a number >= 0, got Infinity");
  });

  it("a bad number of domains", () => {
    expect(messageOf(() => sweepDomains(scenario, 0))).toBe(
      "maxDomains: expected an integer from 1 to 16, got 0",
    );
    expect(messageOf(() => sweepDomains(scenario, 2, { accessesPerDomain: 0.5 }))).toBe(
      "accessesPerDomain: expected an integer from 1 to 1000000000000, got 0.5",
    );
  });
});

describe("cycle totals", () => {
  it("a run whose cycles pass 2^53 is an error, not a report of wrong cycles", () => {
    const report = new Simulation(scenario, { accesses: 1000 }).run();
    expect(() => checkCycleTotals(report)).not.toThrow();
    const wrong = {
      ...report,
      host: { ...report.host, counters: { ...report.host.counters, cycles: 2 ** 53 + 2 } },
    };
    expect(() => checkCycleTotals(wrong)).toThrow(SimulationError);
    expect(() => checkCycleTotals(wrong)).toThrow(
      "scenario tlb-thrash: the run's cycles passed 2^53 (9007199254740994), beyond what is counted exactly",
    );
  });
});
