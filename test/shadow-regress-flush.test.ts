/**
 * Regressions found in review: a TLB entry must never outlive the shadow entry it came from
 * (Xen's SHADOW_SET_FLUSH rule), or write protection and P2M changes can be bypassed.
 */

import { expect, test } from "vitest";
import type { BalloonTouchPolicy } from "../src/config/scenario.js";
import { userAccess } from "../src/guest/fault.js";
import { Kernel } from "../src/guest/kernel.js";
import { directMap, USER_HEAP_BASE } from "../src/guest/layout.js";
import { NativePagingOps } from "../src/guest/paging-ops.js";
import { KIND_USER_READ, KIND_USER_WRITE } from "../src/hw/access.js";
import {
  PFEC_P,
  PFEC_U,
  PFEC_W,
  PTE_A,
  PTE_P,
  PTE_RW,
  PTE_US,
  pteFrame,
  pteHi,
  pteLo,
} from "../src/hw/pte.js";
import { XLATE_FAULT } from "../src/hw/vcpu-interfaces.js";
import {
  C_BALLOON_TOUCH_POPULATE,
  C_SHADOW_EMULATE_WRITE,
  C_SHADOW_FAULT,
  C_SHADOW_FAULT_BAIL_REAL_FAULT,
  C_SHADOW_FAULT_FIXED,
  C_SHADOW_P2M_REMOVALS,
  C_TLB_MISSES,
  newCounters,
} from "../src/metrics/counters.js";
import { DomainCrash } from "../src/vmm/crash.js";
import { OWNER_DOMAIN, OWNER_FREE } from "../src/vmm/frames.js";
import { Host } from "../src/vmm/host.js";
import { P2M_INVALID } from "../src/vmm/p2m.js";
import { checkIsolation, checkShadow } from "../src/vmm/shadow/check.js";
import { shadowSpec, TEST_HARDWARE } from "./support/domains.js";
import { shadowOf } from "./support/modes.js";

/**
 * A shadow domain running one process with 64 heap pages, the last one touched. No unshadow
 * heuristic: the guest's page tables stay shadowed (and write-protected) throughout.
 */
function boot(outOfSync = true) {
  const host = new Host((64 * 2 ** 20) / 4096);
  host.mem.exactData = true;
  const counters = newCounters();
  const spec = shadowSpec("evil", { unshadow: "none", outOfSync });
  const vmm = host.createDomain(spec, TEST_HARDWARE, counters);
  const kernel = new Kernel(vmm.cpu, new NativePagingOps(vmm.cpu), 4096, counters, {
    gigaPages: false,
    pcid: false,
  });
  kernel.boot();
  const proc = kernel.spawn("e", { code: 4096, heap: 64 * 4096, hugeHeap: false })!;
  kernel.switchTo(proc);
  // The heap's last page: its l1 table (and the tables above it) exist from here on.
  const last = userAccess(kernel, proc, USER_HEAP_BASE + 63 * 4096, KIND_USER_WRITE, 1);
  expect(last).toBeGreaterThan(0);
  /** A kernel store into guest page table t, through the direct map (emulated if shadowed). */
  const poke = (t: number, i: number, lo: number, hi: number) =>
    expect(vmm.cpu.store64(directMap(t) + i * 8, lo >>> 0, hi >>> 0)).toBe(0);
  const l1 = kernel.pt.tableFor(proc.l4Gfn, USER_HEAP_BASE, 1, false);
  const l3 = kernel.pt.tableFor(proc.l4Gfn, USER_HEAP_BASE, 3, false);
  /** Entry i of guest table gfn, read from its host frame: [lo, hi]. */
  const entry = (gfn: number, i: number): [number, number] => {
    host.mem.read64(vmm.p2m.lookup(gfn), i);
    return [host.mem.lo, host.mem.hi];
  };
  /** The gfn the heap's l1 entry i maps. */
  const gfnAt = (i: number) => pteFrame(...entry(l1, i));
  const check = () => checkShadow(shadowOf(vmm), vmm.cpu, host.frames, vmm.id);
  return { host, vmm, kernel, proc, poke, l1, l3, entry, gfnAt, check, counters };
}

// Guards SHADOW_SET_FLUSH (ShadowTables.setEntry): clearing a present shadow l1e flushes the TLB.
// The clearing is an emulated write, so the L1 stays in sync (no out-of-sync L1s).
test("a stale writable TLB entry cannot bypass write protection", () => {
  const { host, vmm, kernel, proc, poke, l1, l3, entry, gfnAt, check, counters } = boot(false);
  const cpu = vmm.cpu;
  const V0 = USER_HEAP_BASE;
  const l2eRO = pteLo(l1, PTE_P | PTE_US | PTE_A); // an l2e -> l1 with RW clear
  const l2eRW = pteLo(l1, PTE_P | PTE_RW | PTE_US | PTE_A);
  // Heap page 0 (gfn X) holds l2eRO in its first word; heap page 1 holds 7.
  expect(userAccess(kernel, proc, V0, KIND_USER_WRITE, l2eRO)).toBeGreaterThan(0);
  const page1 = userAccess(kernel, proc, V0 + 4096, KIND_USER_WRITE, 7);
  expect(page1).toBeGreaterThan(0);
  const X = gfnAt(0);
  const mfnX = vmm.p2m.lookup(X);
  // Drop the direct map's splinter of X: write-protecting X later then finds no writable shadow
  // leaf of it to demote, so nothing but the rule under test flushes V0's TLB entry.
  cpu.invlpg(directMap(X));
  expect(shadowOf(vmm).findLeaf(directMap(X))).toBeNull();
  // That INVLPG flushed the TLB: put V0 -> X (writable, dirty) back in it.
  expect(cpu.access(V0, KIND_USER_WRITE, l2eRO)).toBe(mfnX);
  expect(check()).toBeNull();

  // The guest unmaps V0 without INVLPG: an emulated write that clears the shadow l1e, and so
  // must flush the TLB entry that came from it.
  const emulated = counters[C_SHADOW_EMULATE_WRITE];
  poke(l1, 0, 0, 0);
  expect(counters[C_SHADOW_EMULATE_WRITE]).toBe(emulated + 1);
  expect(entry(l1, 0)).toEqual([0, 0]);
  expect(check()).toBeNull(); // no valid TLB entry translates V0 any more

  // X becomes an L2 table at l3e[5]: R maps through X[0] (read-only) to l1, so R + 4 KiB is
  // heap page 1. The read shadows X as an L2 table (write-protecting it).
  const R = 5 * 2 ** 30;
  poke(l3, 5, pteLo(X, PTE_P | PTE_RW | PTE_US | PTE_A), pteHi(X, false));
  expect(cpu.access(R + 4096, KIND_USER_READ, 0)).toBe(page1);
  expect(cpu.readValue).toBe(7);
  expect(shadowOf(vmm).tables.isShadowedTable(X)).toBe(true);

  // The write through V0 that would give X[0] RW: V0 is unmapped, so the guest gets a
  // not-present #PF for a user write, and X is neither written nor emulated into.
  const faults = counters[C_SHADOW_FAULT_BAIL_REAL_FAULT];
  const emulatedBefore = counters[C_SHADOW_EMULATE_WRITE];
  expect(cpu.access(V0, KIND_USER_WRITE, l2eRW)).toBe(XLATE_FAULT);
  expect(cpu.faultCode).toBe(PFEC_W | PFEC_U);
  expect(counters[C_SHADOW_FAULT_BAIL_REAL_FAULT]).toBe(faults + 1);
  expect(counters[C_SHADOW_EMULATE_WRITE]).toBe(emulatedBefore);
  expect(entry(X, 0)).toEqual([l2eRO, 0]);

  // So R's path stays read-only: a user write there is a protection #PF for the guest.
  expect(cpu.access(R + 4096, KIND_USER_WRITE, 1)).toBe(XLATE_FAULT);
  expect(cpu.faultCode).toBe(PFEC_P | PFEC_W | PFEC_U);
  expect(cpu.access(R + 4096, KIND_USER_READ, 0)).toBe(page1);
  expect(cpu.readValue).toBe(7);
  expect(check()).toBeNull();
  expect(checkIsolation(shadowOf(vmm), cpu, host.frames, vmm.id)).toBeNull();
});

/**
 * V2 (heap page 2, gfn Y on frame M) written and in the TLB; then the balloon's
 * decrease_reservation takes Y away (P2m.removePage: dropMappings, M back to the host).
 */
function removeMappedPage(touch: BalloonTouchPolicy) {
  const b = boot();
  const { host, vmm, kernel, proc, gfnAt, counters } = b;
  vmm.p2m.touchPolicy = touch;
  const V2 = USER_HEAP_BASE + 2 * 4096;
  const M = userAccess(kernel, proc, V2, KIND_USER_WRITE, 42);
  const Y = gfnAt(2);
  expect(vmm.p2m.lookup(Y)).toBe(M);
  const misses = counters[C_TLB_MISSES];
  expect(vmm.cpu.access(V2, KIND_USER_READ, 0)).toBe(M);
  expect(counters[C_TLB_MISSES]).toBe(misses); // V2 -> M is in the TLB
  expect(vmm.cpu.readValue).toBe(42);
  // Two shadow leaves map M: V2's l1e and the direct map's splinter the kernel zeroed it by.
  const sh = shadowOf(vmm);
  const leafAt = (gva: number) => {
    const leaf = sh.findLeaf(gva);
    return leaf === null ? -1 : leaf.sp.mfn * 512 + leaf.index;
  };
  expect([...sh.tables.mappingsOf(M)].sort((a, b) => a - b)).toEqual(
    [leafAt(V2), leafAt(directMap(Y))].sort((a, b) => a - b),
  );
  const removals = counters[C_SHADOW_P2M_REMOVALS];
  expect(vmm.p2m.removePage(Y)).toBe(true);
  expect(counters[C_SHADOW_P2M_REMOVALS]).toBe(removals + 2);
  expect(vmm.p2m.lookup(Y)).toBe(-1);
  expect(vmm.p2m.type[Y]).toBe(P2M_INVALID);
  expect(host.frames.owner[M]).toBe(OWNER_FREE);
  // Neither a shadow leaf nor a TLB entry reaches the freed frame.
  expect(sh.tables.mappingsOf(M)).toEqual([]);
  expect(checkIsolation(sh, vmm.cpu, host.frames, vmm.id)).toBeNull();
  return { ...b, V2, Y, M };
}

// Guards the flush in the P2M's dropMappings hook: a P2M change flushes the old frame's TLB too.
test("a P2M change flushes the TLB entries of the frame it takes away", () => {
  const { host, vmm, counters, V2, Y } = removeMappedPage("populate");
  // The guest still maps V2 -> Y, so the read exits and the VMM repopulates Y ("populate"
  // policy) with a zeroed frame of the domain's own: never the old frame's content.
  const faults = counters[C_SHADOW_FAULT_FIXED];
  const f = vmm.cpu.access(V2, KIND_USER_READ, 0);
  expect(host.frames.owner[f]).toBe(OWNER_DOMAIN);
  expect(host.frames.domainOf(f)).toBe(vmm.id);
  expect(host.frames.gfnOf(f)).toBe(Y);
  expect(f).toBe(vmm.p2m.lookup(Y));
  expect(vmm.cpu.readValue).toBe(0);
  expect(counters[C_SHADOW_FAULT_FIXED]).toBe(faults + 1);
  expect(counters[C_BALLOON_TOUCH_POPULATE]).toBe(1);
  expect(checkIsolation(shadowOf(vmm), vmm.cpu, host.frames, vmm.id)).toBeNull();
});

// Guards the same dropMappings flush: touching a ballooned-out gfn exits (and crashes the domain).
test("a touch of a ballooned-out gfn crashes the domain instead of reading the freed frame", () => {
  const { vmm, counters, V2, Y } = removeMappedPage("mmio");
  // Under the "mmio" policy a ballooned-out gfn is not RAM: the read must exit, and the VMM
  // crashes the domain, rather than read the freed frame through a stale TLB entry.
  const faults = counters[C_SHADOW_FAULT];
  expect(() => vmm.cpu.access(V2, KIND_USER_READ, 0)).toThrow(
    expect.objectContaining({
      constructor: DomainCrash,
      reason: `the guest touched gfn ${Y}, which it ballooned out (policy "mmio": not RAM any more)`,
    }),
  );
  expect(counters[C_SHADOW_FAULT]).toBe(faults + 1);
});
