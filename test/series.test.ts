/**
 * The time series as numbers (api/series.ts): what a report gives back is exactly what was
 * sampled, every key in its place, and thinning keeps the first and the newest samples.
 */

import { describe, expect, it } from "vitest";
import { SeriesStore } from "../src/api/series.js";
import { type SampleRow, SERIES_COUNTERS } from "../src/api/types.js";

/** A row whose every value differs (some beyond int32, some fractional). */
function row(seed: number): SampleRow {
  const r = { cycles: seed * 1e9 + 0.5 } as SampleRow;
  SERIES_COUNTERS.forEach((name, i) => {
    r[name] = i % 3 === 0 ? seed * 1000 + i : i % 3 === 1 ? 2 ** 40 + seed + i : seed + i / 4;
  });
  return r;
}

function sampleOf(store: SeriesStore, time: number, seed: number, domains: number) {
  const s = store.newSample();
  store.setTime(s, time);
  for (let i = 0; i < domains; i++) store.setRow(s, i, row(seed + i));
  return s;
}

describe("SeriesStore", () => {
  it("gives back every value and key, in seriesRow's order, with the host's part", () => {
    const store = new SeriesStore(["a", "b"], true);
    const s = sampleOf(store, 123.25, 7, 2);
    const host = {
      frames_free: 5,
      frames_used: 2 ** 33,
      swapped_out: 1,
      pages_shared: 0,
      pages_sharing: 3,
      sharing_cycles: 0.75,
    };
    store.setHost(s, host);
    store.add(s);
    const [got] = store.toSamples();
    expect(JSON.stringify(got)).toBe(
      JSON.stringify({ time: 123.25, domains: { a: row(7), b: row(8) }, host }),
    );
    expect(Object.keys(got.domains.a)).toEqual(["cycles", ...SERIES_COUNTERS]);
  });

  it("has no host part without a host, and a sample at the newest's time replaces it", () => {
    const store = new SeriesStore(["only"], false);
    store.add(sampleOf(store, 10, 1, 1));
    store.add(sampleOf(store, 10, 2, 1));
    const got = store.toSamples();
    expect(got).toHaveLength(1);
    expect(got[0].host).toBeUndefined();
    expect(got[0].domains.only).toEqual(row(2));
  });

  it("thins to every other sample, keeping the first and the newest", () => {
    const store = new SeriesStore(["d"], false);
    for (let t = 0; t < 6; t++) store.add(sampleOf(store, t, t, 1));
    store.thin();
    expect(store.toSamples().map((x) => x.time)).toEqual([0, 2, 4, 5]);
    store.clear();
    expect(store.length).toBe(0);
  });
});
