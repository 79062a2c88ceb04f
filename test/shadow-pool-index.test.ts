import { describe, expect, it } from "vitest";
import { HostMemory } from "../src/hw/memory.js";
import { newCounters } from "../src/metrics/counters.js";
import { SH_FL1, SH_L1, SH_L2, SH_L4 } from "../src/vmm/shadow/page.js";
import { ShadowTables } from "../src/vmm/shadow/tables.js";

/** Make shadows in a pool of `frames`, free some, and check the indexes against the pages. */
function exercise(frames: number[]): void {
  const tables = new ShadowTables(new HostMemory(4096), frames, newCounters(), "rmap");
  const made = [
    tables.create(10, SH_L1),
    tables.create(10, SH_L2),
    tables.create(11, SH_L1),
    tables.create(512, SH_FL1),
    tables.create(12, SH_L4),
  ];
  // Held as if loaded, so that the audit does not count them unreferenced.
  for (const sp of made) sp.inUse = true;
  for (const sp of made) expect(tables.pageAt(sp.mfn)).toBe(sp);
  expect(tables.isShadowedTable(10)).toBe(true);
  expect(tables.isShadowedTable(11)).toBe(true);
  // An FL1 shadows a guest page, not a table.
  expect(tables.isShadowedTable(512)).toBe(false);
  expect(tables.shadowsOf(10).map((sp) => sp.type)).toEqual([SH_L1, SH_L2]);
  expect(tables.audit()).toBeNull();
  // Freeing an unreferenced, unpinned shadow drops it from every index.
  const l1 = made[0];
  l1.inUse = false;
  tables.maybeFree(l1);
  expect(tables.pageAt(l1.mfn)).toBeNull();
  expect(tables.shadowsOf(10).map((sp) => sp.type)).toEqual([SH_L2]);
  made[1].inUse = false;
  tables.maybeFree(made[1]);
  expect(tables.isShadowedTable(10)).toBe(false);
  expect(tables.audit()).toBeNull();
  // A frame outside the pool, and a free pool frame, hold no shadow.
  expect(tables.pageAt(4000)).toBeNull();
  expect(tables.pageAt(-1)).toBeNull();
  // The freed slots are used again and found again.
  const again = tables.create(13, SH_L1);
  again.inUse = true;
  expect(tables.pageAt(again.mfn)).toBe(again);
  expect(tables.audit()).toBeNull();
}

describe("the shadow pool's indexes (pageAt, isShadowedTable)", () => {
  it("find each shadow by its frame in a pool of consecutive frames", () => {
    exercise(Array.from({ length: 16 }, (_, i) => 100 + i));
  });

  it("find each shadow by its frame in a pool in pieces", () => {
    exercise([7, 3, 900, 901, 64, 2048, 5, 1000, 31, 77, 78, 79, 12, 600, 601, 3000]);
  });
});
