import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CACHE_DRAM,
  CACHE_L1,
  CACHE_L2,
  CACHE_LLC,
  CacheLevel,
  DataCache,
} from "../src/hw/cache.js";

/** A small hierarchy: L1 2 sets x 2 ways, L2 4 sets x 4 ways, LLC 8 sets x 4 ways. */
const SMALL = {
  l1: { bytes: 2 * 2 * 64, ways: 2 },
  l2: { bytes: 4 * 4 * 64, ways: 4 },
  llc: { bytes: 8 * 4 * 64, ways: 4 },
};

/** The reference model: per level, per set, lines from least to most recently used. */
class ReferenceCache {
  private readonly levels: { sets: number; ways: number; lru: number[][] }[];

  constructor(geometry: typeof SMALL) {
    this.levels = [geometry.l1, geometry.l2, geometry.llc].map((spec) => {
      const sets = spec.bytes / 64 / spec.ways;
      return { sets, ways: spec.ways, lru: Array.from({ length: sets }, () => []) };
    });
  }

  access(mfn: number, lineInFrame: number): number {
    const line = mfn * 64 + lineInFrame;
    let found = 3;
    for (let i = 0; i < 3; i++) {
      const set = this.levels[i].lru[line % this.levels[i].sets];
      if (set.includes(line)) {
        found = i;
        break;
      }
    }
    for (let i = 0; i <= Math.min(found, 2); i++) {
      const level = this.levels[i];
      const set = level.lru[line % level.sets];
      const at = set.indexOf(line);
      if (at >= 0) set.splice(at, 1);
      else if (set.length === level.ways) set.shift();
      set.push(line);
    }
    return found;
  }
}

describe("the data-cache hierarchy", () => {
  it("refuses a geometry whose sets are not a power of two", () => {
    expect(() => new CacheLevel({ bytes: 3 * 64, ways: 1 })).toThrow(/power of two/);
    expect(() => new CacheLevel({ bytes: 32 * 1024, ways: 8 })).not.toThrow();
  });

  it("finds a line in DRAM first, then in L1; its neighbours in the frame are other lines", () => {
    const c = new DataCache(SMALL);
    expect(c.access(5, 3)).toBe(CACHE_DRAM);
    expect(c.access(5, 3)).toBe(CACHE_L1);
    expect(c.access(5, 4)).toBe(CACHE_DRAM);
    expect(c.access(6, 3)).toBe(CACHE_DRAM);
  });

  it("evicts the least recently used way: a line pushed out of L1 is found in L2, then LLC", () => {
    const c = new DataCache(SMALL);
    // Lines 0, 2, 4, ... of frame 0 all fall in L1 set 0 (2 ways).
    c.access(0, 0);
    c.access(0, 2);
    c.access(0, 0); // 0 is now the most recent: 2 goes next
    c.access(0, 4);
    expect(c.l1.holds(0)).toBe(true);
    expect(c.l1.holds(2)).toBe(false);
    expect(c.access(0, 2)).toBe(CACHE_L2);
    // Lines 0, 4, 8, 12, 16 share L2 set 0 (4 ways): the fifth pushes line 0 out to the LLC.
    for (const line of [4, 8, 12, 16]) c.access(0, line);
    expect(c.l2.holds(0)).toBe(false);
    expect(c.access(0, 0)).toBe(CACHE_LLC);
  });

  it("answers as a reference LRU model does, for any access sequence", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 63 })), {
          maxLength: 400,
        }),
        (accesses) => {
          const c = new DataCache(SMALL);
          const ref = new ReferenceCache(SMALL);
          for (const [mfn, line] of accesses) {
            expect(c.access(mfn, line)).toBe(ref.access(mfn, line));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("counts a whole frame's lines by level", () => {
    const c = new DataCache(SMALL);
    const counts = new Float64Array(4);
    c.accessFrame(7, counts, 0);
    expect([...counts]).toEqual([0, 0, 0, 64]);
    counts.fill(0);
    c.accessFrame(7, counts, 0);
    // The LLC holds 32 lines, so the first half of the frame was evicted by the second.
    expect(counts[CACHE_DRAM]).toBe(64);
  });

  it("keeps its LRU order across a renumbering of the stamps", () => {
    const level = new CacheLevel({ bytes: 2 * 64, ways: 2 });
    const internals = level as unknown as { clock: number };
    // 20 is filled second but 10 used last; then 10 and 20 are swapped around the overflow.
    level.fill(20, 0);
    level.fill(10, 0);
    level.probe(20, 0);
    level.probe(10, 0);
    internals.clock = 0x40000000 - 1;
    level.probe(20, 0); // the clock overflows here: stamps are renumbered, 20 is the latest
    level.fill(30, 0); // so 10 is the least recent
    expect(level.holds(10)).toBe(false);
    expect(level.holds(20)).toBe(true);
    expect(level.holds(30)).toBe(true);
  });
});
