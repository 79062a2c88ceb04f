/**
 * The walk memo (src/hw/walk-memo.ts) is a shortcut for the batched path's walks: a walk that
 * takes its upper levels from it must give what a walk reading every level gives, whatever was
 * done to the tables in between. A random model test: tables are written, A/D bits set, frames
 * zeroed, copied, restored, given a digest or written as data, roots and EFER.NXE change, and
 * after each step a memo walk (Walker.walkMemoHalves, one walker kept throughout) is compared
 * with a fresh walker's walkFastHalves (no memo). Then the memo's own contract: it is used (a
 * walk of a region it holds reads only the leaf) and it grows only when it is short of room.
 */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KIND_SUP_WRITE, KIND_USER_READ, KIND_USER_WRITE } from "../src/hw/access.js";
import { HostMemory } from "../src/hw/memory.js";
import { PTE_A, PTE_D, PTE_G, PTE_HI_NX, PTE_P, PTE_PS, PTE_RW, PTE_US } from "../src/hw/pte.js";
import { regionOf } from "../src/hw/walk-memo.js";
import { type PagingControl, WALK_SLOW, Walker } from "../src/hw/walker.js";

const FRAMES = 256;
/** Table frames by level; two roots. */
const ROOTS = [1, 2];
const TABLES: Record<number, number[]> = { 3: [3, 4], 2: [5, 6], 1: [7, 8, 9] };
const ALL_TABLES = [...ROOTS, ...TABLES[3], ...TABLES[2], ...TABLES[1]];
const FLAGS = PTE_P | PTE_RW | PTE_US | PTE_A;

function entryLo(frame: number, flags: number): number {
  return ((frame << 12) | flags) >>> 0;
}

/** A world every walk of the test's addresses can complete in: each table points down. */
function world(): HostMemory {
  const mem = new HostMemory(FRAMES);
  for (const root of ROOTS) {
    for (let i = 0; i < 2; i++) mem.write64(root, i, entryLo(TABLES[3][i], FLAGS), 0);
  }
  for (const t of TABLES[3])
    for (let i = 0; i < 2; i++) mem.write64(t, i, entryLo(TABLES[2][i], FLAGS), 0);
  for (const t of TABLES[2])
    for (let i = 0; i < 2; i++) mem.write64(t, i, entryLo(TABLES[1][i], FLAGS), 0);
  for (const [n, t] of TABLES[1].entries()) {
    for (let i = 0; i < 4; i++) mem.write64(t, i, entryLo(100 + n * 4 + i, FLAGS | PTE_D), 0);
  }
  return mem;
}

/** Address of indices (i4, i3, i2, i1) as int32 halves. */
function halves(i4: number, i3: number, i2: number, i1: number): [number, number] {
  const gva = i4 * 2 ** 39 + i3 * 2 ** 30 + i2 * 2 ** 21 + i1 * 2 ** 12;
  return [(gva % 2 ** 32) | 0, Math.floor(gva / 2 ** 32)];
}

const arbIdx = fc.tuple(fc.nat(1), fc.nat(1), fc.nat(1), fc.nat(3));
const arbTable = fc.constantFrom(...ALL_TABLES);
/** An entry a table may be given: a pointer to any table or frame, with random flags. */
const arbEntry = fc.record({
  frame: fc.oneof(arbTable, fc.integer({ min: 100, max: 140 }), fc.constant(FRAMES + 5)),
  flags: fc.oneof(
    { arbitrary: fc.constant(FLAGS), weight: 4 },
    {
      arbitrary: fc.constantFrom(FLAGS | PTE_D, FLAGS | PTE_G, FLAGS | PTE_PS, FLAGS & ~PTE_A),
      weight: 2,
    },
    { arbitrary: fc.nat(0x1ff), weight: 1 },
  ),
  nx: fc.boolean(),
});

const arbStep = fc.oneof(
  {
    arbitrary: fc.record({
      op: fc.constant("walk" as const),
      idx: arbIdx,
      root: fc.constantFrom(...ROOTS),
      kind: fc.constantFrom(KIND_USER_READ, KIND_USER_WRITE, KIND_SUP_WRITE),
    }),
    weight: 8,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("write64" as const),
      table: arbTable,
      i: fc.nat(3),
      e: arbEntry,
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("orLo" as const),
      table: arbTable,
      i: fc.nat(3),
      bits: fc.constantFrom(PTE_A, PTE_D, PTE_PS, PTE_P),
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ op: fc.constant("zero" as const), table: arbTable }), weight: 1 },
  {
    arbitrary: fc.record({ op: fc.constant("copy" as const), table: arbTable, from: arbTable }),
    weight: 1,
  },
  {
    arbitrary: fc.record({ op: fc.constant("restore" as const), table: arbTable, from: arbTable }),
    weight: 1,
  },
  {
    arbitrary: fc.record({ op: fc.constant("digest" as const), table: arbTable, d: fc.nat() }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("data" as const),
      table: arbTable,
      i: fc.nat(3),
      v: fc.nat(),
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ op: fc.constant("nxe" as const), on: fc.boolean() }), weight: 1 },
);

describe("the walk memo", () => {
  it("gives what a walk of every level gives, whatever the tables went through (fast-check)", () => {
    fc.assert(
      fc.property(fc.array(arbStep, { minLength: 1, maxLength: 60 }), (steps) => {
        const mem = world();
        const memoWalker = new Walker();
        const ctl: PagingControl = { wp: true, nxe: true, gbpages: true };
        let memoWalks = 0;
        for (const s of steps) {
          switch (s.op) {
            case "walk": {
              const [lo, hi] = halves(...s.idx);
              const fresh = new Walker();
              const want = fresh.walkFastHalves(mem, s.root, lo, hi, s.kind, ctl);
              const got = memoWalker.walkMemoHalves(mem, s.root, lo, hi, s.kind, ctl);
              expect(got).toBe(want);
              if (want !== WALK_SLOW) {
                memoWalks++;
                const out = (w: Walker) => [w.frame, w.allowed, w.global, w.dirty, w.refs];
                expect(out(memoWalker)).toEqual(out(fresh));
              }
              break;
            }
            case "write64": {
              const hi = s.e.nx ? PTE_HI_NX : 0;
              mem.write64(s.table, s.i, entryLo(s.e.frame, s.e.flags), hi);
              break;
            }
            case "orLo":
              mem.orLo(s.table, s.i, s.bits);
              break;
            case "zero":
              mem.zeroFrame(s.table);
              break;
            case "copy":
              mem.copyFrame(s.table, s.from);
              break;
            case "restore":
              mem.restoreFrame(s.table, mem.saveFrame(s.from));
              break;
            case "digest":
              mem.setDigest(s.table, s.d);
              break;
            case "data":
              mem.writeData(s.table, s.i, s.v);
              break;
            case "nxe":
              ctl.nxe = s.on;
              break;
          }
        }
        return memoWalks >= 0;
      }),
      { numRuns: 3000, seed: 0x3e30 },
    );
  });

  it("sees a bit set in an upper entry (orLo): PS there makes it a large page", () => {
    const mem = world();
    const walker = new Walker();
    const ctl: PagingControl = { wp: true, nxe: true, gbpages: true };
    const [lo, hi] = halves(0, 0, 0, 1);
    expect(walker.walkMemoHalves(mem, ROOTS[0], lo, hi, KIND_USER_READ, ctl)).toBe(101);
    mem.orLo(TABLES[2][0], 0, PTE_PS); // the L2 entry of region 0 now maps 2 MiB
    expect(walker.walkMemoHalves(mem, ROOTS[0], lo, hi, KIND_USER_READ, ctl)).toBe(WALK_SLOW);
  });

  it("forgets everything when the epoch wraps, so that an old epoch coming round matches nothing", () => {
    const mem = world();
    const walker = new Walker();
    const ctl: PagingControl = { wp: true, nxe: true, gbpages: true };
    const [lo, hi] = halves(0, 0, 0, 1);
    const old = mem.tableEpoch;
    walker.walkMemoHalves(mem, ROOTS[0], lo, hi, KIND_USER_READ, ctl);
    const region = regionOf(lo, hi);
    expect(walker.memo.find(mem, region, ROOTS[0])).toBeGreaterThanOrEqual(0);
    mem.tableEpoch = 0x7ffffffe;
    mem.write64(200, 0, 1, 0); // any table write: the epoch wraps to 1
    expect(mem.tableEpochWraps).toBe(1);
    mem.tableEpoch = old; // as if 2^31 writes later the old epoch came round
    expect(walker.memo.find(mem, region, ROOTS[0])).toBe(-1);
  });

  it("is used: a second walk of a region it holds reads only the leaf entry", () => {
    const mem = world();
    const walker = new Walker();
    const ctl: PagingControl = { wp: true, nxe: true, gbpages: true };
    const [lo, hi] = halves(1, 0, 1, 2);
    expect(walker.walkMemoHalves(mem, ROOTS[0], lo, hi, KIND_USER_READ, ctl)).toBe(100 + 4 + 2);
    // Break the upper levels behind the memo's back (a write that does not go through
    // HostMemory's methods): a walk through the memo does not see it, so it did not read them.
    const slot = mem.tableSlot(ROOTS[0]);
    mem.pool[slot * 1024 + 2] = 0;
    const [lo3] = halves(1, 0, 1, 3);
    expect(walker.walkMemoHalves(mem, ROOTS[0], lo3, hi, KIND_USER_READ, ctl)).toBe(100 + 4 + 3);
    expect(new Walker().walkFastHalves(mem, ROOTS[0], lo3, hi, KIND_USER_READ, ctl)).toBe(
      WALK_SLOW,
    );
  });

  it("starts small and grows only when regions it still holds keep being evicted", () => {
    const mem = world();
    const walker = new Walker();
    const start = walker.memo.entries;
    expect(start).toBeLessThanOrEqual(64);
    // One region walked again and again: nothing to evict.
    const ctl: PagingControl = { wp: true, nxe: true, gbpages: true };
    const [lo, hi] = halves(0, 0, 0, 1);
    for (let n = 0; n < 1000; n++)
      walker.walkMemoHalves(mem, ROOTS[0], lo, hi, KIND_USER_READ, ctl);
    expect(walker.memo.entries).toBe(start);
    // Many regions, all good at once (nothing written): the memo grows to hold them.
    for (let r = 0; r < 20 * start; r++) {
      walker.memo.store(mem, r, ROOTS[0]);
    }
    expect(walker.memo.entries).toBeGreaterThan(start);
  });
});
