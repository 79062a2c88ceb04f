import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AccessPattern } from "../src/api/types.js";
import { MAX_PAGES, PageSequence, Scatter } from "../src/workload/pattern.js";
import { Rng } from "../src/workload/rng.js";

// Statistical checks use fixed seeds, so they are deterministic; their tolerances are about five
// standard deviations, wide enough to survive a change of seed and narrow enough that a wrong
// algorithm (modulo bias, a wrong exponent, cold picks that skip the hot set) fails.

function draws(seq: { next(): number }, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(seq.next());
  return out;
}

function u32s(rng: Rng, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(rng.nextU32());
  return out;
}

function popcount(x: number): number {
  let c = 0;
  for (let v = x >>> 0; v !== 0; v &= v - 1) c++;
  return c;
}

/** Five standard deviations of a frequency estimated from n draws of probability p. */
function tol(p: number, n: number): number {
  return 5 * Math.sqrt((p * (1 - p)) / n) + 1e-9;
}

/** Pearson's chi-square of `counts` against equal expected counts. */
function chiSquare(counts: number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const expected = total / counts.length;
  return counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
}

const arbPattern: fc.Arbitrary<AccessPattern> = fc.oneof(
  fc.constant({ type: "sequential" as const }),
  fc.constant({ type: "uniform" as const }),
  fc.record({
    type: fc.constant("hotcold" as const),
    hotFraction: fc.double({ min: 1e-6, max: 1, noNaN: true }),
    hotProbability: fc.double({ min: 0, max: 1, noNaN: true }),
  }),
  fc.record({
    type: fc.constant("zipf" as const),
    s: fc.double({ min: 0.01, max: 20, noNaN: true }),
  }),
  fc.record({ type: fc.constant("stride" as const), stride: fc.integer({ min: 1, max: 2 ** 31 }) }),
);

const arbPages = fc.oneof(
  fc.integer({ min: 1, max: 100 }),
  fc.integer({ min: 1, max: MAX_PAGES }),
  fc.constantFrom(1, 2, 3, 2 ** 28, 2 ** 30 - 1, MAX_PAGES),
);

describe("Rng", () => {
  it("pins its output: changing it changes every scenario's results", () => {
    expect(u32s(new Rng(42), 4)).toEqual([2936323184, 2559468458, 2680681107, 4055171277]);
    expect(u32s(new Rng(42).derive(1), 4)).toEqual([
      2471838166, 4018602084, 1091312487, 3149200285,
    ]);
  });

  it("repeats a sequence for the same seed, and separates nearby and extreme seeds", () => {
    const seeds = [
      0,
      1,
      2,
      -1,
      2 ** 32,
      2 ** 32 + 1,
      Number.MAX_SAFE_INTEGER,
      -Number.MAX_SAFE_INTEGER,
    ];
    const firsts = seeds.map((seed) => {
      const a = u32s(new Rng(seed), 64);
      expect(u32s(new Rng(seed), 64)).toEqual(a);
      return a.join(",");
    });
    expect(new Set(firsts).size).toBe(seeds.length);
  });

  it("derive() is reproducible and does not touch the parent's state", () => {
    const parent = new Rng(7);
    const twin = new Rng(7);
    const before = u32s(parent.derive(3), 32);
    parent.nextU32();
    expect(u32s(parent.derive(3), 32)).toEqual(before);
    expect(u32s(new Rng(7).derive(3), 32)).toEqual(before);
    for (let s = 0; s < 10; s++) parent.derive(s);
    twin.nextU32();
    expect(u32s(parent, 32)).toEqual(u32s(twin, 32));
    expect(u32s(new Rng(7).derive(1).derive(2), 8)).toEqual(
      u32s(new Rng(7).derive(1).derive(2), 8),
    );
  });

  it("derive() streams are distinct and uncorrelated with each other and the parent", () => {
    const parent = new Rng(123);
    const streams = [parent, ...Array.from({ length: 16 }, (_, i) => parent.derive(i))];
    streams.push(new Rng(123).derive(1).derive(0), new Rng(123).derive(0).derive(1));
    const words = streams.map((r) => u32s(r, 10_000));
    expect(new Set(words.map((w) => w.slice(0, 4).join(","))).size).toBe(words.length);
    for (let i = 0; i + 1 < words.length; i++) {
      // Differing bits of two independent streams: Binomial(320000, 1/2), sd about 283.
      let diff = 0;
      for (let j = 0; j < 10_000; j++) diff += popcount(words[i][j] ^ words[i + 1][j]);
      expect(Math.abs(diff - 160_000)).toBeLessThan(1_500);
    }
  });

  it("nextU32, nextFloat and nextDouble stay in range with mean 1/2", () => {
    const rng = new Rng(9);
    const n = 100_000;
    let outside = 0;
    let sumU = 0;
    let sumF = 0;
    let sumD = 0;
    for (let i = 0; i < n; i++) {
      const u = rng.nextU32();
      const f = rng.nextFloat();
      const d = rng.nextDouble();
      if (!(Number.isInteger(u) && u >= 0 && u < 2 ** 32)) outside++;
      if (!(f >= 0 && f < 1 && d >= 0 && d < 1)) outside++;
      sumU += u / 2 ** 32;
      sumF += f;
      sumD += d;
    }
    expect(outside).toBe(0);
    // The mean of n uniforms has sd 1/sqrt(12 n), about 0.0009.
    for (const sum of [sumU, sumF, sumD]) expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.005);
  });

  it("nextBelow(3) is unbiased", () => {
    const rng = new Rng(2024);
    const n = 300_000;
    const counts = [0, 0, 0];
    for (let i = 0; i < n; i++) counts[rng.nextBelow(3)]++;
    for (const c of counts) expect(Math.abs(c / n - 1 / 3)).toBeLessThan(tol(1 / 3, n));
  });

  it("nextBelow has no modulo bias for n near 2^32 and above it", () => {
    // x mod n of a 32-bit (or 64-bit) word would land below 2^32 - n (2^64 - n) twice as often:
    // a share of 1/2 where the exact share is 1/3.
    const n = 60_000;
    for (const [bound, third] of [
      [3 * 2 ** 30, 2 ** 30],
      [3 * 2 ** 50, 2 ** 50],
    ]) {
      const rng = new Rng(bound);
      let low = 0;
      for (let i = 0; i < n; i++) if (rng.nextBelow(bound) < third) low++;
      expect(Math.abs(low / n - 1 / 3)).toBeLessThan(tol(1 / 3, n));
    }
  });

  it("nextBelow stays in [0, n) for every n up to 2^53", () => {
    const arbN = fc.oneof(
      fc.integer({ min: 1, max: 2 ** 32 + 5 }),
      fc.constantFrom(1, 2, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1, 2 ** 53),
      fc.double({ min: 1, max: 2 ** 53, noNaN: true }).map(Math.floor),
    );
    fc.assert(
      fc.property(arbN, fc.integer(), (n, seed) => {
        const rng = new Rng(seed);
        for (let i = 0; i < 50; i++) {
          const r = rng.nextBelow(n);
          if (!Number.isInteger(r) || r < 0 || r >= n) return false;
        }
        return true;
      }),
      { seed: 1, numRuns: 300 },
    );
  });

  it("chance(p) hits with probability p, never for 0, always for 1", () => {
    const rng = new Rng(5);
    const n = 100_000;
    let hits = 0;
    let wrong = 0;
    for (let i = 0; i < n; i++) {
      if (rng.chance(0.3)) hits++;
      if (rng.chance(0) || !rng.chance(1)) wrong++;
    }
    expect(wrong).toBe(0);
    expect(Math.abs(hits / n - 0.3)).toBeLessThan(tol(0.3, n));
  });

  it("rejects bad arguments with RangeError", () => {
    expect(() => new Rng(1.5)).toThrow(RangeError);
    expect(() => new Rng(Number.NaN)).toThrow(RangeError);
    expect(() => new Rng(2 ** 53)).toThrow(RangeError);
    const rng = new Rng(1);
    for (const n of [0, -1, 2.5, Number.NaN, 2 ** 53 + 2, Number.POSITIVE_INFINITY]) {
      expect(() => rng.nextBelow(n)).toThrow(RangeError);
    }
    for (const s of [-1, 1.5, 2 ** 32, Number.NaN]) expect(() => rng.derive(s)).toThrow(RangeError);
  });
});

describe("Scatter", () => {
  it("is a bijection of 0..pages-1", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 1, max: 5000 }), fc.constantFrom(1, 2, 4096, 4097)),
        (pages) => {
          const scatter = new Scatter(pages);
          const seen = new Uint8Array(pages);
          for (let i = 0; i < pages; i++) {
            const p = scatter.apply(i);
            if (!Number.isInteger(p) || p < 0 || p >= pages || seen[p]) return false;
            seen[p] = 1;
          }
          return true;
        },
      ),
      { seed: 2, numRuns: 200 },
    );
  });

  it("spreads the first indices over the whole region", () => {
    const pages = 1000;
    const scatter = new Scatter(pages);
    const perTenth = new Array(10).fill(0);
    for (let i = 0; i < 100; i++) perTenth[Math.floor(scatter.apply(i) / 100)]++;
    for (const c of perTenth) expect(c).toBeGreaterThanOrEqual(3);
    expect(scatter.apply(0)).not.toBe(0);
  });
});

describe("PageSequence", () => {
  it("repeats a sequence for the same seed, for every pattern", () => {
    fc.assert(
      fc.property(arbPattern, arbPages, fc.integer(), (pattern, pages, seed) => {
        const a = draws(new PageSequence(pattern, pages, new Rng(seed)), 50);
        const b = draws(new PageSequence(pattern, pages, new Rng(seed)), 50);
        return a.join() === b.join();
      }),
      { seed: 3, numRuns: 200 },
    );
  });

  it("returns integers in [0, pages) for every pattern", () => {
    fc.assert(
      fc.property(arbPattern, arbPages, fc.integer(), (pattern, pages, seed) => {
        const seq = new PageSequence(pattern, pages, new Rng(seed));
        for (let i = 0; i < 200; i++) {
          const p = seq.next();
          if (!Number.isInteger(p) || p < 0 || p >= pages) return false;
        }
        return true;
      }),
      { seed: 4, numRuns: 400 },
    );
  });

  it("sequential visits 0..pages-1 in order, then again", () => {
    expect(draws(new PageSequence({ type: "sequential" }, 4, new Rng(0)), 9)).toEqual([
      0, 1, 2, 3, 0, 1, 2, 3, 0,
    ]);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2000 }), (pages) => {
        const got = draws(new PageSequence({ type: "sequential" }, pages, new Rng(0)), 2 * pages);
        return got.every((p, i) => p === i % pages);
      }),
      { seed: 5, numRuns: 100 },
    );
  });

  it("stride visits every page once per cycle, pass by pass", () => {
    const ten = new PageSequence({ type: "stride", stride: 4 }, 10, new Rng(0));
    expect(draws(ten, 12)).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 3, 7, 0, 4]);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 1, max: 1500 }),
        (pages, stride) => {
          // Reference model: pass o visits o, o + stride, ... below pages.
          const cycle: number[] = [];
          for (let o = 0; o < Math.min(stride, pages); o++) {
            for (let p = o; p < pages; p += stride) cycle.push(p);
          }
          const got = draws(
            new PageSequence({ type: "stride", stride }, pages, new Rng(0)),
            2 * pages,
          );
          const once = [...got.slice(0, pages)].sort((a, b) => a - b);
          return (
            once.every((p, i) => p === i) &&
            got.slice(0, pages).join() === cycle.join() &&
            got.slice(pages).join() === cycle.join()
          );
        },
      ),
      { seed: 6, numRuns: 300 },
    );
  });

  it("uniform passes a chi-square test over 64 buckets, by high and by low bits", () => {
    // 63 degrees of freedom: mean 63, sd 11.2; 30..115 leaves less than 1e-4 in each tail.
    for (const pages of [6400, 3 * 2 ** 20]) {
      const seq = new PageSequence({ type: "uniform" }, pages, new Rng(pages));
      const high = new Array(64).fill(0);
      const low = new Array(64).fill(0);
      for (let i = 0; i < 320_000; i++) {
        const p = seq.next();
        high[Math.floor((p * 64) / pages)]++;
        low[p % 64]++;
      }
      for (const counts of [high, low]) {
        const chi = chiSquare(counts);
        expect(chi).toBeGreaterThan(30);
        expect(chi).toBeLessThan(115);
      }
    }
  });

  it("hotcold puts hotProbability + (1 - hotProbability) * hotFraction of the draws on hot pages", () => {
    const pages = 1000;
    const n = 200_000;
    for (const [hotFraction, hotProbability] of [
      [0.1, 0.9],
      [0.25, 0.5],
      [0.25, 0],
      [0.07, 1],
    ]) {
      const hotCount = Math.round(hotFraction * pages);
      const scatter = new Scatter(pages);
      const hot = new Set(Array.from({ length: hotCount }, (_, i) => scatter.apply(i)));
      const seq = new PageSequence(
        { type: "hotcold", hotFraction, hotProbability },
        pages,
        new Rng(11),
      );
      const counts = new Array(pages).fill(0);
      let onHot = 0;
      for (let i = 0; i < n; i++) {
        const p = seq.next();
        counts[p]++;
        if (hot.has(p)) onHot++;
      }
      const expected = hotProbability + (1 - hotProbability) * hotFraction;
      expect(Math.abs(onHot / n - expected)).toBeLessThan(tol(expected, n));
      for (const p of hot) expect(counts[p]).toBeGreaterThan(0);
      // The hot set is scattered, not the first pages.
      expect([...hot].some((p) => p >= hotCount)).toBe(true);
    }
  });

  it("hotcold rounds the hot set up and keeps at least one hot page", () => {
    const pages = 100;
    const seq = new PageSequence(
      { type: "hotcold", hotFraction: 0.07, hotProbability: 1 },
      pages,
      new Rng(1),
    );
    const hot = new Set(draws(seq, 20_000));
    expect(hot.size).toBe(7); // 0.07 * 100 is 7.000000000000001 in floating point.
    const tiny = new PageSequence(
      { type: "hotcold", hotFraction: 1e-9, hotProbability: 1 },
      pages,
      new Rng(1),
    );
    expect(new Set(draws(tiny, 1000)).size).toBe(1);
  });

  describe("zipf", () => {
    /** Exact Zipf probabilities of ranks 0..pages-1. */
    function zipfProbabilities(s: number, pages: number): Float64Array {
      const p = new Float64Array(pages);
      let total = 0;
      for (let r = 0; r < pages; r++) {
        p[r] = (r + 1) ** -s;
        total += p[r];
      }
      for (let r = 0; r < pages; r++) p[r] /= total;
      return p;
    }

    /** Empirical rank frequencies: pages are mapped back to ranks through Scatter's inverse. */
    function rankCounts(s: number, pages: number, n: number, seed: number): Float64Array {
      const scatter = new Scatter(pages);
      const rankOf = new Int32Array(pages);
      for (let r = 0; r < pages; r++) rankOf[scatter.apply(r)] = r;
      const seq = new PageSequence({ type: "zipf", s }, pages, new Rng(seed));
      const counts = new Float64Array(pages);
      for (let i = 0; i < n; i++) counts[rankOf[seq.next()]]++;
      return counts;
    }

    for (const s of [1.2, 1.0, 0.5]) {
      it(`matches the exact probabilities of the top ranks and of rank bands for s = ${s}`, () => {
        const pages = 1000;
        const n = 400_000;
        const exact = zipfProbabilities(s, pages);
        const counts = rankCounts(s, pages, n, 17);
        for (let r = 0; r < 20; r++) {
          expect(Math.abs(counts[r] / n - exact[r])).toBeLessThan(tol(exact[r], n));
        }
        for (const [from, to] of [
          [0, 10],
          [10, 100],
          [100, 1000],
        ]) {
          let want = 0;
          let got = 0;
          for (let r = from; r < to; r++) {
            want += exact[r];
            got += counts[r];
          }
          expect(Math.abs(got / n - want)).toBeLessThan(tol(want, n));
        }
      });
    }

    it("matches the top ranks for s = 0.99 over a million pages", () => {
      const pages = 1_000_000;
      const n = 300_000;
      const exact = zipfProbabilities(0.99, pages);
      const counts = rankCounts(0.99, pages, n, 23);
      for (let r = 0; r < 10; r++) {
        expect(Math.abs(counts[r] / n - exact[r])).toBeLessThan(tol(exact[r], n));
      }
    });

    it("handles one page and a steep exponent", () => {
      expect(draws(new PageSequence({ type: "zipf", s: 0.7 }, 1, new Rng(1)), 10)).toEqual(
        new Array(10).fill(0),
      );
      const scatter = new Scatter(5000);
      const seq = new PageSequence({ type: "zipf", s: 20 }, 5000, new Rng(1));
      // P(rank 0) = 1 / zeta(20) > 0.999999.
      expect(draws(seq, 10_000).every((p) => p === scatter.apply(0))).toBe(true);
    });

    it("scatters the most popular pages", () => {
      const pages = 1 << 20;
      const scatter = new Scatter(pages);
      const top = Array.from({ length: 16 }, (_, r) => scatter.apply(r));
      expect(Math.max(...top) - Math.min(...top)).toBeGreaterThan(pages / 2);
    });
  });

  it("rejects bad arguments with RangeError", () => {
    const rng = new Rng(1);
    for (const pages of [0, -1, 1.5, Number.NaN, MAX_PAGES + 1]) {
      expect(() => new PageSequence({ type: "uniform" }, pages, rng)).toThrow(RangeError);
    }
    const bad: unknown[] = [
      { type: "hotcold", hotFraction: 0, hotProbability: 0.5 },
      { type: "hotcold", hotFraction: 1.1, hotProbability: 0.5 },
      { type: "hotcold", hotFraction: Number.NaN, hotProbability: 0.5 },
      { type: "hotcold", hotFraction: 0.5, hotProbability: -0.1 },
      { type: "hotcold", hotFraction: 0.5, hotProbability: 1.01 },
      { type: "zipf", s: 0 },
      { type: "zipf", s: -1 },
      { type: "zipf", s: Number.NaN },
      { type: "zipf", s: Number.POSITIVE_INFINITY },
      { type: "stride", stride: 0 },
      { type: "stride", stride: 1.5 },
      { type: "random" },
    ];
    for (const pattern of bad) {
      expect(() => new PageSequence(pattern as AccessPattern, 100, rng)).toThrow(RangeError);
    }
    expect(() => new PageSequence({ type: "zipf", s: 0 }, 100, rng)).toThrow(/zipf: s must be/);
  });
});
