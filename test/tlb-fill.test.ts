/**
 * TlbLevel's fills against a plain model of their rule (tlb-level.ts): a fill replaces a copy of
 * its page (valid or stale), else the first invalid way of the set, else the least recently
 * used way. TlbLevel keeps which ways are valid as a mask per set, read again from the tags
 * only after a flush (validWays / validAt), and sets wider than a mask scan their tags on each
 * fill (fillScan): random fills, lookups, INVLPGs and tag flushes must leave the same slots as
 * the model in both, at every width around the mask's.
 */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MASK_ALL } from "../src/hw/access.js";
import { F_FRAME, F_GEN, F_HI, SLOT } from "../src/hw/tlb-layout.js";
import { TlbLevel } from "../src/hw/tlb-level.js";

const TAGS = 3;

/** One slot of the model: its key, generation and frame; hi -1 is an empty slot. */
interface Slot {
  hi: number;
  lo: number;
  gen: number;
  frame: number;
  stamp: number;
}

class Model {
  readonly slots: Slot[];
  clock = 0;

  constructor(
    readonly ways: number,
    readonly sets: number,
  ) {
    this.slots = Array.from({ length: ways * sets }, () => ({
      hi: -1,
      lo: 0,
      gen: 0,
      frame: 0,
      stamp: 0,
    }));
  }

  valid(s: Slot, gens: Int32Array): boolean {
    return s.hi !== -1 && s.gen === gens[s.hi >>> 16];
  }

  set(lo: number): Slot[] {
    const base = (lo % this.sets) * this.ways;
    return this.slots.slice(base, base + this.ways);
  }

  fill(hi: number, lo: number, gen: number, frame: number, gens: Int32Array): number {
    const set = this.set(lo);
    let victim = set.find((s) => s.hi === hi && s.lo === lo);
    victim ??= set.find((s) => !this.valid(s, gens));
    victim ??= set.reduce((a, b) => (b.stamp < a.stamp ? b : a));
    Object.assign(victim, { hi, lo, gen, frame, stamp: ++this.clock });
    return this.slots.indexOf(victim);
  }

  find(hi: number, lo: number, gens: Int32Array): number {
    return this.slots.findIndex((s) => s.hi === hi && s.lo === lo && this.valid(s, gens));
  }

  lookup(hi: number, lo: number, gens: Int32Array): number {
    const i = this.find(hi, lo, gens);
    if (i >= 0) this.slots[i].stamp = ++this.clock;
    return i;
  }

  invalidate(hi: number, lo: number): void {
    for (const s of this.set(lo)) if (s.hi === hi && s.lo === lo) s.hi = -1;
  }
}

type Op =
  | { op: "fill"; tag: number; page: number; stale: boolean }
  | { op: "fillAbsent"; tag: number; page: number; stale: boolean }
  | { op: "lookup"; tag: number; page: number }
  | { op: "invlpg"; tag: number; page: number }
  | { op: "flush"; tag: number };

function arbOps(pages: number): fc.Arbitrary<Op[]> {
  const tag = fc.nat(TAGS - 1);
  const page = fc.nat(pages - 1);
  return fc.array(
    fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({ op: fc.constant("fill" as const), tag, page, stale: fc.boolean() }),
      },
      {
        weight: 4,
        arbitrary: fc.record({
          op: fc.constant("fillAbsent" as const),
          tag,
          page,
          stale: fc.boolean(),
        }),
      },
      { weight: 3, arbitrary: fc.record({ op: fc.constant("lookup" as const), tag, page }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("invlpg" as const), tag, page }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("flush" as const), tag }) },
    ),
    { minLength: 1, maxLength: 300, size: "max" },
  );
}

/** Run `ops` on a TlbLevel and the model side by side, comparing after each. */
function run(ways: number, sets: number, ops: Op[]): void {
  const level = new TlbLevel(ways * sets, ways);
  const model = new Model(ways, sets);
  const gens = new Int32Array(TAGS);
  let frame = 0;
  for (const o of ops) {
    const hi = o.tag * 65536;
    const lo = o.op === "flush" ? 0 : o.page;
    if (o.op === "fill") {
      // A stale generation: what a copy of an entry flushed since makes (an L2 hit into L1).
      const gen = o.stale ? gens[o.tag] - 1 : gens[o.tag];
      frame++;
      expect(level.fill(hi, lo, gen, frame, MASK_ALL, gens)).toBe(
        model.fill(hi, lo, gen, frame, gens),
      );
    } else if (o.op === "fillAbsent") {
      // Its precondition: no valid copy of the page.
      if (model.find(hi, lo, gens) >= 0) continue;
      const gen = o.stale ? gens[o.tag] - 1 : gens[o.tag];
      frame++;
      level.fillAbsent(hi, lo, gen, frame, MASK_ALL, gens);
      model.fill(hi, lo, gen, frame, gens);
    } else if (o.op === "lookup") {
      // The global key: a tag with no entries (TAGS), whose generation stays 0.
      const found = level.lookup(hi, lo, gens[o.tag], TAGS * 65536, 0);
      expect(found).toBe(model.lookup(hi, lo, gens));
    } else if (o.op === "invlpg") {
      level.invalidate(hi, lo);
      model.invalidate(hi, lo);
    } else {
      gens[o.tag]++;
      level.flushes++;
    }
    // One comparison per step (a string each side), so that long runs stay quick.
    const got = levelState(level, gens);
    const want = modelState(model, gens);
    if (got !== want) expect(got, `after ${JSON.stringify(o)}`).toBe(want);
  }
}

/**
 * Each slot's entry while it is valid (its key, generation and frame), and each set's ways
 * from the least recently used to the most: what a fill's choices leave behind.
 */
function state(
  ways: number,
  slots: number,
  entry: (s: number) => string | null,
  stamp: (s: number) => number,
): string {
  const parts: string[] = [];
  for (let s = 0; s < slots; s++) parts.push(entry(s) ?? "-");
  for (let base = 0; base < slots; base += ways) {
    const set = Array.from({ length: ways }, (_, w) => base + w);
    parts.push(set.sort((x, y) => stamp(x) - stamp(y)).join(","));
  }
  return parts.join(" ");
}

function levelState(level: TlbLevel, gens: Int32Array): string {
  return state(
    level.ways,
    level.entries,
    (s) => {
      if (!level.isValid(s, gens)) return null;
      const i = s * SLOT;
      return `${level.keys[s]}/${level.d[i + F_HI]}/${level.d[i + F_GEN]}/${level.d[i + F_FRAME]}`;
    },
    (s) => level.stamps[s],
  );
}

function modelState(model: Model, gens: Int32Array): string {
  return state(
    model.ways,
    model.slots.length,
    (s) => {
      const m = model.slots[s];
      return model.valid(m, gens) ? `${m.lo}/${m.hi}/${m.gen}/${m.frame}` : null;
    },
    (s) => model.slots[s].stamp,
  );
}

describe("TlbLevel.fill against the model of its rule", () => {
  // 4 and 12: the default L1 and L2; 31: the widest mask; 32 and 40: wider sets (fillScan).
  for (const ways of [1, 4, 12, 31, 32, 40]) {
    it(`${ways} ways`, () => {
      const sets = ways > 12 ? 1 : 4;
      fc.assert(
        fc.property(arbOps(ways * sets * 2), (ops) => run(ways, sets, ops)),
        { numRuns: 50 },
      );
    });
  }
});
