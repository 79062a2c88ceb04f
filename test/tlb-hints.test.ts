/**
 * TlbLevel.find's way hints against the plain scan (lookup()'s rule: the first way of the set
 * whose entry matches the tagged key or the global one, valid). A hint may only skip the scan
 * when it is that first way, so random fills, lookups, INVLPGs and tag flushes, with global and
 * tagged entries of one page in one set and keys that share a hint index, must find the same
 * slot as the scan at every step.
 */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MASK_ALL } from "../src/hw/access.js";
import { Tlb } from "../src/hw/tlb.js";
import { F_GEN, F_HI, SLOT } from "../src/hw/tlb-layout.js";
import type { TlbLevel } from "../src/hw/tlb-level.js";

/** Tags 0 and 1 are address spaces; tag 2 is their global pages. */
const GLOBAL = 2;
const TAGS = 3;

/**
 * Keys of a 4-set level: 1 and 5 share a set; 1, 1 + 4096 and 1 + 8192 share a set and a hint
 * index (the level has 4096 hints); 2 is alone in its set.
 */
const KEYS = [1, 5, 1 + 4096, 1 + 8192, 2];

/** The first way of keyLo's set matching (keyHi, keyLo) or (globalHi, keyLo), valid; or -1. */
function scan(level: TlbLevel, keyHi: number, keyLo: number, gens: Int32Array): number {
  const base = (keyLo & level.setMask) * level.ways;
  for (let s = base; s < base + level.ways; s++) {
    const hi = level.d[s * SLOT + F_HI];
    const valid = level.d[s * SLOT + F_GEN] === gens[hi >>> 16];
    if (level.keys[s] === keyLo && valid && (hi === keyHi || hi === GLOBAL * 65536)) return s;
  }
  return -1;
}

type Op =
  | { op: "fill"; tag: number; key: number; frame: number; stale: boolean }
  | { op: "find"; tag: number; key: number }
  | { op: "invlpg"; tag: number; key: number }
  | { op: "flush"; tag: number };

const tag = fc.integer({ min: 0, max: TAGS - 1 });
const space = fc.integer({ min: 0, max: 1 });
const key = fc.constantFrom(...KEYS);
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("fill" as const),
      tag,
      key,
      frame: fc.nat(99),
      stale: fc.boolean(),
    }),
  },
  { weight: 6, arbitrary: fc.record({ op: fc.constant("find" as const), tag: space, key }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("invlpg" as const), tag, key }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("flush" as const), tag }) },
);

/** Run `ops` on the L2 of a 4-set, 4-way TLB, checking every find against the scan. */
function replay(ops: Op[]): void {
  const tlb = new Tlb(16, 4, 16, 4);
  tlb.haveTags(TAGS);
  const level = tlb.l2;
  for (const o of ops) {
    const gens = tlb.tagGens;
    if (o.op === "fill") {
      // A stale fill (a walk that raced a flush) writes an entry that is never valid.
      const gen = o.stale ? gens[o.tag] - 1 : gens[o.tag];
      level.fill(o.tag * 65536, o.key, gen, o.frame, MASK_ALL, gens);
    } else if (o.op === "invlpg") level.invalidate(o.tag * 65536, o.key);
    else if (o.op === "flush") tlb.flushTag(o.tag);
    else {
      const keyHi = o.tag * 65536;
      const want = scan(level, keyHi, o.key, gens);
      const got = level.find(keyHi, o.key, gens[o.tag], GLOBAL * 65536, gens[GLOBAL]);
      expect(got, `find(tag ${o.tag}, key ${o.key}) after ${JSON.stringify(ops)}`).toBe(want);
      if (got >= 0)
        expect(level.lookup(keyHi, o.key, gens[o.tag], GLOBAL * 65536, gens[GLOBAL])).toBe(got);
    }
  }
}

describe("TLB way hints", () => {
  it("L2 is hinted, L1 is not: a hint index fixes the set", () => {
    const tlb = new Tlb();
    expect(tlb.l2.hintMask).toBeGreaterThanOrEqual(4095);
    expect(tlb.l2.hintMask & tlb.l2.setMask).toBe(tlb.l2.setMask);
    expect(tlb.l1.hintMask).toBe(0);
  });

  it("a global entry filled before the hinted way is found first", () => {
    // Tag 0's entry in way 1 (way 0 taken by another key of the set), found and hinted; then the
    // global entry of the same page replaces way 0. The scan finds way 0 first, so must find().
    replay([
      { op: "fill", tag: 0, key: 5, frame: 1, stale: false },
      { op: "fill", tag: 0, key: 1, frame: 2, stale: false },
      { op: "find", tag: 0, key: 1 },
      { op: "invlpg", tag: 0, key: 5 },
      { op: "fill", tag: GLOBAL, key: 1, frame: 3, stale: false },
      { op: "find", tag: 0, key: 1 },
    ]);
  });

  it("a hinted entry flushed or invalidated is not found", () => {
    replay([
      { op: "fill", tag: 0, key: 1, frame: 2, stale: false },
      { op: "find", tag: 0, key: 1 },
      { op: "flush", tag: 0 },
      { op: "find", tag: 0, key: 1 },
      { op: "fill", tag: 0, key: 1, frame: 4, stale: false },
      { op: "find", tag: 0, key: 1 },
      { op: "invlpg", tag: 0, key: 1 },
      { op: "find", tag: 0, key: 1 },
    ]);
  });

  it("random sequences find what the scan finds", () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 60, size: "max" }), (ops) => {
        replay(ops);
      }),
      { numRuns: 400, seed: 1605 },
    );
  });
});
