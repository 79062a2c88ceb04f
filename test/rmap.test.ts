import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ReverseMap } from "../src/vmm/shadow/rmap.js";

/** Operations on a reverse map: add or remove (mfn, loc), over few mfns so chains and probes collide. */
const op = fc.record({
  add: fc.boolean(),
  mfn: fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 60 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 ** 31 - 2 }) },
  ),
  loc: fc.integer({ min: 0, max: 2 }).map((i) => i * 2 ** 29 + 7),
});

/** The model: each mfn's locations as a multiset in a Map. */
function check(ops: { add: boolean; mfn: number; loc: number }[]): void {
  const rmap = new ReverseMap();
  const model = new Map<number, number[]>();
  for (const { add, mfn, loc } of ops) {
    const list = model.get(mfn) ?? [];
    if (add) {
      rmap.add(mfn, loc);
      list.push(loc);
      model.set(mfn, list);
    } else {
      const i = list.indexOf(loc);
      expect(rmap.remove(mfn, loc)).toBe(i >= 0);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) model.delete(mfn);
    }
    // The frame touched holds exactly the model's locations (in no promised order).
    expect(rmap.mappingsOf(mfn).sort()).toEqual((model.get(mfn) ?? []).slice().sort());
  }
  let size = 0;
  for (const list of model.values()) size += list.length;
  expect(rmap.size).toBe(size);
  expect(rmap.frameCount).toBe(model.size);
  // Every frame is still found after the deletions that moved slots around.
  for (const [mfn, list] of model) {
    expect(rmap.mappingsOf(mfn).sort()).toEqual(list.slice().sort());
  }
  const seen = new Map([...rmap.entries()].map(([m, l]) => [m, l.sort()]));
  expect(seen).toEqual(new Map([...model].map(([m, l]) => [m, l.slice().sort()])));
}

describe("the shadow reverse map", () => {
  it("holds exactly what was added and not removed (against a Map model)", () => {
    fc.assert(fc.property(fc.array(op, { minLength: 100, maxLength: 1000, size: "max" }), check), {
      numRuns: 100,
    });
  });

  it("keeps every frame reachable through growth and many deletions", () => {
    // Sequential mfns cluster in probe runs; removing every other one exercises the back-shift.
    const ops: { add: boolean; mfn: number; loc: number }[] = [];
    for (let m = 0; m < 5000; m++) ops.push({ add: true, mfn: m * 512, loc: m });
    for (let m = 0; m < 5000; m += 2) ops.push({ add: false, mfn: m * 512, loc: m });
    for (let m = 0; m < 5000; m += 3) ops.push({ add: true, mfn: m * 512, loc: m + 1 });
    check(ops);
  });

  it("costs memory by what it holds, not by the host's frames", () => {
    const rmap = new ReverseMap();
    for (let m = 0; m < 1000; m++) rmap.add(2 ** 30 + m * 4099, m * 512);
    expect(rmap.bytes).toBeLessThan(64 * 1024);
  });
});
