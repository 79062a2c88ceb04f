import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IntMap } from "../src/vmm/shadow/int-map.js";

/** Set, delete or look up keys, over few keys so that probe runs collide, and some large ones. */
const op = fc.record({
  kind: fc.constantFrom("set", "delete", "get"),
  key: fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 80 }).map((k) => k * 512) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 ** 31 - 1 }) },
  ),
  value: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
});

describe("the int32 hash of the shadow code", () => {
  it("agrees with a Map through sets, deletions and growth", () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 50, maxLength: 800, size: "max" }), (ops) => {
        const map = new IntMap();
        const model = new Map<number, number>();
        for (const { kind, key, value } of ops) {
          if (kind === "set") {
            map.set(key, value);
            model.set(key, value);
          } else if (kind === "delete") {
            expect(map.delete(key)).toBe(model.delete(key));
          } else {
            expect(map.get(key, -7)).toBe(model.get(key) ?? -7);
          }
        }
        expect(map.size).toBe(model.size);
        for (const [key, value] of model) expect(map.get(key)).toBe(value);
        expect(new Map(map.entries())).toEqual(model);
      }),
      { numRuns: 100 },
    );
  });

  it("finds nothing for a negative key, and refuses to hold one", () => {
    const map = new IntMap();
    map.set(5, 1);
    expect(map.find(-1)).toBe(-1);
    expect(map.get(-1, 9)).toBe(9);
    expect(() => map.insert(-1, 0)).toThrow(/not a non-negative int32/);
    expect(() => map.insert(2 ** 31, 0)).toThrow(/not a non-negative int32/);
  });
});
