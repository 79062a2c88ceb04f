/**
 * CostTotals (metrics/cost.ts): the cycles of several counter arrays, summed again only when a
 * priced counter changed, are always CostModel.total's, to the bit.
 */

import { describe, expect, it } from "vitest";
import { CPU_PROFILES, DEFAULT_CPU } from "../src/config/cpu.js";
import { CostModel, CostTotals } from "../src/metrics/cost.js";
import { COUNTER_COUNT, newCounters } from "../src/metrics/counters.js";

describe("CostTotals", () => {
  it("answers total() of each array after every change, reset and unpriced change", () => {
    const cost = new CostModel(CPU_PROFILES[DEFAULT_CPU], { walk_ref: 0.3 });
    const arrays = [newCounters(), newCounters(), newCounters()];
    const totals = new CostTotals(cost, arrays);
    let seed = 12345;
    const next = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let step = 0; step < 2000; step++) {
      const a = arrays[next(3)];
      if (next(50) === 0) a.fill(0);
      else a[next(COUNTER_COUNT)] += 1 + next(1000) / 7;
      for (let i = 0; i < arrays.length; i++) expect(totals.total(i)).toBe(cost.total(arrays[i]));
    }
    expect(cost.total(arrays[0])).toBeGreaterThan(0);
  });

  it("sums only priced counters, as total() did over all of them", () => {
    const cost = new CostModel(CPU_PROFILES[DEFAULT_CPU]);
    const c = newCounters();
    for (let i = 0; i < COUNTER_COUNT; i++) c[i] = i + 0.5;
    let all = 0;
    const per = cost.pricedIndex;
    expect(per.length).toBeLessThan(COUNTER_COUNT);
    for (const i of per) all += c[i] * cost.total(unit(i));
    expect(cost.total(c)).toBe(all);
  });
});

/** A counter array with 1 at index i only. */
function unit(i: number): Float64Array {
  const c = newCounters();
  c[i] = 1;
  return c;
}
