/**
 * The guess at a run's cost that orders a pool's batch (api/run-cost.ts): more accesses and
 * larger working sets guess dearer, ties keep the order given, and a task it cannot read does
 * not stop the others.
 */

import { describe, expect, it } from "vitest";
import { parseScenario } from "../src/api/index.js";
import { estimatedCost, PAGE_WEIGHT, takeOrder } from "../src/api/run-cost.js";
import type { RunTask } from "../src/api/run-task.js";

function task(accesses: number, workingSet: string, instances = 1, warmup = 0): RunTask {
  const scenario = parseScenario(
    `
run: { accesses: ${accesses}, warmup: ${warmup} }
domains:
  - name: d
    memory: 256MiB
    processes:
      - { name: p, kind: database, working_set: ${workingSet}, instances: ${instances} }
`,
    "cost.yaml",
  );
  return { scenario, options: { mode: "native", seed: 1 } };
}

describe("the guess at a run's cost", () => {
  it("counts the accesses planned, warm-up included, and the working sets' pages", () => {
    expect(estimatedCost(task(1000, "4MiB"))).toBe(1000 + PAGE_WEIGHT * 1024);
    expect(estimatedCost(task(1000, "4MiB", 1, 500))).toBe(1500 + PAGE_WEIGHT * 1024);
    expect(estimatedCost(task(1000, "4MiB", 3))).toBe(1000 + PAGE_WEIGHT * 3 * 1024);
    expect(estimatedCost(task(1000, "8MiB"))).toBeGreaterThan(estimatedCost(task(1000, "4MiB")));
    expect(estimatedCost(task(9000, "4MiB"))).toBeGreaterThan(estimatedCost(task(1000, "4MiB")));
  });

  it("orders the dearest first, and equal guesses in the order given", () => {
    const tasks = [task(1000, "1MiB"), task(1000, "8MiB"), task(1000, "1MiB"), task(5000, "8MiB")];
    expect(takeOrder(tasks)).toEqual([3, 1, 0, 2]);
  });

  it("guesses 0 for a task whose scenario it cannot read", () => {
    const broken = { scenario: { ...task(1000, "1MiB").scenario, domains: null }, options: {} };
    expect(estimatedCost(broken as never)).toBe(0);
    expect(takeOrder([broken as never, task(1000, "1MiB")])).toEqual([1, 0]);
  });
});
