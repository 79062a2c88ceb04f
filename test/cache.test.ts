import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareModes, parseScenario, Simulation } from "../src/api/index.js";
import { DATA_CACHE_GEOMETRY } from "../src/config/defaults.js";
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
    expect(c.l1.holds(0, 0)).toBe(true);
    expect(c.l1.holds(0, 2)).toBe(false);
    expect(c.access(0, 2)).toBe(CACHE_L2);
    // Lines 0, 4, 8, 12, 16 share L2 set 0 (4 ways): the fifth pushes line 0 out to the LLC.
    for (const line of [4, 8, 12, 16]) c.access(0, line);
    expect(c.l2.holds(0, 0)).toBe(false);
    expect(c.access(0, 0)).toBe(CACHE_LLC);
  });

  it("answers as a reference LRU model does, for any access sequence", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 63 })), {
          minLength: 100,
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

  it("brings a whole frame in as 64 accesses in order do, for any earlier accesses", () => {
    // The default geometry (the frame-wise loop: 64 sets or more at every level) and a small
    // one (fewer sets: line by line). Frames 32 apart share their sets at every level of both,
    // so that 41 of them overflow the ways and evict.
    for (const geometry of [DATA_CACHE_GEOMETRY, SMALL]) {
      fc.assert(
        fc.property(
          fc.array(
            fc.tuple(
              fc.boolean(),
              fc.integer({ min: 0, max: 40 }),
              fc.integer({ min: 0, max: 63 }),
            ),
            { minLength: 50, maxLength: 300 },
          ),
          (steps) => {
            const c = new DataCache(geometry);
            const ref = new DataCache(geometry);
            for (const [whole, mfn, line] of steps) {
              if (whole) {
                c.touchFrame(mfn * 32);
                for (let l = 0; l < 64; l++) ref.access(mfn * 32, l);
              } else expect(c.access(mfn * 32, line)).toBe(ref.access(mfn * 32, line));
            }
            for (const level of ["l1", "l2", "llc"] as const) {
              const [a, b] = [c[level].tags, ref[level].tags];
              expect(Buffer.compare(Buffer.from(a.buffer), Buffer.from(b.buffer)), level).toBe(0);
            }
          },
        ),
        { numRuns: 40 },
      );
    }
  });

  it("keeps each set in order of use: a hit moves a line first, a miss evicts the last", () => {
    const level = new CacheLevel({ bytes: 3 * 64, ways: 3 });
    const use = (line: number) => level.lookupOrFill(0, line);
    expect([use(1), use(2), use(3)]).toEqual([false, false, false]);
    expect([...level.tags]).toEqual([3, 2, 1]);
    expect(use(1)).toBe(true);
    expect([...level.tags]).toEqual([1, 3, 2]);
    expect(use(4)).toBe(false); // 2, the least recent, goes
    expect([...level.tags]).toEqual([4, 1, 3]);
    expect(level.holds(0, 2)).toBe(false);
  });
});

describe("the data caches in a run", () => {
  const scenario = (dataCache: boolean) =>
    parseScenario(
      `
hardware: { data_cache: ${dataCache} }
run: { accesses: 20000 }
domains:
  - name: d
    memory: 64MiB
    processes:
      - { name: db, kind: database, working_set: 8MiB, pattern: { type: zipf, s: 0.99 } }
`,
      "caches.yaml",
    );

  it("counts every data access and every walk reference once, by the level that held it", () => {
    for (const mode of ["native", "shadow", "hap", "pv"] as const) {
      const c = new Simulation(scenario(true), { mode }).run().domains[0].counters;
      const data = c.data_from_l1d + c.data_from_l2 + c.data_from_llc + c.data_from_dram;
      const walk = c.walk_from_l1d + c.walk_from_l2 + c.walk_from_llc + c.walk_from_dram;
      // Data: every read, write and fetch the vCPU completed; not the stores the shadow VMM
      // emulates (counted as writes: the VMM's own work).
      const done = c.reads + c.writes + c.fetches;
      if (mode === "shadow") {
        expect(data).toBeGreaterThanOrEqual(done - c.shadow_emulate_write);
        expect(data).toBeLessThan(done);
      } else expect(data, mode).toBe(done);
      expect(walk, mode).toBe(c.walk_refs);
      // First touches come from DRAM; a hot page's lines stay in L1.
      expect(c.data_from_dram, mode).toBeGreaterThan(0);
      expect(c.data_from_l1d, mode).toBeGreaterThan(0);
    }
  });

  it("changes nothing the guest sees, and counts nothing when off", () => {
    const on = compareModes(scenario(true), ["native", "shadow", "hap", "pv"]);
    const off = compareModes(scenario(false), ["native", "shadow", "hap", "pv"]);
    expect(on.same_guest_view).toBe(true);
    for (let i = 0; i < 4; i++) {
      const a = on.results[i].report.domains[0];
      const b = off.results[i].report.domains[0];
      expect(a.processes).toEqual(b.processes);
      expect(a.counters.walk_refs).toBe(b.counters.walk_refs);
      expect(b.counters.data_from_l1d + b.counters.walk_from_dram).toBe(0);
    }
  });
});
