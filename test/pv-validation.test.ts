/**
 * PV validation against a hostile guest: entries naming frames it does not own (another
 * domain's, beyond RAM, the VMM's, free ones), page tables mapped writable, type changes of
 * frames still referenced, L2 entries pointing at data pages, superpages, Xen's L4 slots, stores
 * straight into its tables, a balloon that gives away a table. Every attempt is refused with the
 * errno Xen's mm.c returns and counted, nothing changes, and no translation the domain can use
 * ever reaches a frame it does not own (checked after every step, hand-written and fast-check).
 */

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { directMap, USER_HEAP_BASE } from "../src/guest/layout.js";
import {
  KIND_SUP_READ,
  KIND_SUP_WRITE,
  KIND_USER_READ,
  KIND_USER_WRITE,
} from "../src/hw/access.js";
import { XLATE_FAULT } from "../src/hw/cpu.js";
import {
  EBUSY,
  EINVAL,
  EPERM,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_PIN_L2_TABLE,
  MMUEXT_UNPIN_TABLE,
  MmuBatch,
  UVMF_INVLPG,
} from "../src/hw/hypercall.js";
import {
  PTE_A,
  PTE_D,
  PTE_P,
  PTE_PS,
  PTE_RW,
  PTE_US,
  pteFrame,
  pteHi,
  pteLo,
} from "../src/hw/pte.js";
import {
  C_PV_HYPERCALL_ERRORS,
  C_PV_VALIDATION_FAILURES,
  COUNTER_NAMES,
} from "../src/metrics/counters.js";
import { DomainCrash } from "../src/vmm/crash.js";
import { OWNER_FREE } from "../src/vmm/frames.js";
import { Host } from "../src/vmm/host.js";
import { checkPvIsolation, checkPvTables } from "../src/vmm/pv/check.js";
import { PGT_L2, PGT_L3, PGT_L4 } from "../src/vmm/pv/mm.js";
import type { PvPaging } from "../src/vmm/pv/pv.js";
import { checkHostFrames } from "../src/vmm/shadow/check.js";
import { bootGuest, type TestGuest } from "./support/guest.js";

const LEAF = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;

/** Two PV domains on one host: the attacker (with a process whose heap is touched) and a victim. */
function setup() {
  const host = new Host(((16 * 2 + 16) * 2 ** 20) / 4096);
  const g = bootGuest(16, { mode: "pv", host });
  const victim = bootGuest(16, { mode: "pv", host });
  const proc = g.kernel.spawn("attacker", { code: 4096, heap: 64 * 4096, hugeHeap: false });
  if (proc === null) throw new Error("spawn");
  for (let p = 0; p < 8; p++) expect(g.write(proc, USER_HEAP_BASE + p * 4096, p + 1)).toBe(true);
  const vproc = victim.kernel.spawn("victim", { code: 4096, heap: 8 * 4096, hugeHeap: false });
  if (vproc === null) throw new Error("spawn");
  expect(victim.write(vproc, USER_HEAP_BASE, 0x5ec7e7)).toBe(true);
  g.kernel.switchTo(proc);
  return { host, g, victim, proc, vproc, pv: pvOf(g) };
}

function pvOf(g: TestGuest): PvPaging {
  const pv = g.vmm?.pv;
  if (!pv) throw new Error("not a PV guest");
  return pv;
}

/**
 * Only the VMM's invariants: a hostile guest's kernel bookkeeping is its own business, and so
 * is a TLB entry it left stale by changing an entry without a flush (Xen flushes only what
 * safety needs); isolation must hold all the same.
 */
function vmmCheck(g: TestGuest, pv: PvPaging): void {
  const host = g.host as Host;
  const err = checkPvIsolation(pv, g.cpu) ?? checkPvTables(pv) ?? checkHostFrames(host.frames);
  if (err !== null) throw new Error(err);
}

/** The mfn of the L1 table that maps the heap's first page, and of its L2, L3, L4. */
function heapTables(g: TestGuest, pv: PvPaging) {
  const mem = g.mem;
  const path: number[] = [pv.baseMfn];
  let table = pv.baseMfn;
  for (let level = 4; level > 1; level--) {
    mem.read64(table, Math.floor(USER_HEAP_BASE / 2 ** (12 + 9 * (level - 1))) % 512);
    table = pteFrame(mem.lo, mem.hi);
    path.push(table);
  }
  return { l4: path[0], l3: path[1], l2: path[2], l1: path[3] };
}

function update(g: TestGuest, table: number, index: number, lo: number, hi: number): number {
  const b = new MmuBatch(1);
  b.push(table, index, lo, hi);
  return g.cpu.mmuUpdate(b, 1);
}

/** Expect `run` to be refused with -errno, counted, and the entry left as it was. */
function refused(
  g: TestGuest,
  pv: PvPaging,
  errno: number,
  table: number,
  index: number,
  run: () => number,
) {
  g.mem.read64(table, index);
  const before = [g.mem.lo, g.mem.hi];
  const errors = g.counters[C_PV_HYPERCALL_ERRORS];
  expect(run()).toBe(-errno);
  expect(g.counters[C_PV_HYPERCALL_ERRORS]).toBe(errors + 1);
  g.mem.read64(table, index);
  expect([g.mem.lo, g.mem.hi]).toEqual(before);
  vmmCheck(g, pv);
}

describe("a hostile PV guest is refused as Xen refuses it", () => {
  test("L1 entries naming frames the domain does not own", () => {
    const { host, g, victim, pv } = setup();
    const { l1 } = heapTables(g, pv);
    const foreign = victim.gfnToMfn(300);
    const vmmFrame = (g.vmm?.p2m.tablePages ?? [])[0];
    let free = 0;
    while (host.frames.owner[free] !== OWNER_FREE) free++;
    const failures = g.counters[C_PV_VALIDATION_FAILURES];
    for (const [mfn, errno] of [
      [foreign, EBUSY],
      [vmmFrame, EBUSY],
      [free, EBUSY],
      [host.frames.frames + 5, EPERM],
    ]) {
      refused(g, pv, errno, l1, 40, () =>
        update(g, l1, 40, pteLo(mfn, PTE_P | PTE_US), pteHi(mfn, false)),
      );
      refused(g, pv, errno, l1, 41, () => update(g, l1, 41, pteLo(mfn, LEAF), pteHi(mfn, true)));
      // The same through update_va_mapping on the heap's page 40, and through the direct map.
      refused(g, pv, errno, l1, 40, () =>
        g.cpu.updateVaMapping(
          USER_HEAP_BASE + 40 * 4096,
          pteLo(mfn, LEAF),
          pteHi(mfn, true),
          UVMF_INVLPG,
        ),
      );
    }
    expect(g.counters[C_PV_VALIDATION_FAILURES]).toBe(failures + 12);
    // The victim's data is untouched and unreachable.
    expect(victim.read(victim.kernel.processes[0], USER_HEAP_BASE)).toBe(0x5ec7e7);
  });

  test("a page table mapped writable, through mmu_update, update_va_mapping and the direct map", () => {
    const { g, pv } = setup();
    const { l1, l2, l4 } = heapTables(g, pv);
    for (const table of [l1, l2, l4]) {
      refused(g, pv, EBUSY, l1, 50, () =>
        update(g, l1, 50, pteLo(table, LEAF), pteHi(table, true)),
      );
    }
    // Its own direct-map entry made writable again.
    const gfn = g.host?.frames.m2p[l1] as number;
    refused(g, pv, EBUSY, l1, 0, () =>
      g.cpu.updateVaMapping(directMap(gfn), pteLo(l1, LEAF), pteHi(l1, true), UVMF_INVLPG),
    );
    // A plain store into the table through its read-only mapping is emulated only if valid:
    // a writable self-mapping is not, and the #PF goes back to the guest.
    const errors = g.counters[C_PV_VALIDATION_FAILURES];
    expect(g.cpu.store64(directMap(gfn) + 8 * 60, pteLo(l1, LEAF), pteHi(l1, true))).toBe(
      XLATE_FAULT,
    );
    expect(g.counters[C_PV_VALIDATION_FAILURES]).toBe(errors + 1);
    // A store into an L2 table is never emulated (Xen's ptwr handles L1 tables only).
    const l2gfn = g.host?.frames.m2p[l2] as number;
    expect(g.cpu.store64(directMap(l2gfn) + 8 * 300, 0, 0)).toBe(XLATE_FAULT);
    vmmCheck(g, pv);
  });

  test("type changes of frames still referenced", () => {
    const { g, pv } = setup();
    const { l1, l2, l3, l4 } = heapTables(g, pv);
    // A data page mapped writable (the heap's, and a free page the direct map maps writable)
    // cannot be pinned.
    const data = g.gfnToMfn(300);
    const heapMfn = pteFrame(...entry(g, l1, 0));
    for (const mfn of [heapMfn, data]) {
      refused(g, pv, EINVAL, l1, 0, () => g.cpu.mmuextOp(MMUEXT_PIN_L1_TABLE, mfn, 0));
    }
    // An L1 in use cannot become an L2, nor an L2 an L1, nor anything but an L4 a base pointer.
    refused(g, pv, EINVAL, l1, 0, () => g.cpu.mmuextOp(MMUEXT_PIN_L2_TABLE, l1, 0));
    refused(g, pv, EINVAL, l1, 0, () => g.cpu.mmuextOp(MMUEXT_PIN_L1_TABLE, l2, 0));
    for (const mfn of [l1, l2, l3, heapMfn]) {
      refused(g, pv, EINVAL, l1, 0, () => g.cpu.mmuextOp(MMUEXT_NEW_BASEPTR, mfn, 0));
    }
    // Pinning twice, unpinning what is not pinned.
    refused(g, pv, EINVAL, l1, 0, () => g.cpu.mmuextOp(MMUEXT_PIN_L1_TABLE + 3, l4, 0));
    refused(g, pv, EINVAL, l1, 0, () => g.cpu.mmuextOp(MMUEXT_UNPIN_TABLE, heapMfn, 0));
    // Unpinning an L1 still linked leaves it validated: its L2 entry holds a type reference.
    expect(g.cpu.mmuextOp(MMUEXT_UNPIN_TABLE, l1, 0)).toBe(0);
    expect(pv.mm.isTable(l1)).toBe(true);
    refused(g, pv, EBUSY, l1, 70, () => update(g, l1, 70, pteLo(l1, LEAF), pteHi(l1, true)));
    vmmCheck(g, pv);
  });

  test("L2..L4 entries pointing at data pages, superpages, Xen's slots, foreign tables", () => {
    const { g, victim, pv } = setup();
    const { l1, l2, l3, l4 } = heapTables(g, pv);
    const heapMfn = pteFrame(...entry(g, l1, 0));
    const table = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
    const victimL4 = pvOf(victim).baseMfn;
    for (const [at, level] of [
      [l2, PGT_L2],
      [l3, PGT_L3],
      [l4, PGT_L4],
    ]) {
      refused(g, pv, EINVAL, at, 200, () =>
        update(g, at, 200, pteLo(heapMfn, table), pteHi(heapMfn, false)),
      );
      refused(g, pv, EINVAL, at, 200, () =>
        update(g, at, 200, pteLo(victimL4, table), pteHi(victimL4, false)),
      );
      // A table of the wrong level (an L1 under an L3, ...).
      const wrong = level === PGT_L2 ? l2 : l1;
      refused(g, pv, EINVAL, at, 200, () =>
        update(g, at, 200, pteLo(wrong, table), pteHi(wrong, false)),
      );
    }
    refused(g, pv, EINVAL, l2, 201, () =>
      update(g, l2, 201, pteLo(heapMfn, table | PTE_PS), pteHi(heapMfn, false)),
    );
    refused(g, pv, EINVAL, l3, 201, () =>
      update(g, l3, 201, pteLo(heapMfn, table | PTE_PS), pteHi(heapMfn, false)),
    );
    // Xen's own L4 slots (256..271), even with a valid L3.
    refused(g, pv, EINVAL, l4, 260, () => update(g, l4, 260, pteLo(l3, table), pteHi(l3, false)));
    // An mmu_update into a table the domain does not own.
    refused(g, pv, EINVAL, victimL4, 10, () =>
      update(g, victimL4, 10, pteLo(l3, table), pteHi(l3, false)),
    );
    vmmCheck(g, pv);
  });

  test("a table written as plain memory is validated when pinned", () => {
    const { g, victim, pv } = setup();
    // A free guest page, unmapped from the direct map, written as data with a foreign entry.
    const gfn = g.kernel.frames.alloc();
    const mfn = g.gfnToMfn(gfn);
    expect(g.cpu.updateVaMapping(directMap(gfn), 0, 0, UVMF_INVLPG)).toBe(0);
    const foreign = victim.gfnToMfn(300);
    expect(update(g, mfn, 3, pteLo(foreign, LEAF), pteHi(foreign, true))).toBe(0);
    refused(g, pv, EBUSY, mfn, 3, () => g.cpu.mmuextOp(MMUEXT_PIN_L1_TABLE, mfn, 0));
    // With an own page read-only instead it validates, and is then a table.
    const own = g.gfnToMfn(400);
    expect(update(g, mfn, 3, pteLo(own, PTE_P), pteHi(own, true))).toBe(0);
    expect(g.cpu.mmuextOp(MMUEXT_PIN_L1_TABLE, mfn, 0)).toBe(0);
    vmmCheck(g, pv);
  });

  test("a balloon that gives away a page table or a mapped page, a disk write into a table", () => {
    const { g, pv } = setup();
    const { l1 } = heapTables(g, pv);
    const m2p = g.host?.frames.m2p as Int32Array;
    const heapGfn = m2p[pteFrame(...entry(g, l1, 0))];
    for (const gfn of [m2p[l1], heapGfn, m2p[pv.baseMfn]]) {
      const errors = g.counters[C_PV_HYPERCALL_ERRORS];
      expect(g.cpu.memoryOp(1, Int32Array.of(gfn), 1)).toBe(0);
      expect(g.counters[C_PV_HYPERCALL_ERRORS]).toBe(errors + 1);
      expect(g.gfnToMfn(gfn)).toBeGreaterThanOrEqual(0);
    }
    const errors = g.counters[C_PV_HYPERCALL_ERRORS];
    g.mem.read64(l1, 0);
    const before = [g.mem.lo, g.mem.hi];
    g.cpu.dmaWrite(m2p[l1], 0x1234);
    expect(g.counters[C_PV_HYPERCALL_ERRORS]).toBe(errors + 1);
    g.mem.read64(l1, 0);
    expect([g.mem.lo, g.mem.hi]).toEqual(before);
    vmmCheck(g, pv);
  });

  test("a stale writable TLB entry cannot outlive a page's change into a table", () => {
    const { g, proc, pv } = setup();
    const { l1 } = heapTables(g, pv);
    // The heap's page 0 is cached writable in the TLB; the guest unmaps it (and the direct map's
    // writable entry) without a flush, then pins the frame as an L1 table.
    // An even value: as an L1 entry, not present, so the page validates as an empty table.
    expect(g.write(proc, USER_HEAP_BASE, 98)).toBe(true);
    const frame = pteFrame(...entry(g, l1, 0));
    const gfn = g.host?.frames.m2p[frame] as number;
    expect(update(g, l1, 0, 0, 0)).toBe(0);
    expect(g.cpu.updateVaMapping(directMap(gfn), 0, 0, 0)).toBe(0);
    const flushes = g.counters[COUNTER_NAMES.indexOf("need_flush_tlb_flush")];
    expect(g.cpu.mmuextOp(MMUEXT_PIN_L1_TABLE, frame, 0)).toBe(0);
    expect(pv.mm.isTable(frame)).toBe(true);
    // Xen flushed before the type change: the old writable translation is gone.
    expect(g.counters[COUNTER_NAMES.indexOf("need_flush_tlb_flush")]).toBe(flushes + 1);
    expect(g.cpu.access(USER_HEAP_BASE, KIND_USER_WRITE, 7)).toBe(XLATE_FAULT);
    vmmCheck(g, pv);
  });

  test("privileged instructions crash the domain", () => {
    const { g } = setup();
    expect(() => g.cpu.writeCr3(0, 0, false)).toThrow(DomainCrash);
    expect(() => g.cpu.invlpg(USER_HEAP_BASE)).toThrow(DomainCrash);
  });
});

function entry(g: TestGuest, table: number, index: number): [number, number] {
  g.mem.read64(table, index);
  return [g.mem.lo, g.mem.hi];
}

/** Counters that show a hostile run did something (added up over the runs). */
const STATS = [
  "num_page_updates",
  "pv_page_validations",
  "pv_validation_failures",
  "ptwr_emulations",
  "need_flush_tlb_flush",
  "balloon_inflated_pages",
] as const;

/** Where a hostile entry points. */
const TARGETS = ["own", "table", "foreign", "beyond", "vmm", "free"] as const;

const hostileOp = fc.oneof(
  fc.record({
    call: fc.constantFrom("mmu" as const, "uva" as const, "ptwr" as const),
    table: fc.nat(10_000),
    index: fc.nat(511),
    target: fc.constantFrom(...TARGETS),
    pick: fc.nat(100_000),
    rw: fc.boolean(),
    ps: fc.boolean(),
    present: fc.boolean(),
  }),
  fc.record({
    call: fc.constantFrom("pin" as const, "unpin" as const, "base" as const),
    level: fc.integer({ min: 1, max: 4 }),
    target: fc.constantFrom(...TARGETS),
    pick: fc.nat(100_000),
  }),
  fc.record({
    call: fc.constantFrom("balloon" as const, "populate" as const),
    gfn: fc.nat(4095),
  }),
  fc.record({
    call: fc.constant("access" as const),
    page: fc.nat(70),
    write: fc.boolean(),
    kernel: fc.boolean(),
  }),
);

describe("hostile PV sequences (fast-check): isolation holds after every step", () => {
  test("random hypercalls, stores and accesses", () => {
    let refusedForeign = 0;
    const stats = new Map<string, number>();
    fc.assert(
      fc.property(fc.array(hostileOp, { minLength: 1, maxLength: 40 }), (ops) => {
        const { host, g, victim, pv } = setup();
        const p2m = g.vmm?.p2m;
        if (!p2m) throw new Error("no p2m");
        const tables = () => {
          const out: number[] = [];
          for (let gfn = 0; gfn < p2m.gfns; gfn++) {
            const mfn = p2m.mfn[gfn];
            if (mfn >= 0 && pv.mm.isTable(mfn)) out.push(mfn);
          }
          return out;
        };
        const resolve = (target: (typeof TARGETS)[number], pick: number): number => {
          switch (target) {
            case "own":
              return Math.max(0, p2m.mfn[pick % p2m.gfns]);
            case "table": {
              const t = tables();
              return t[pick % t.length];
            }
            case "foreign":
              return Math.max(0, victim.gfnToMfn(pick % 4096));
            case "beyond":
              return host.frames.frames + (pick % 1000);
            case "vmm":
              return p2m.tablePages[pick % p2m.tablePages.length];
            case "free": {
              let m = pick % host.frames.frames;
              while (host.frames.owner[m] !== OWNER_FREE) m = (m + 1) % host.frames.frames;
              return m;
            }
          }
        };
        for (const op of ops) {
          const errors = g.counters[C_PV_HYPERCALL_ERRORS];
          switch (op.call) {
            case "mmu":
            case "uva":
            case "ptwr": {
              const mfn = resolve(op.target, op.pick);
              let flags = PTE_US | PTE_A;
              if (op.present) flags |= PTE_P;
              if (op.rw) flags |= PTE_RW;
              if (op.ps) flags |= PTE_PS;
              const lo = pteLo(mfn, flags);
              const hi = pteHi(mfn, false);
              const t = tables();
              const table = t[op.table % t.length];
              const bad = op.present && op.target !== "own" && op.target !== "table";
              if (op.call === "mmu") {
                const rc = update(g, table, op.index, lo, hi);
                if (bad) {
                  expect(rc).toBeLessThan(0);
                  expect(g.counters[C_PV_HYPERCALL_ERRORS]).toBe(errors + 1);
                  refusedForeign++;
                }
              } else if (op.call === "uva") {
                const gva = USER_HEAP_BASE + (op.index % 70) * 4096;
                const rc = g.cpu.updateVaMapping(gva, lo, hi, UVMF_INVLPG);
                if (bad) expect(rc).toBeLessThan(0);
              } else {
                const gfn = host.frames.m2p[table];
                // The store may fault (refused, or an L2..L4 table): either way nothing leaks.
                g.cpu.store64(directMap(gfn) + op.index * 8, lo, hi);
              }
              break;
            }
            case "pin":
            case "unpin":
            case "base": {
              const mfn = resolve(op.target, op.pick);
              const cmd =
                op.call === "pin"
                  ? MMUEXT_PIN_L1_TABLE + op.level - 1
                  : op.call === "unpin"
                    ? MMUEXT_UNPIN_TABLE
                    : MMUEXT_NEW_BASEPTR;
              const rc = g.cpu.mmuextOp(cmd, mfn, 0);
              if (op.target !== "own" && op.target !== "table") {
                expect(rc).toBe(-EINVAL);
                expect(g.counters[C_PV_HYPERCALL_ERRORS]).toBe(errors + 1);
              }
              break;
            }
            case "balloon":
              // As Linux's balloon: unmap from the direct map first (refused if it is a table
              // or mapped elsewhere); a frame the VMM takes must then be unreachable.
              g.cpu.updateVaMapping(directMap(op.gfn), 0, 0, UVMF_INVLPG);
              g.cpu.memoryOp(1, Int32Array.of(op.gfn), 1);
              break;
            case "populate":
              g.cpu.memoryOp(6, Int32Array.of(op.gfn), 1);
              break;
            case "access": {
              const gva = op.kernel ? directMap(op.page * 50) : USER_HEAP_BASE + op.page * 4096;
              const kind = op.kernel
                ? op.write
                  ? KIND_SUP_WRITE
                  : KIND_SUP_READ
                : op.write
                  ? KIND_USER_WRITE
                  : KIND_USER_READ;
              g.cpu.access(gva, kind, 1);
              break;
            }
          }
          vmmCheck(g, pv);
        }
        for (const name of STATS) {
          const i = COUNTER_NAMES.indexOf(name);
          stats.set(name, (stats.get(name) ?? 0) + g.counters[i]);
        }
        // The victim never sees the attacker's writes.
        expect(victim.read(victim.kernel.processes[0], USER_HEAP_BASE)).toBe(0x5ec7e7);
      }),
      { numRuns: 100, seed: 31 },
    );
    expect(refusedForeign).toBeGreaterThan(0);
    // The sequences did more than fail: tables were validated and torn down, pages ballooned.
    for (const name of STATS) expect(stats.get(name), name).toBeGreaterThan(0);
  });
});
