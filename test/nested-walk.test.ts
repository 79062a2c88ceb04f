/**
 * The 2D walker against itself: with no EPT cache modelled it keeps, for its own speed, the EPT
 * L1 table of each 2 MiB of guest-physical space (NestedWalker's memo). Whatever the EPT code
 * changes above L1, a walk must answer, count and fault exactly as a fresh walker's does.
 */

import { describe, expect, test } from "vitest";
import { directMap } from "../src/guest/layout.js";
import { KIND_SUP_READ, KIND_USER_READ, KIND_USER_WRITE } from "../src/hw/access.js";
import { EPT_R, EPT_RWX } from "../src/hw/ept.js";
import { HostMemory } from "../src/hw/memory.js";
import { EPT_VIOLATION, NESTED_OK, NestedWalker } from "../src/hw/nested.js";
import { PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US, pteHi, pteLo } from "../src/hw/pte.js";
import { newCounters } from "../src/metrics/counters.js";
import { EptTables } from "../src/vmm/hap/ept.js";
import { bootGuest } from "./support/guest.js";

const NO_CACHES = { pwc: false, eptPwc: false, nestedTlb: false };
const CTL = { wp: true, nxe: true, gbpages: false };
/** Guest frames of the guest's L4..L1 tables, and of the page gva 0 maps. */
const TABLE_GFNS = [1, 2, 3, 4];
const DATA_GFN = 10;
/** Host frames: EPT tables from 100 up; the guest's frames at 600 + gfn, then at 1024 + gfn. */
const FIRST_BLOCK = 600;
const SECOND_BLOCK = 1024;

/** A guest whose tables map gva 0 to DATA_GFN, at host frames `base` + gfn. */
function writeGuest(mem: HostMemory, base: number): void {
  const bits = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
  for (let level = 4; level >= 1; level--) {
    const next = level === 1 ? DATA_GFN : TABLE_GFNS[5 - level];
    mem.write64(base + TABLE_GFNS[4 - level], 0, pteLo(next, bits), pteHi(next, false));
  }
}

function setup() {
  const mem = new HostMemory(2048);
  let nextTable = 100;
  const released: number[] = [];
  const ept = new EptTables(
    mem,
    () => nextTable++,
    (mfn) => {
      released.push(mfn);
      mem.zeroFrame(mfn);
    },
    newCounters(),
  );
  for (const gfn of [...TABLE_GFNS, DATA_GFN]) ept.map(gfn, FIRST_BLOCK + gfn, EPT_RWX, 1);
  writeGuest(mem, FIRST_BLOCK);
  const walker = new NestedWalker(NO_CACHES);
  ept.onTablesChanged = () => walker.eptTablesChanged();
  return { mem, ept, walker, released };
}

/** One walk of gva 0 by `walker`, and what a walker that never walked before says. */
function walkBoth(mem: HostMemory, ept: EptTables, walker: NestedWalker, kind: number) {
  const outcome = (w: NestedWalker) => {
    const result = w.walk(mem, ept.root, TABLE_GFNS[0], 0, 0, kind, CTL, 0, 0);
    // The outputs that the result says are meaningful (a failed walk leaves the others be).
    const frame = result === NESTED_OK ? w.frame : -1;
    const gfn = result === EPT_VIOLATION ? w.violationGfn : -1;
    return { result, frame, refs: w.refs, eptRefs: w.eptRefs, gfn };
  };
  return { kept: outcome(walker), fresh: outcome(new NestedWalker(NO_CACHES)) };
}

describe("the 2D walker's shortcut past the EPT's upper levels", () => {
  test("walks after the first read the L1 entries only, and count all 24 references", () => {
    const { mem, ept, walker } = setup();
    for (let i = 0; i < 3; i++) {
      const { kept, fresh } = walkBoth(mem, ept, walker, KIND_USER_READ);
      expect(kept).toEqual(fresh);
      expect(kept).toMatchObject({ result: NESTED_OK, frame: FIRST_BLOCK + DATA_GFN, refs: 24 });
    }
  });

  test("a 2 MiB EPT leaf in place of an L1 table: the table it named is not read again", () => {
    const { mem, ept, walker, released } = setup();
    walkBoth(mem, ept, walker, KIND_USER_READ);
    // The same guest, moved to an aligned block that one L2 leaf maps; its L1 table goes.
    writeGuest(mem, SECOND_BLOCK);
    expect(ept.map(0, SECOND_BLOCK, EPT_RWX, 2)).toBe(true);
    expect(released).toHaveLength(1);
    const { kept, fresh } = walkBoth(mem, ept, walker, KIND_USER_READ);
    expect(kept).toEqual(fresh);
    // Three EPT references per translation now: 4 guest + 5 * 3.
    expect(kept).toMatchObject({ result: NESTED_OK, frame: SECOND_BLOCK + DATA_GFN, refs: 19 });
  });

  test("upper levels that forbid a write: the write stops where the full walk stops", () => {
    const { mem, ept, walker } = setup();
    // The root's entry made read-only, and the EPT code says so (as its own writes do).
    mem.read64(ept.root, 0);
    mem.write64(ept.root, 0, (mem.lo & ~EPT_RWX) | EPT_R, mem.hi);
    ept.onTablesChanged();
    expect(walkBoth(mem, ept, walker, KIND_USER_READ).kept.result).toBe(NESTED_OK);
    const { kept, fresh } = walkBoth(mem, ept, walker, KIND_USER_WRITE);
    expect(kept).toEqual(fresh);
    // Four guest tables read through 4 EPT references each, then the data gfn's root entry.
    expect(kept).toMatchObject({ result: EPT_VIOLATION, gfn: DATA_GFN, refs: 21 });
  });

  test("another EPT root: nothing kept from the first is used", () => {
    const { mem, ept, walker } = setup();
    walkBoth(mem, ept, walker, KIND_USER_READ);
    let nextTable = 300;
    const other = new EptTables(
      mem,
      () => nextTable++,
      () => {},
      newCounters(),
    );
    for (const gfn of [...TABLE_GFNS, DATA_GFN]) other.map(gfn, SECOND_BLOCK + gfn, EPT_RWX, 1);
    writeGuest(mem, SECOND_BLOCK);
    const { kept, fresh } = walkBoth(mem, other, walker, KIND_USER_READ);
    expect(kept).toEqual(fresh);
    expect(kept.frame).toBe(SECOND_BLOCK + DATA_GFN);
  });
});

describe("through HAP: the VMM tells the walker of its EPT changes", () => {
  test("a 2 MiB block split, walked through its L1 table, then whole again", () => {
    const g = bootGuest(16, { mode: "hap", eptLargePages: true });
    const p2m = g.vmm!.p2m;
    const B = 3584;
    expect(g.cpu.access(directMap(B), KIND_SUP_READ, 0)).toBeGreaterThanOrEqual(0);
    p2m.removePage(B); // splits the 2 MiB leaf into an L1 table
    // A walk through the new L1 table (the walker keeps it for the block).
    expect(g.cpu.access(directMap(B + 1), KIND_SUP_READ, 0)).toBeGreaterThanOrEqual(0);
    for (let i = 1; i < 512; i++) p2m.removePage(B + i);
    for (let i = 0; i < 512; i++) p2m.addPage(B + i); // populate-on-demand
    // The block is populated whole again: one 2 MiB leaf in place of the L1 table, given back.
    for (let i = 0; i < 512; i += 37) {
      expect(g.cpu.access(directMap(B + i), KIND_SUP_READ, 0)).toBe(p2m.mfn[B + i]);
    }
    g.check();
  });
});
