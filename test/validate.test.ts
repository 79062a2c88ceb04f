/**
 * `memvisor validate` at the test suite's size: every row that agrees with its publication today
 * must keep agreeing (a regression from pass fails the suite); every row names its source.
 */

import { describe, expect, it } from "vitest";
import { agrees, VALIDATION_ROWS, validate } from "../src/api/index.js";

/**
 * The rows that pass today (quick size). A row leaves this list only with a reason in the
 * issue's note; a row that starts to pass joins it.
 */
const PASSING = [
  "walk-2d-cold",
  "walk-2d-cold-2m",
  "vmexit-round-trip",
  "kernel-build-fault-density",
  "kernel-build-walks",
  "kernel-build-context-switches",
  "shadow-near-native-steady",
  "hap-ahead-on-fork",
  "hap-behind-on-tlb-misses",
  "ept-ahead-with-large-pages",
  "ept-large-pages-help",
  "balloon-beats-swap",
];

describe("memvisor validate", () => {
  it("has rows with a claim, a full source and a published figure", () => {
    const ids = new Set<string>();
    for (const row of VALIDATION_ROWS) {
      expect(ids.has(row.id), row.id).toBe(false);
      ids.add(row.id);
      expect(row.claim.length, row.id).toBeGreaterThan(20);
      // A publication with its year, or a measurement with where it was published.
      expect(row.source, row.id).toMatch(/\b(19|20)\d\d\b|\.com\b/);
    }
    for (const id of PASSING) expect(ids.has(id), id).toBe(true);
  });

  it("judges a figure against a range, a single figure (25%) or a direction", () => {
    expect(agrees({ kind: "range", low: 15, high: 38 }, 15)).toBe(true);
    expect(agrees({ kind: "range", low: 15, high: 38 }, 38.1)).toBe(false);
    expect(agrees({ kind: "figure", value: 48 }, 36)).toBe(true);
    expect(agrees({ kind: "figure", value: 48 }, 35.9)).toBe(false);
    expect(agrees({ kind: "above", bound: 1 }, 1)).toBe(false);
    expect(agrees({ kind: "below", bound: 5 }, -3)).toBe(true);
    expect(agrees({ kind: "below", bound: 5 }, Number.NaN)).toBe(false);
  });

  it("keeps every row that passed passing, and gives each failing row its reason", () => {
    const v = validate("quick");
    for (const row of v.rows) {
      if (PASSING.includes(row.id))
        expect(row.pass, `${row.id}: ${row.measured} ${row.unit}`).toBe(true);
      if (!row.pass) expect(row.reason, row.id).not.toBe("not known yet");
    }
    expect(v.passed + v.failed).toBe(VALIDATION_ROWS.length);
  }, 120_000);
});
