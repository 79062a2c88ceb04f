/**
 * The differential check: the same random sequences of guest operations natively and under
 * every VMM mode (VMM_TEST_MODES: shadow paging, PV direct paging) must look the same to the
 * guest (the same data, the same true faults, the same final page tables, accessed and dirty
 * bits included; a PV guest's tables hold mfns, read back as gfns through the m2p), with every
 * invariant checked after every operation; shadow paging under every configuration, including
 * a pool so small that reclaim runs all the time, with out-of-sync L1 shadows (the default) and
 * without.
 */

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import type { ShadowSpec } from "../src/api/types.js";
import { COUNTER_NAMES } from "../src/metrics/counters.js";
import { ALL_WALK_CACHES } from "./support/domains.js";
import {
  bootGuest,
  type GuestOptions,
  SHARING_TEST_MODES,
  type TestMode,
  VMM_TEST_MODES,
} from "./support/guest.js";
import { observe, renamedFrames, withoutFrame } from "./support/observe.js";
import { type Op, opArb, overcommitOpArb, sharingOpArb } from "./support/ops.js";

/**
 * Modes whose guest allocates other gfns than the native one: a PV kernel's direct map takes
 * 4 KiB pages, so its boot tables take more frames and later allocations shift. Their tables
 * are compared with each frame renamed by its first appearance, so that which entries share a
 * frame must still agree.
 */
const OTHER_GFNS: readonly TestMode[] = ["pv"];

/** Counters added up over every run of a property, to show what was exercised. */
const exercised = new Map<string, number>();

const EXERCISED = [
  "shadow_prealloc_1",
  "shadow_prealloc_2",
  "shadow_early_unshadow",
  "shadow_flood_unshadow",
  "shadow_prefetch",
  "shadow_writeable_bf",
  "shadow_emulate_write",
  "shadow_fault_fixed",
  "shadow_unsync",
  "shadow_resync",
  "balloon_inflated_pages",
  "balloon_deflated_pages",
  "host_swap_ins",
  "pages_merged",
  "cow_breaks",
  "calls_to_mmu_update",
  "num_page_updates",
  "ptwr_emulations",
  "need_flush_tlb_flush",
] as const;

/**
 * Run ops natively once, then under each of `modes` (default: shadow paging only), every walk
 * cache on unless `options` say otherwise, and expect the guest to see the same in every one.
 */
function differential(
  ops: Op[],
  shadow: Partial<ShadowSpec>,
  options: GuestOptions = {},
  huge = false,
  frames = true,
  modes: readonly Exclude<TestMode, "native">[] = ["shadow"],
) {
  const cached = { walkCaches: ALL_WALK_CACHES, ...options };
  const native = observe(bootGuest(16, cached), ops, huge);
  for (const mode of modes) {
    const g = bootGuest(16, { ...cached, mode, shadow });
    const virtual = observe(g, ops, huge);
    expect(virtual.seen, mode).toEqual(native.seen);
    expect(virtual.counters, mode).toEqual(native.counters);
    const lines = (tables: string[][]) =>
      !frames
        ? tables.map((t) => t.map(withoutFrame))
        : OTHER_GFNS.includes(mode)
          ? renamedFrames(tables)
          : tables;
    expect(lines(virtual.tables), mode).toEqual(lines(native.tables));
    expect(virtual.framesInUse, mode).toBe(native.framesInUse);
    for (const name of EXERCISED) {
      const index = COUNTER_NAMES.indexOf(name);
      for (const key of [name, `${mode}:${name}`]) {
        exercised.set(key, (exercised.get(key) ?? 0) + g.counters[index]);
      }
    }
  }
}

function exercisedSince(run: () => void): Map<string, number> {
  exercised.clear();
  run();
  return new Map(exercised);
}

const ops = fc.array(opArb, { minLength: 1, maxLength: 50 });

describe("every VMM mode looks like native paging to the guest", () => {
  test("default settings, every VMM mode", () => {
    const seen = exercisedSince(() =>
      fc.assert(
        fc.property(ops, (o) => differential(o, {}, {}, false, true, VMM_TEST_MODES)),
        { numRuns: 60, seed: 1 },
      ),
    );
    expect(seen.get("shadow_fault_fixed")).toBeGreaterThan(0);
    expect(seen.get("shadow_emulate_write")).toBeGreaterThan(0);
    // Out-of-sync L1s, on by default: unsynced, then resynced.
    expect(seen.get("shadow_unsync")).toBeGreaterThan(0);
    expect(seen.get("shadow_resync")).toBeGreaterThan(0);
    expect(seen.get("calls_to_mmu_update")).toBeGreaterThan(0);
    expect(seen.get("need_flush_tlb_flush")).toBeGreaterThan(0);
  });

  test("PV with writable page tables: L1 stores trapped and emulated (ptwr)", () => {
    const seen = exercisedSince(() =>
      fc.assert(
        fc.property(ops, (o) =>
          differential(o, {}, { writablePageTables: true }, false, true, ["pv"]),
        ),
        { numRuns: 30, seed: 12 },
      ),
    );
    expect(seen.get("ptwr_emulations")).toBeGreaterThan(0);
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

  test("out-of-sync L1 shadows off: every page-table write emulated", () => {
    const seen = exercisedSince(() =>
      fc.assert(
        fc.property(ops, (o) => differential(o, { outOfSync: false })),
        { numRuns: 40, seed: 13 },
      ),
    );
    expect(seen.get("shadow_emulate_write")).toBeGreaterThan(0);
    expect(seen.get("shadow_unsync")).toBe(0);
  });

  // The heuristics watch emulated writes, which out-of-sync L1s make rare: they are off here.
  test.each([
    ["early", "shadow_early_unshadow"],
    ["flood", "shadow_flood_unshadow"],
    ["none", ""],
  ] as const)("unshadow policy %s", (unshadow, counter) => {
    const seen = exercisedSince(() =>
      fc.assert(
        fc.property(ops, (o) => differential(o, { unshadow, outOfSync: false })),
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
      fc.property(ops, (o) => differential(o, {}, { pcid: true }, false, true, VMM_TEST_MODES)),
      { numRuns: 30, seed: 5 },
    );
  });

  test("with the balloon inflating and deflating and the host swapping", () => {
    const seen = exercisedSince(() =>
      fc.assert(
        fc.property(fc.array(overcommitOpArb, { minLength: 1, maxLength: 50 }), (o) =>
          differential(o, { pool: 16 * 4096 }, {}, false, false, VMM_TEST_MODES),
        ),
        { numRuns: 40, seed: 8 },
      ),
    );
    expect(seen.get("balloon_inflated_pages")).toBeGreaterThan(0);
    expect(seen.get("balloon_deflated_pages")).toBeGreaterThan(0);
    expect(seen.get("host_swap_ins")).toBeGreaterThan(0);
    // The PV guest's balloon unmaps and remaps its direct map around the hypercalls.
    expect(seen.get("pv:balloon_inflated_pages")).toBeGreaterThan(0);
    expect(seen.get("pv:balloon_deflated_pages")).toBeGreaterThan(0);
  });

  test("with the host sharing pages (KSM) between scans", () => {
    const seen = exercisedSince(() =>
      fc.assert(
        fc.property(fc.array(sharingOpArb, { minLength: 20, maxLength: 100 }), (o) =>
          differential(o, {}, { sharing: true }, false, true, SHARING_TEST_MODES),
        ),
        { numRuns: 50, seed: 9 },
      ),
    );
    expect(seen.get("pages_merged")).toBeGreaterThan(0);
    expect(seen.get("cow_breaks")).toBeGreaterThan(0);
  });

  // Shadow only: a PV guest has no PSE, so its kernel maps no huge page (nor does Linux on PV).
  test("transparent huge pages (FL1 splintering)", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), (o) =>
        differential(o, {}, {}, true),
      ),
      { numRuns: 25, seed: 6 },
    );
  });
});
