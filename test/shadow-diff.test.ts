/**
 * The differential check: the same random sequences of guest operations natively and under
 * shadow paging must look the same to the guest (the same data, the same true faults, the same
 * final page tables, accessed and dirty bits included), with every invariant checked after
 * every operation, under every shadow configuration, including a pool so small that reclaim
 * runs all the time.
 */

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import type { ShadowSpec } from "../src/api/types.js";
import { COUNTER_NAMES } from "../src/metrics/counters.js";
import { bootGuest, type GuestOptions } from "./support/guest.js";
import { observe } from "./support/observe.js";
import { type Op, opArb, overcommitOpArb, sharingOpArb } from "./support/ops.js";

/** Shadow counters added up over every run of a property, to show what was exercised. */
const exercised = new Map<string, number>();

function differential(
  ops: Op[],
  shadow: Partial<ShadowSpec>,
  options: GuestOptions = {},
  huge = false,
  frames = true,
) {
  const native = observe(bootGuest(16, options), ops, huge, frames);
  const g = bootGuest(16, { ...options, mode: "shadow", shadow });
  const shadowed = observe(g, ops, huge, frames);
  expect(shadowed.seen).toEqual(native.seen);
  expect(shadowed.counters).toEqual(native.counters);
  expect(shadowed.tables).toEqual(native.tables);
  expect(shadowed.framesInUse).toBe(native.framesInUse);
  for (const name of [
    "shadow_prealloc_1",
    "shadow_prealloc_2",
    "shadow_early_unshadow",
    "shadow_flood_unshadow",
    "shadow_prefetch",
    "shadow_writeable_bf",
    "shadow_emulate_write",
    "shadow_fault_fixed",
    "balloon_inflated_pages",
    "balloon_deflated_pages",
    "host_swap_ins",
    "pages_merged",
    "cow_breaks",
  ]) {
    const index = COUNTER_NAMES.indexOf(name as (typeof COUNTER_NAMES)[number]);
    exercised.set(name, (exercised.get(name) ?? 0) + g.counters[index]);
  }
}

function exercisedSince(run: () => void): Map<string, number> {
  exercised.clear();
  run();
  return new Map(exercised);
}

const ops = fc.array(opArb, { minLength: 1, maxLength: 50 });

describe("shadow paging looks like native paging to the guest", () => {
  test("default shadow settings", () => {
    const seen = exercisedSince(() =>
      fc.assert(
        fc.property(ops, (o) => differential(o, {})),
        { numRuns: 60, seed: 1 },
      ),
    );
    expect(seen.get("shadow_fault_fixed")).toBeGreaterThan(0);
    expect(seen.get("shadow_emulate_write")).toBeGreaterThan(0);
  });

  test("a tiny pool: reclaim (both stages) all the time", () => {
    const seen = exercisedSince(() =>
      fc.assert(
        fc.property(ops, (o) => differential(o, { pool: 8 * 4096 })),
        { numRuns: 60, seed: 2 },
      ),
    );
    expect(seen.get("shadow_prealloc_1")).toBeGreaterThan(0);
    expect(seen.get("shadow_prealloc_2")).toBeGreaterThan(0);
  });

  test.each([
    ["early", "shadow_early_unshadow"],
    ["flood", "shadow_flood_unshadow"],
    ["none", ""],
  ] as const)("unshadow policy %s", (unshadow, counter) => {
    const seen = exercisedSince(() =>
      fc.assert(
        fc.property(ops, (o) => differential(o, { unshadow })),
        { numRuns: 30, seed: 3 },
      ),
    );
    if (counter !== "") expect(seen.get(counter)).toBeGreaterThan(0);
  });

  test("prefetch, brute-force write protection and a small pool", () => {
    const seen = exercisedSince(() =>
      fc.assert(
        fc.property(ops, (o) =>
          differential(o, { prefetch: 16, writableSearch: "bruteforce", pool: 16 * 4096 }),
        ),
        { numRuns: 30, seed: 4 },
      ),
    );
    expect(seen.get("shadow_writeable_bf"), "brute force").toBeGreaterThan(0);
  });

  test("PCIDs", () => {
    fc.assert(
      fc.property(ops, (o) => differential(o, {}, { pcid: true })),
      { numRuns: 30, seed: 5 },
    );
  });

  test("with the balloon inflating and deflating and the host swapping", () => {
    const seen = exercisedSince(() =>
      fc.assert(
        fc.property(fc.array(overcommitOpArb, { minLength: 1, maxLength: 50 }), (o) =>
          differential(o, { pool: 16 * 4096 }, {}, false, false),
        ),
        { numRuns: 40, seed: 8 },
      ),
    );
    expect(seen.get("balloon_inflated_pages")).toBeGreaterThan(0);
    expect(seen.get("balloon_deflated_pages")).toBeGreaterThan(0);
    expect(seen.get("host_swap_ins")).toBeGreaterThan(0);
  });

  test("with the host sharing pages (KSM) between scans", () => {
    const seen = exercisedSince(() =>
      fc.assert(
        fc.property(fc.array(sharingOpArb, { minLength: 20, maxLength: 100 }), (o) =>
          differential(o, {}, { sharing: true }),
        ),
        { numRuns: 50, seed: 9 },
      ),
    );
    expect(seen.get("pages_merged")).toBeGreaterThan(0);
    expect(seen.get("cow_breaks")).toBeGreaterThan(0);
  });

  test("transparent huge pages (FL1 splintering)", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), (o) =>
        differential(o, {}, {}, true),
      ),
      { numRuns: 25, seed: 6 },
    );
  });
});
