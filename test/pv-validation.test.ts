/**
 * PV validation against a hostile guest, hand-written cases: entries naming frames it does not
 * own (another domain's, beyond RAM, the VMM's, free ones), page tables mapped writable, type
 * changes of frames still referenced, L2..L4 entries pointing at data pages, superpages, Xen's
 * L4 slots, stores straight into its tables, a balloon that gives away a table, a stale TLB
 * entry. Every attempt is refused with the errno Xen's mm.c returns and counted, nothing
 * changes, and no translation the domain can use reaches a frame it does not own.
 */

import { describe, expect, test } from "vitest";
import { directMap, USER_HEAP_BASE } from "../src/guest/layout.js";
import { KIND_USER_WRITE } from "../src/hw/access.js";
import {
  EBUSY,
  EINVAL,
  EPERM,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_PIN_L2_TABLE,
  MMUEXT_UNPIN_TABLE,
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
import { XLATE_FAULT } from "../src/hw/vcpu-interfaces.js";
import {
  C_PV_HYPERCALL_ERRORS,
  C_PV_VALIDATION_FAILURES,
  COUNTER_NAMES,
} from "../src/metrics/counters.js";
import { DomainCrash } from "../src/vmm/crash.js";
import { OWNER_FREE } from "../src/vmm/frames.js";
import { PGT_L2, PGT_L3, PGT_L4 } from "../src/vmm/pv/mm.js";
import { entry, heapTables, LEAF, pvOf, refused, setup, update, vmmCheck } from "./support/pv.js";

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
    const gfn = g.host?.frames.gfnOf(l1) as number;
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
    const l2gfn = g.host?.frames.gfnOf(l2) as number;
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
    const m2p = (mfn: number) => g.host?.frames.gfnOf(mfn) as number;
    const heapGfn = m2p(pteFrame(...entry(g, l1, 0)));
    for (const gfn of [m2p(l1), heapGfn, m2p(pv.baseMfn)]) {
      const errors = g.counters[C_PV_HYPERCALL_ERRORS];
      expect(g.cpu.memoryOp(1, Int32Array.of(gfn), 1)).toBe(0);
      expect(g.counters[C_PV_HYPERCALL_ERRORS]).toBe(errors + 1);
      expect(g.gfnToMfn(gfn)).toBeGreaterThanOrEqual(0);
    }
    const errors = g.counters[C_PV_HYPERCALL_ERRORS];
    g.mem.read64(l1, 0);
    const before = [g.mem.lo, g.mem.hi];
    g.cpu.dmaWrite(m2p(l1), 0x1234);
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
    const gfn = g.host?.frames.gfnOf(frame) as number;
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
