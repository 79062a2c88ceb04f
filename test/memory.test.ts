/**
 * Host memory: the table-slot cache the walker reads through (HostMemory.tableSlot) always
 * answers what the frame metadata says, whatever materializes, releases and reuses slots.
 */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HostMemory } from "../src/hw/memory.js";

/** The slot tableSlot() must answer: the metadata's, -1 beyond memory. */
function expectedSlot(mem: HostMemory, mfn: number): number {
  return mfn < mem.frames ? mem.slotOf(mfn) : -1;
}

describe("HostMemory.tableSlot", () => {
  it("follows a frame through materialize, release and a reuse of its slot", () => {
    const mem = new HostMemory(10000);
    expect(mem.tableSlot(5)).toBe(-1);
    mem.write64(5, 0, 1, 0);
    const slot = mem.tableSlot(5);
    expect(slot).toBe(mem.slotOf(5));
    expect(slot).toBeGreaterThanOrEqual(0);
    mem.zeroFrame(5); // releases the slot
    expect(mem.tableSlot(5)).toBe(-1);
    mem.write64(4096 + 5, 0, 1, 0); // same cache entry as frame 5, takes its old slot
    expect(mem.tableSlot(4096 + 5)).toBe(slot);
    expect(mem.tableSlot(5)).toBe(-1);
    expect(mem.tableSlot(10000)).toBe(-1);
  });

  it("agrees with the metadata over random stores, zeroes, copies and lookups (fast-check)", () => {
    const op = fc.record({
      what: fc.constantFrom("store", "zero", "copy", "look"),
      // Frames that share cache entries (multiples of 4096 apart), and one beyond memory.
      mfn: fc.constantFrom(0, 1, 7, 4096, 4097, 4103, 8192, 8199, 12288),
      other: fc.constantFrom(0, 1, 7, 4096, 4097, 8192),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const mem = new HostMemory(12000);
        for (const o of ops) {
          if (o.what === "store" && o.mfn < mem.frames) mem.write64(o.mfn, 3, 0x1234, 0);
          else if (o.what === "zero" && o.mfn < mem.frames) mem.zeroFrame(o.mfn);
          else if (o.what === "copy" && o.mfn < mem.frames) mem.copyFrame(o.mfn, o.other);
          if (mem.tableSlot(o.mfn) !== expectedSlot(mem, o.mfn)) return false;
          if (mem.tableSlot(o.other) !== expectedSlot(mem, o.other)) return false;
        }
        return true;
      }),
      { numRuns: 500, seed: 0x5107 },
    );
  });
});
