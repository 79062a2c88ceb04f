/**
 * The guest kernel reaches its direct map through the vCPU's *Halves methods (an address as
 * two int32 words, so that none is a boxed double): the halves must name the address
 * directMap() does, and the vCPU's halves methods the same word as its one-number ones.
 */

import { describe, expect, it } from "vitest";
import { benchGuest } from "../src/bench/guest.js";
import { directMap, directMapHi, directMapLo } from "../src/guest/layout.js";

describe("the direct map in halves", () => {
  it("directMapLo / directMapHi are directMap() + offset, across the 2^32 carries", () => {
    // gfn 2^19 sets bit 31 of the low half, 2^20 carries into the high half.
    const gfns = [0, 1, 2 ** 19 - 1, 2 ** 19, 2 ** 20 - 1, 2 ** 20, 2 ** 20 + 5, 2 ** 30 + 7];
    for (const gfn of gfns) {
      for (const offset of [0, 8, 2048, 4088]) {
        const lo = directMapLo(gfn, offset);
        expect(lo | 0).toBe(lo); // an int32
        expect(directMapHi(gfn) * 2 ** 32 + (lo >>> 0)).toBe(directMap(gfn) + offset);
      }
    }
  });

  it("load64Halves, store64Halves and zeroPageHalves reach the words load64, store64 and zeroPage do", () => {
    for (const mode of ["native", "shadow"] as const) {
      // 6 GiB: gfns past 2^20, whose direct-map addresses carry into the high half.
      const { kernel } = benchGuest(mode, 6 * 2 ** 30, 16);
      const cpu = kernel.cpu;
      for (const gfn of [kernel.frames.alloc(), 2 ** 20 + 3, 3 * 2 ** 19 - 5]) {
        const hi = directMapHi(gfn);
        expect(cpu.store64Halves(directMapLo(gfn, 16), hi, 0x12345678, 0x9abc)).toBe(0);
        expect(cpu.load64(directMap(gfn) + 16)).toBe(0);
        expect([cpu.lo, cpu.hi]).toEqual([0x12345678, 0x9abc]);
        expect(cpu.store64(directMap(gfn) + 4088, 0xfedcba98, 7)).toBe(0);
        expect(cpu.load64Halves(directMapLo(gfn, 4088), hi)).toBe(0);
        expect([cpu.lo >>> 0, cpu.hi]).toEqual([0xfedcba98, 7]);
        expect(cpu.zeroPageHalves(directMapLo(gfn, 0), hi)).toBe(0);
        expect(cpu.load64(directMap(gfn) + 16)).toBe(0);
        expect([cpu.lo, cpu.hi]).toEqual([0, 0]);
      }
    }
  });
});
