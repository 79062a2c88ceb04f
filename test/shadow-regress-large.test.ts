/**
 * Regressions found in review: a guest 2 MiB page is shadowed as an FL1, 512 4 KiB splinters
 * the TLB caches one by one, where natively one 2 MiB TLB entry covers the page. INVLPG, a
 * remap of the page and its D bit must behave as natively all the same.
 */

import { expect, test } from "vitest";
import { userAccess } from "../src/guest/fault.js";
import { USER_HEAP_BASE } from "../src/guest/layout.js";
import { KIND_USER_READ, KIND_USER_WRITE } from "../src/hw/access.js";
import { PTE_D, PTE_PS, pteFrame } from "../src/hw/pte.js";
import {
  C_SHADOW_FAULT,
  C_SHADOW_FAULT_FIXED,
  C_SHADOW_INVLPG,
  C_TLB_MISSES,
} from "../src/metrics/counters.js";
import { checkBookkeeping, checkShadow } from "../src/vmm/shadow/check.js";
import { isFl1 } from "../src/vmm/shadow/page.js";
import { bootGuest, type TestMode } from "./support/guest.js";
import { shadowOf } from "./support/modes.js";

const HUGE = 2 ** 21;
const PAGE = 4096;
const A = USER_HEAP_BASE; // huge page A: l2e[128]
const B = USER_HEAP_BASE + HUGE; // huge page B: l2e[129]

/** A guest whose process has a 4 MiB huge-page heap: huge pages A and B, not yet touched. */
function hugeHeap(mode: TestMode) {
  const g = bootGuest(16, { mode });
  const p = g.kernel.spawn("p", { code: 4096, heap: 2 * HUGE, hugeHeap: true })!;
  g.kernel.switchTo(p);
  const write = (gva: number, value: number) =>
    expect(userAccess(g.kernel, p, gva, KIND_USER_WRITE, value)).toBeGreaterThanOrEqual(0);
  /** A user read that must not fault to the guest: the value read. */
  const read = (gva: number) => {
    expect(g.cpu.access(gva, KIND_USER_READ, 0)).toBeGreaterThanOrEqual(0);
    return g.cpu.readValue;
  };
  const l2 = () => g.kernel.pt.tableFor(p.l4Gfn, A, 2, false);
  /** The guest's l2e i: [lo, hi]. */
  const l2e = (i: number): [number, number] => {
    g.kernel.pt.read(l2(), i);
    return [g.kernel.pt.lo, g.kernel.pt.hi];
  };
  /**
   * Under shadow paging, the VMM's invariants: TLB and shadow leaves agree with the guest's
   * tables and the P2M, reach only the domain's frames, and the shadow bookkeeping holds. (Not
   * the guest kernel's own checks: these tests edit its tables behind its back.)
   */
  const checkVmm = () => {
    if (g.vmm === null || g.host === null) return;
    expect(checkShadow(shadowOf(g.vmm), g.cpu, g.host.frames, g.vmm.id)).toBeNull();
    expect(checkBookkeeping(shadowOf(g.vmm))).toBeNull();
  };
  return { g, p, write, read, l2, l2e, checkVmm, c: g.counters };
}

/**
 * Every 4 KiB page of huge page A written (page i holds i + 1000) and read back, so that the
 * TLB holds its translation: 512 splinters under shadow paging, one 2 MiB entry natively. Then
 * the guest INVLPGs A's first byte and reads the other 511 pages: returns the TLB misses and
 * shadow faults of those reads, and the shadow leaves INVLPG dropped.
 */
function invlpgHuge(mode: TestMode) {
  const { g, write, read, l2e, c } = hugeHeap(mode);
  for (let i = 0; i < 512; i++) write(A + i * PAGE, 1000 + i);
  expect(l2e(128)[0] & PTE_PS).toBe(PTE_PS);
  let misses = c[C_TLB_MISSES];
  for (let i = 0; i < 512; i++) expect(read(A + i * PAGE)).toBe(1000 + i);
  expect(c[C_TLB_MISSES]).toBe(misses); // all 512 pages are in the TLB
  const invlpgs = c[C_SHADOW_INVLPG];
  g.cpu.invlpg(A);
  misses = c[C_TLB_MISSES];
  const faults = c[C_SHADOW_FAULT];
  for (let i = 1; i < 512; i++) expect(read(A + i * PAGE)).toBe(1000 + i);
  const after = { misses: c[C_TLB_MISSES] - misses, faults: c[C_SHADOW_FAULT] - faults };
  // Page 0 last (its shadow leaf, if any, was dropped: reading it may exit).
  expect(read(A)).toBe(1000);
  g.check();
  return { ...after, shadowInvlpgs: c[C_SHADOW_INVLPG] - invlpgs };
}

// Guards the flush in ShadowPaging.invlpg: INVLPG of a guest 2 MiB page drops all 512 splinters.
test("INVLPG of a guest 2 MiB page drops the TLB entries of all 512 splinters", () => {
  // Natively the one 2 MiB entry goes: the first read after it walks, the others hit the entry
  // that walk filled.
  expect(invlpgHuge("native")).toEqual({ misses: 1, faults: 0, shadowInvlpgs: 0 });
  // Under shadow paging each of the 511 other pages misses in the TLB, and none exits: the VMM
  // dropped the shadow leaf of page 0 only, the other splinters are still in the FL1.
  expect(invlpgHuge("shadow")).toEqual({ misses: 511, faults: 0, shadowInvlpgs: 1 });
});

// Guards SHADOW_SET_FLUSH for a re-pointed entry: moving a 2 MiB l2e flushes its old splinters.
test("a 2 MiB l2e pointed at other frames: every splinter reads the new page", () => {
  const remap = (mode: TestMode) => {
    const { g, write, read, l2, l2e, checkVmm } = hugeHeap(mode);
    write(A + PAGE, 111); // huge page A, its 4 KiB page 1
    write(B + PAGE, 222); // huge page B, its 4 KiB page 1
    expect(read(A + PAGE)).toBe(111); // A's page 1 in the TLB
    const [lo, hi] = l2e(129);
    g.kernel.pt.set(l2(), 128, lo, hi, true); // l2e[128] maps huge page B as well
    expect(l2e(128)).toEqual([lo, hi]);
    if (g.vmm !== null) {
      // The store was emulated: the shadow l2e now points at B's FL1, and A's splinters left the
      // TLB with the old shadow l2e (natively the stale 2 MiB entry may serve until INVLPG).
      const leaf = shadowOf(g.vmm).findLeaf(A + PAGE)!;
      expect(isFl1(leaf.sp.type)).toBe(true);
      expect(leaf.sp.gfn).toBe(pteFrame(lo, hi));
      expect(read(A + PAGE)).toBe(222);
    }
    g.cpu.invlpg(A); // one INVLPG invalidates the whole 2 MiB translation (SDM 4.10.4.1)
    const value = read(A + PAGE);
    checkVmm();
    return value;
  };
  expect(remap("native")).toBe(222);
  expect(remap("shadow")).toBe(222);
});

// Guards the FL1 key's D bit (fl1TypeFor): a clean 2 MiB alias of dirty frames gets its own FL1.
test("2 MiB alias: a write through a clean alias of dirty frames sets the alias's D bit", () => {
  const aliasWrite = (mode: TestMode) => {
    const { g, write, read, l2, l2e, checkVmm, c } = hugeHeap(mode);
    write(A, 1); // huge page A, written: l2e[128] dirty
    const [lo, hi] = l2e(128);
    expect(lo & PTE_D).toBe(PTE_D);
    g.kernel.pt.set(l2(), 133, (lo & ~PTE_D) >>> 0, hi, false); // alias of A at l2e[133], clean
    const alias = USER_HEAP_BASE + 5 * HUGE;
    const faults = c[C_SHADOW_FAULT_FIXED];
    expect(g.cpu.access(alias, KIND_USER_WRITE, 2)).toBe(g.gfnToMfn(pteFrame(lo, hi)));
    const exits = c[C_SHADOW_FAULT_FIXED] - faults;
    expect(read(A)).toBe(2); // the alias's write landed in A's first page
    checkVmm();
    return { aliasDirty: (l2e(133)[0] & PTE_D) !== 0, exits };
  };
  expect(aliasWrite("native")).toEqual({ aliasDirty: true, exits: 0 });
  // Under shadow paging the write exits once: the VMM's walk of the guest tables sets D.
  expect(aliasWrite("shadow")).toEqual({ aliasDirty: true, exits: 1 });
});
