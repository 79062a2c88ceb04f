/**
 * The walker's shortcuts for the fault path must answer as the general walk does.
 * - Walker.walkOrMiss answers the walk that stops at a not-present entry from the fast walk's
 *   reads (the vCPU's miss path then walks once, not twice): the same frame, or the same
 *   not-present fault after the same references, as walk().
 * Random model tests over small table trees with any entries (not present, large, reserved
 * bits, NX, A/D missing, tables beyond memory or never written), then the shortcut's own
 * contract: it is taken.
 */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KIND_SUP_READ, KIND_USER_READ, KIND_USER_WRITE } from "../src/hw/access.js";
import { HostMemory } from "../src/hw/memory.js";
import { PTE_A, PTE_D, PTE_HI_NX, PTE_P, PTE_PS, PTE_RW, PTE_US } from "../src/hw/pte.js";
import {
  faultCode,
  type PagingControl,
  WALK_NOT_PRESENT,
  WALK_OK,
  WALK_SLOW,
  Walker,
} from "../src/hw/walker.js";

const FRAMES = 64;
const ROOT = 1;
const FLAGS = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;

/** Address of table indices (i4, i3, i2, i1). */
function gvaOf(i4: number, i3: number, i2: number, i1: number): number {
  return i4 * 2 ** 39 + i3 * 2 ** 30 + i2 * 2 ** 21 + i1 * 2 ** 12;
}

/** A path of present tables 1 -> 2 -> 3 -> 4 at index 0 of each level, leaf frame 40. */
function path(): HostMemory {
  const mem = new HostMemory(FRAMES);
  mem.write64(1, 0, ((2 << 12) | FLAGS) >>> 0, 0);
  mem.write64(2, 0, ((3 << 12) | FLAGS) >>> 0, 0);
  mem.write64(3, 0, ((4 << 12) | FLAGS) >>> 0, 0);
  mem.write64(4, 0, ((40 << 12) | FLAGS) >>> 0, 0);
  return mem;
}

const arbEntry = fc.record({
  frame: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constant(FRAMES + 3)),
  flags: fc.oneof(
    { arbitrary: fc.constant(FLAGS), weight: 3 },
    { arbitrary: fc.constant(0), weight: 2 },
    { arbitrary: fc.constantFrom(FLAGS | PTE_PS, FLAGS & ~PTE_A, FLAGS & ~PTE_D), weight: 1 },
    { arbitrary: fc.nat(0x1ff), weight: 1 },
  ),
  hi: fc.constantFrom(0, PTE_HI_NX, 0x800, PTE_HI_NX | 0x800),
});

describe("Walker.walkOrMiss", () => {
  it("answers as walk() does, in any table tree", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 8 }), fc.nat(1), arbEntry), {
          maxLength: 24,
        }),
        fc.tuple(fc.nat(1), fc.nat(1), fc.nat(1), fc.nat(1)),
        fc.constantFrom(KIND_SUP_READ, KIND_USER_READ, KIND_USER_WRITE),
        fc.boolean(),
        (writes, [i4, i3, i2, i1], kind, nxe) => {
          const mem = path();
          for (const [table, index, e] of writes) {
            if (e.flags === 0 && index === 0) mem.write64(table, index, 0, 0);
            else mem.write64(table, index, ((e.frame << 12) | e.flags) >>> 0, e.hi);
          }
          const ctl: PagingControl = { wp: true, nxe, gbpages: true };
          const gva = gvaOf(i4, i3, i2, i1);
          const fast = new Walker();
          const answer = fast.walkOrMiss(mem, ROOT, gva, kind, ctl);
          const slow = new Walker();
          const result = slow.walk(mem, ROOT, gva, kind, ctl);
          if (answer >= 0) {
            expect(result).toBe(WALK_OK);
            expect(answer).toBe(slow.frame);
          } else if (answer === WALK_NOT_PRESENT) {
            expect(result).toBe(faultCode(kind, false, false, nxe));
            expect(fast.refs).toBe(slow.refs);
            expect(fast.lastLevel).toBe(slow.lastLevel);
          } else expect(answer).toBe(WALK_SLOW);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("answers a missing entry at each level without walking again", () => {
    const ctl: PagingControl = { wp: true, nxe: true, gbpages: false };
    for (let level = 4; level >= 1; level--) {
      const mem = path();
      const table = 5 - level; // the path's table of `level` is frame 1 (L4) .. 4 (L1)
      mem.write64(table, 0, 0, 0);
      const w = new Walker();
      expect(w.walkOrMiss(mem, ROOT, gvaOf(0, 0, 0, 0), KIND_USER_WRITE, ctl)).toBe(
        WALK_NOT_PRESENT,
      );
      expect(w.refs).toBe(5 - level);
    }
    // A reserved bit above the missing entry is walk()'s RSVD fault, not a missing entry.
    const mem = path();
    mem.write64(2, 0, ((3 << 12) | FLAGS) >>> 0, 0x800);
    mem.write64(4, 0, 0, 0);
    expect(new Walker().walkOrMiss(mem, ROOT, 0, KIND_USER_READ, ctl)).toBe(WALK_SLOW);
  });
});
