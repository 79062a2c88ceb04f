/**
 * The 2D walker against itself: with no EPT cache modelled it keeps, for its own speed, the EPT
 * L1 table of each 2 MiB of guest-physical space (NestedWalker's memo). Whatever the EPT code
 * changes above L1, a walk must answer, count and fault exactly as a fresh walker's does. It
 * also keeps what a walk had when it reached the guest's L1 table, per 2 MiB of guest-virtual
 * space (the guest memo): whatever is done to the guest's tables or the EPT, a walk must again
 * answer, count and fault as a fresh walker's does (a random model test).
 */

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { directMap } from "../src/guest/layout.js";
import { KIND_SUP_READ, KIND_USER_READ, KIND_USER_WRITE } from "../src/hw/access.js";
import { EPT_R, EPT_RWX, EPT_W, EPT_X } from "../src/hw/ept.js";
import { HostMemory } from "../src/hw/memory.js";
import { EPT_VIOLATION, NESTED_OK, NestedWalker } from "../src/hw/nested.js";
import { PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW, PTE_US, pteHi, pteLo } from "../src/hw/pte.js";
import { WALK_SLOW } from "../src/hw/walker.js";
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

/** A second EPT over the same memory, its tables from host frame 300 up (none given back). */
function secondEpt(mem: HostMemory): EptTables {
  let nextTable = 300;
  return new EptTables(
    mem,
    () => nextTable++,
    () => {},
    newCounters(),
  );
}

/**
 * Materialize host frame 1500 (it takes the pool slot given up last) as an EPT table that maps
 * the guest's frames elsewhere (to 1600 + gfn): a walk that read it for the table that had the
 * slot before would answer differently.
 */
function takeSlot(mem: HostMemory): void {
  for (const gfn of [...TABLE_GFNS, DATA_GFN]) {
    mem.write64(1500, gfn, pteLo(1600 + gfn, EPT_RWX), pteHi(1600 + gfn, false));
  }
}

/** The batch's walk (walkMemoHalves) of gva `gva` under `ept`: the frame or WALK_SLOW. */
function fastWalk(mem: HostMemory, ept: EptTables, walker: NestedWalker, gva: number): number {
  const hi = Math.floor(gva / 2 ** 32);
  const lo = (gva % 2 ** 32) | 0;
  return walker.walkMemoHalves(mem, ept.root, TABLE_GFNS[0], lo, hi, KIND_USER_READ, CTL);
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

  test("an EPT L1 table whose frame moved to another pool slot unannounced: read where it is", () => {
    const { mem, ept, walker } = setup();
    walkBoth(mem, ept, walker, KIND_USER_READ);
    walkBoth(mem, ept, walker, KIND_USER_READ);
    const l1 = 103; // root 100, then the L3, L2 and L1 tables of gfns 0..511
    const saved = mem.saveFrame(l1);
    expect(saved).toBeInstanceOf(Uint32Array);
    // Its slot given up and taken by another frame, then the table restored to a new slot.
    mem.zeroFrame(l1);
    takeSlot(mem);
    mem.restoreFrame(l1, saved);
    const { kept, fresh } = walkBoth(mem, ept, walker, KIND_USER_READ);
    expect(kept).toEqual(fresh);
    expect(kept.frame).toBe(FIRST_BLOCK + DATA_GFN);
  });

  test("the same, with the epoch the slot was read at come round again after a wrap", () => {
    const { mem, ept, walker } = setup();
    walkBoth(mem, ept, walker, KIND_USER_READ);
    walkBoth(mem, ept, walker, KIND_USER_READ);
    const old = mem.tableEpoch;
    const l1 = 103;
    const saved = mem.saveFrame(l1);
    mem.tableEpoch = 0x7ffffffe;
    mem.zeroFrame(l1); // the epoch wraps to 1
    expect(mem.tableEpochWraps).toBe(1);
    takeSlot(mem);
    mem.restoreFrame(l1, saved);
    mem.tableEpoch = old; // as if 2^31 changes later the old epoch came round
    const { kept, fresh } = walkBoth(mem, ept, walker, KIND_USER_READ);
    expect(kept).toEqual(fresh);
    expect(kept.frame).toBe(FIRST_BLOCK + DATA_GFN);
  });

  test("the batch's walk under two EPT roots in turn: each root's own, or WALK_SLOW", () => {
    const { mem, ept, walker } = setup();
    const other = secondEpt(mem);
    for (const gfn of [...TABLE_GFNS, DATA_GFN, 11]) other.map(gfn, SECOND_BLOCK + gfn, EPT_RWX, 1);
    writeGuest(mem, SECOND_BLOCK);
    const bits = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
    // Under the second EPT gva 0 maps gfn 11; both guests map gva 2 MiB (L2 entry 1) as gva 0.
    mem.write64(SECOND_BLOCK + TABLE_GFNS[3], 0, pteLo(11, bits), pteHi(11, false));
    for (const block of [FIRST_BLOCK, SECOND_BLOCK]) {
      const l1 = TABLE_GFNS[3];
      mem.write64(block + TABLE_GFNS[2], 1, pteLo(l1, bits), pteHi(l1, false));
    }
    const region1 = 2 ** 21;
    // Each walk after the first reads tables only: the memos hold what they read.
    for (let i = 0; i < 2; i++) walkBoth(mem, ept, walker, KIND_USER_READ);
    expect(fastWalk(mem, ept, walker, 0)).toBe(FIRST_BLOCK + DATA_GFN);
    // The EPT memo now the second root's; the guest memo still holds region 0 under the first.
    for (let i = 0; i < 2; i++) {
      const result = walker.walk(
        mem,
        other.root,
        TABLE_GFNS[0],
        0,
        region1,
        KIND_USER_READ,
        CTL,
        0,
        0,
      );
      expect(result).toBe(NESTED_OK);
    }
    expect(fastWalk(mem, other, walker, region1)).toBe(SECOND_BLOCK + 11);
    for (const [tables, gva, frame] of [
      [ept, 0, FIRST_BLOCK + DATA_GFN],
      [other, 0, SECOND_BLOCK + 11],
    ] as const) {
      const fast = fastWalk(mem, tables, walker, gva);
      expect(fast === WALK_SLOW || fast === frame).toBe(true);
    }
  });

  test("two 2 MiB blocks of guest memory 8 GiB apart (one EPT memo slot): each its own", () => {
    const { mem, ept, walker } = setup();
    const far = 2 ** 21 + DATA_GFN; // 8 GiB on: the same memo slot as DATA_GFN's block
    ept.map(far, FIRST_BLOCK + 11, EPT_RWX, 1);
    const bits = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
    mem.write64(FIRST_BLOCK + TABLE_GFNS[3], 1, pteLo(far, bits), pteHi(far, false));
    for (let i = 0; i < 2; i++) walkBoth(mem, ept, walker, KIND_USER_READ);
    expect(fastWalk(mem, ept, walker, 0)).toBe(FIRST_BLOCK + DATA_GFN);
    // Each pair: the first walk fills the memo slot for its block, the second reads it.
    for (const gva of [4096, 4096, 0, 0, 4096, 4096]) {
      const hi = Math.floor(gva / 2 ** 32);
      const lo = gva | 0;
      const kept = walker.walk(mem, ept.root, TABLE_GFNS[0], hi, lo, KIND_USER_READ, CTL, 0, 0);
      expect(kept).toBe(NESTED_OK);
      expect(walker.frame).toBe(gva === 0 ? FIRST_BLOCK + DATA_GFN : FIRST_BLOCK + 11);
      // The memo slot now holds this block's L1 table: the other block's page is not read there.
      const other = gva === 0 ? 4096 : 0;
      const fast = fastWalk(mem, ept, walker, other);
      expect([WALK_SLOW, other === 0 ? FIRST_BLOCK + DATA_GFN : FIRST_BLOCK + 11]).toContain(fast);
    }
  });

  test("another EPT root: nothing kept from the first is used", () => {
    const { mem, ept, walker } = setup();
    walkBoth(mem, ept, walker, KIND_USER_READ);
    const other = secondEpt(mem);
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

describe("the 2D walker's guest memo, under random changes (fast-check)", () => {
  const arbIdx = fc.tuple(fc.nat(1), fc.nat(1), fc.nat(1), fc.nat(1));
  const arbGfn = fc.constantFrom(...TABLE_GFNS, DATA_GFN, 11);
  const arbFlags = fc.constantFrom(
    PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D,
    PTE_P | PTE_RW | PTE_US | PTE_A,
    PTE_P | PTE_US | PTE_A | PTE_D,
    PTE_P | PTE_RW | PTE_US,
    PTE_P | PTE_RW | PTE_US | PTE_A | PTE_PS,
    PTE_RW | PTE_US | PTE_A,
  );
  const arbStep = fc.oneof(
    {
      arbitrary: fc.record({
        op: fc.constant("walk" as const),
        idx: arbIdx,
        kind: fc.constantFrom(KIND_USER_READ, KIND_USER_WRITE, KIND_SUP_READ),
        // The batch's walk first (walkMemoHalves), as the vCPU tries it on a TLB miss.
        fast: fc.boolean(),
        // Before it, two walks of the other page of the same 2 MiB (the memos then hold it).
        prime: fc.boolean(),
      }),
      weight: 6,
    },
    {
      arbitrary: fc.record({
        op: fc.constant("guest" as const),
        table: fc.constantFrom(...TABLE_GFNS),
        i: fc.nat(1),
        to: arbGfn,
        flags: arbFlags,
        nx: fc.boolean(),
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({
        op: fc.constant("ept" as const),
        gfn: arbGfn,
        perms: fc.constantFrom(EPT_RWX, EPT_R, EPT_R | EPT_W, EPT_R | EPT_X, 0),
      }),
      weight: 2,
    },
    { arbitrary: fc.record({ op: fc.constant("nxe" as const), on: fc.boolean() }), weight: 1 },
  );

  test("two EPT roots walked in turn, with no table written between: each walk its own", () => {
    const { mem, ept, walker } = setup();
    const other = secondEpt(mem);
    for (const gfn of [...TABLE_GFNS, 11]) other.map(gfn, SECOND_BLOCK + gfn, EPT_RWX, 1);
    writeGuest(mem, SECOND_BLOCK);
    // The second copy of the guest's L1 table maps gva 0 to gfn 11, not DATA_GFN.
    const bits = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
    mem.write64(SECOND_BLOCK + TABLE_GFNS[3], 0, pteLo(11, bits), pteHi(11, false));
    for (const [tables, frame] of [
      [ept, FIRST_BLOCK + DATA_GFN],
      [other, SECOND_BLOCK + 11],
      [ept, FIRST_BLOCK + DATA_GFN],
      [other, SECOND_BLOCK + 11],
    ] as const) {
      const { kept, fresh } = walkBoth(mem, tables, walker, KIND_USER_READ);
      expect(kept).toEqual(fresh);
      expect(kept.frame).toBe(frame);
    }
  });

  test("an NX bit above the leaf becomes reserved when EFER.NXE goes off: the walk faults", () => {
    const { mem, ept, walker } = setup();
    const bits = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
    mem.write64(
      FIRST_BLOCK + TABLE_GFNS[1],
      0,
      pteLo(TABLE_GFNS[2], bits),
      pteHi(TABLE_GFNS[2], true),
    );
    const walk = (nxe: boolean) =>
      walker.walk(mem, ept.root, TABLE_GFNS[0], 0, 0, KIND_USER_READ, { ...CTL, nxe }, 0, 0);
    expect(walk(true)).toBe(NESTED_OK);
    expect(walk(true)).toBe(NESTED_OK);
    const fault = walk(false);
    expect(fault).toBeGreaterThanOrEqual(0); // a #PF error code, with RSVD
    expect(fault & 0x8).toBe(0x8);
  });

  test("walks answer, count and fault as a fresh walker's", () => {
    fc.assert(
      fc.property(fc.array(arbStep, { minLength: 1, maxLength: 50 }), (steps) => {
        const { mem, ept, walker } = setup();
        // Each guest table's second entry points on as its first does (more regions to keep).
        const bits = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
        for (let level = 4; level >= 2; level--) {
          const next = TABLE_GFNS[5 - level];
          mem.write64(
            FIRST_BLOCK + TABLE_GFNS[4 - level],
            1,
            pteLo(next, bits),
            pteHi(next, false),
          );
        }
        ept.map(11, FIRST_BLOCK + 11, EPT_RWX, 1);
        const ctl = { ...CTL };
        for (const s of steps) {
          if (s.op === "walk") {
            const [i4, i3, i2, i1] = s.idx;
            const gva = i4 * 2 ** 39 + i3 * 2 ** 30 + i2 * 2 ** 21 + i1 * 2 ** 12;
            const hi = Math.floor(gva / 2 ** 32);
            const lo = (gva % 2 ** 32) | 0;
            const outcome = (w: NestedWalker) => {
              const result = w.walk(mem, ept.root, TABLE_GFNS[0], hi, lo, s.kind, ctl, 0, 0);
              const frame = result === NESTED_OK ? w.frame : -1;
              const gfn = result === EPT_VIOLATION ? w.violationGfn : -1;
              const ok = result === NESTED_OK;
              return { result, frame, refs: w.refs, eptRefs: w.eptRefs, gfn, dirty: ok && w.dirty };
            };
            if (s.fast) {
              if (s.prime) {
                const sibling = (lo ^ 4096) | 0;
                for (let k = 0; k < 2; k++) {
                  walker.walk(mem, ept.root, TABLE_GFNS[0], hi, sibling, s.kind, ctl, 0, 0);
                }
              }
              const epoch = mem.tableEpoch;
              const frame = walker.walkMemoHalves(
                mem,
                ept.root,
                TABLE_GFNS[0],
                lo,
                hi,
                s.kind,
                ctl,
              );
              expect(mem.tableEpoch).toBe(epoch); // it writes nothing, whatever it answers
              if (frame !== WALK_SLOW) {
                const fast = {
                  frame,
                  refs: walker.refs,
                  eptRefs: walker.eptRefs,
                  level: walker.level,
                  allowed: walker.allowed,
                  global: walker.global,
                  dirty: walker.dirty,
                };
                const w = new NestedWalker(NO_CACHES);
                expect(w.walk(mem, ept.root, TABLE_GFNS[0], hi, lo, s.kind, ctl, 0, 0)).toBe(
                  NESTED_OK,
                );
                // Nothing was left to write: no A or D bit the fast walk should have set.
                expect(mem.tableEpoch).toBe(epoch);
                expect(fast).toEqual({
                  frame: w.frame,
                  refs: w.refs,
                  eptRefs: w.eptRefs,
                  level: w.level,
                  allowed: w.allowed,
                  global: w.global,
                  dirty: w.dirty,
                });
                continue;
              }
            }
            // The fresh walker first: its A/D writes are the kept walker's to see.
            const fresh = outcome(new NestedWalker(NO_CACHES));
            expect(outcome(walker)).toEqual(fresh);
          } else if (s.op === "guest") {
            const entryHi = pteHi(s.to, s.nx);
            mem.write64(FIRST_BLOCK + s.table, s.i, pteLo(s.to, s.flags), entryHi);
          } else if (s.op === "ept") {
            if (s.perms === 0) ept.unmap(s.gfn);
            else ept.map(s.gfn, FIRST_BLOCK + s.gfn, s.perms, 1);
          } else ctl.nxe = s.on;
        }
      }),
      { numRuns: 1500, seed: 0x6e57 },
    );
  });
});
