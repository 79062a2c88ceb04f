/**
 * The number fields that take doubles (fractions, numbers above 2^31) start as doubles
 * (hw/double-zero.ts): running a simulation leaves its objects' hidden classes as they were
 * made, so that no compiled code is thrown away for a class that changed under it. This file
 * runs in a process of its own, so that the first simulation here is the first of the process:
 * a field that started as a small integer would change its class now, with the run beside.
 */

import { setFlagsFromString } from "node:v8";
import { describe, expect, it } from "vitest";
import { Simulation } from "../src/api/simulation.js";
import { parseScenario } from "../src/workload/scenario/parse.js";

setFlagsFromString("--allow-natives-syntax");
/** V8's own answer to whether two objects have the same hidden class (map). */
const sameMap = new Function("a", "b", "return %HaveSameMap(a, b);") as (
  a: object,
  b: object,
) => boolean;

/** A database over `workingSet`, as the shadow-steady built-in has it. */
const scenario = (workingSet: string) =>
  parseScenario(
    `
run: { accesses: 20000 }
domains:
  - name: d
    memory: 1GiB
    processes:
      - { name: p, kind: database, working_set: ${workingSet}, fetches: 0.05, writes: 0.25, pattern: { type: uniform } }
`,
    "double-zero.yaml",
  );

/** The objects of a simulation whose fields take doubles. */
function parts(s: Simulation): Record<string, object> {
  const d = s.domains[0];
  const driver = [...d.drivers.values()][0];
  return {
    Simulation: s,
    Vcpu: d.platform.cpu,
    Tlb: d.platform.cpu.tlb,
    GuestClock: d.guestClock,
    Scheduler: d.sched,
    ProcessDriver: driver,
  };
}

describe("number fields that take doubles", () => {
  it("keep their objects' hidden classes through runs of two modes, one after the other", () => {
    const fresh = parts(new Simulation(scenario("4MiB"), { mode: "native", seed: 1 }));
    // As a thread of an experiment makes them: a hap run (its code compiled), then a native one.
    new Simulation(scenario("128MiB"), { mode: "hap", seed: 1 }).run();
    const ran = new Simulation(scenario("4MiB"), { mode: "native", seed: 1 });
    ran.run();
    const used = parts(ran);
    const changed = Object.keys(fresh).filter((name) => !sameMap(fresh[name], used[name]));
    expect(changed).toEqual([]);
  });
});
