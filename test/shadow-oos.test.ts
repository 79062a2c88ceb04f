/**
 * Out-of-sync L1 shadows (vmm/shadow/oos.ts, after Xen's oos.c), each rule on its own: a
 * written L1 goes out of sync once and is then written with no exit; a CR3 write resyncs it; an
 * INVLPG clears one entry and leaves it out of sync; a fourth page evicts one of three; a third
 * writable mapping takes the write right from the oldest; and whatever a guest writes into an
 * out-of-sync L1, it never reaches a frame that is not its own.
 */

import { describe, expect, test } from "vitest";
import { directMap, USER_HEAP_BASE } from "../src/guest/layout.js";
import type { Process } from "../src/guest/process.js";
import { KIND_SUP_READ, KIND_USER_READ, KIND_USER_WRITE } from "../src/hw/access.js";
import { PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US, pteFrame, pteHi, pteLo } from "../src/hw/pte.js";
import { XLATE_FAULT } from "../src/hw/vcpu-interfaces.js";
import { COUNTER_NAMES, type CounterName } from "../src/metrics/counters.js";
import { MEMOP_DECREASE_RESERVATION } from "../src/vmm/balloon/reservation.js";
import { OWNER_DOMAIN } from "../src/vmm/frames.js";
import { checkBookkeeping, checkIsolation, checkShadow } from "../src/vmm/shadow/check.js";
import { SHADOW_OOS_PAGES } from "../src/vmm/shadow/oos.js";
import { SH_L2 } from "../src/vmm/shadow/page.js";
import type { ShadowPaging } from "../src/vmm/shadow/shadow.js";
import { bootGuest, type GuestOptions, type TestGuest } from "./support/guest.js";
import { shadowOf } from "./support/modes.js";

const page = (n: number) => USER_HEAP_BASE + n * 4096;

function oosGuest(options: GuestOptions = {}) {
  const g = bootGuest(32, { mode: "shadow", ...options });
  const sh = shadowOf(g.vmm);
  const count = (name: CounterName) => g.counters[COUNTER_NAMES.indexOf(name)];
  return { g, sh, count };
}

/** A process with `pages` heap pages, of which `touched` written (page n holds n + 1). */
function process(g: TestGuest, touched: number[], pages = 256): Process {
  const p = g.kernel.spawn("p", { code: 4096, heap: pages * 4096, hugeHeap: false })!;
  for (const n of touched) expect(g.write(p, page(n), n + 1)).toBe(true);
  g.kernel.switchTo(p);
  return p;
}

/** The guest's L1 table that maps gva in p. */
const l1Of = (g: TestGuest, p: Process, gva: number) =>
  g.kernel.pt.tableFor(p.l4Gfn, gva, 1, false);

/** Entry i of guest table gfn as [lo, hi] (from its host frame). */
function entry(g: TestGuest, gfn: number, i: number): [number, number] {
  g.mem.read64(g.gfnToMfn(gfn), i);
  return [g.mem.lo, g.mem.hi];
}

/** The shadow leaf that maps gva from the loaded root: [lo, hi], or null. */
function leaf(sh: ShadowPaging, gva: number): [number, number] | null {
  const found = sh.findLeaf(gva);
  if (found === null) return null;
  sh.mem.read64(found.sp.mfn, found.index);
  return [sh.mem.lo, sh.mem.hi];
}

/** Swap entries 0 and 1 of l1 with kernel stores and no flush; returns their frames' mfns. */
function swapFirstTwo(g: TestGuest, l1: number): { mfn0: number; mfn1: number } {
  const [lo0, hi0] = entry(g, l1, 0);
  const [lo1, hi1] = entry(g, l1, 1);
  g.kernel.ops.setPte(l1, 0, lo1, hi1);
  g.kernel.ops.setPte(l1, 1, lo0, hi0);
  return { mfn0: g.gfnToMfn(pteFrame(lo0, hi0)), mfn1: g.gfnToMfn(pteFrame(lo1, hi1)) };
}

describe("out-of-sync L1 shadows", () => {
  test.each([true, false])(
    "an L1 written again and again (out of sync: %s): one exit, then none",
    (outOfSync) => {
      // No unshadow heuristic: Xen's early unshadow would take the table for dead after two zeroes.
      const { g, sh, count } = oosGuest({ shadow: { outOfSync, unshadow: "none" } });
      const p = process(g, [0]);
      const l1 = l1Of(g, p, page(0));
      const exits = count("vmexits");
      const emulated = count("shadow_emulate_write");
      const unsyncs = count("shadow_unsync");
      for (let i = 0; i < 8; i++) g.kernel.ops.setPte(l1, 200 + i, 0, 0);
      if (outOfSync) {
        expect(count("vmexits")).toBe(exits + 1);
        expect(count("shadow_emulate_write")).toBe(emulated);
        expect(count("shadow_unsync")).toBe(unsyncs + 1);
        expect(sh.oos?.isOutOfSync(l1)).toBe(true);
        // The kernel's direct-map leaf for the table is writable now, and remembered.
        expect((leaf(sh, directMap(l1))?.[0] ?? 0) & PTE_RW).toBe(PTE_RW);
        expect(count("shadow_oos_fixup_add")).toBeGreaterThan(0);
      } else {
        expect(count("vmexits")).toBe(exits + 8);
        expect(count("shadow_emulate_write")).toBe(emulated + 8);
        expect(sh.oos).toBeNull();
      }
      expect(g.read(p, page(0))).toBe(1);
      g.check();
    },
  );

  test("an L2 never goes out of sync: its writes are emulated", () => {
    const { g, sh, count } = oosGuest({ shadow: { unshadow: "none" } });
    const p = process(g, [0]);
    const l2 = g.kernel.pt.tableFor(p.l4Gfn, page(0), 2, false);
    const emulated = count("shadow_emulate_write");
    for (let i = 0; i < 3; i++) g.kernel.ops.setPte(l2, 300 + i, 0, 0);
    expect(count("shadow_emulate_write")).toBe(emulated + 3);
    expect(sh.oos?.isOutOfSync(l2)).toBe(false);
    g.check();
  });

  test("a CR3 write resyncs: the guest never sees the stale translation after it", () => {
    const { g, sh, count } = oosGuest();
    const p = process(g, [0, 1]);
    const l1 = l1Of(g, p, page(0));
    const { mfn0, mfn1 } = swapFirstTwo(g, l1);
    expect(sh.oos?.isOutOfSync(l1)).toBe(true);
    // Out of sync: the shadow still maps the old frames (as a TLB may until the flush).
    expect(pteFrame(...(leaf(sh, page(0)) ?? [0, 0]))).toBe(mfn0);
    const resyncs = count("shadow_resync");
    g.cpu.writeCr3(p.l4Gfn * 4096, 0, false);
    expect(count("shadow_resync")).toBe(resyncs + 1);
    expect(sh.oos?.isOutOfSync(l1)).toBe(false);
    expect(pteFrame(...(leaf(sh, page(0)) ?? [0, 0]))).toBe(mfn1);
    expect(g.read(p, page(0))).toBe(2);
    expect(g.read(p, page(1))).toBe(1);
    // Write-protected again: the next kernel store to it faults (and unsyncs it again).
    expect((leaf(sh, directMap(l1))?.[0] ?? PTE_RW) & PTE_RW).toBe(0);
    g.check();
  });

  test("INVLPG clears only that address's shadow entry; the L1 stays out of sync", () => {
    const { g, sh, count } = oosGuest();
    const p = process(g, [0, 1]);
    const l1 = l1Of(g, p, page(0));
    const { mfn0, mfn1 } = swapFirstTwo(g, l1);
    const resyncs = count("shadow_resync");
    const dropped = count("shadow_invlpg");
    g.kernel.ops.flushTlbOne(page(0));
    expect(count("shadow_invlpg")).toBe(dropped + 1);
    expect(leaf(sh, page(0))).toBeNull();
    expect(pteFrame(...(leaf(sh, page(1)) ?? [0, 0]))).toBe(mfn1); // still stale
    expect(sh.oos?.isOutOfSync(l1)).toBe(true);
    expect(count("shadow_resync")).toBe(resyncs);
    // The next access faults and propagates that one entry from the guest's L1.
    expect(g.read(p, page(0))).toBe(2);
    expect(pteFrame(...(leaf(sh, page(0)) ?? [0, 0]))).toBe(mfn1);
    expect(g.read(p, page(1))).toBe(2); // stale until its own INVLPG, as a TLB entry may be
    expect(checkIsolation(sh, g.cpu, g.host!.frames, g.vmm!.id)).toBeNull();
    g.kernel.ops.flushTlbOne(page(1));
    expect(g.read(p, page(1))).toBe(1);
    expect(pteFrame(...(leaf(sh, page(1)) ?? [0, 0]))).toBe(mfn0);
    expect(sh.oos?.isOutOfSync(l1)).toBe(true);
    expect(count("shadow_resync")).toBe(resyncs);
    g.check();
  });

  test("a fourth out-of-sync page evicts one of three, as Xen's hash places them", () => {
    const { g, sh, count } = oosGuest();
    const oos = sh.oos!;
    // Four L1 tables: heap pages 512 apart.
    const p = process(g, [0, 512, 1024, 1536], 2048);
    const l1s = [0, 512, 1024, 1536].map((n) => l1Of(g, p, page(n)));
    g.cpu.writeCr3(p.l4Gfn * 4096, 0, false); // resyncs everything: the table starts empty
    expect(Array.from(oos.gfn)).toEqual([-1, -1, -1]);
    // A model of oos_hash_add: home slot mfn mod 3; a page at home there moves to the next slot;
    // whatever holds the slot needed is evicted.
    const model: number[] = [-1, -1, -1];
    let evictions = 0;
    const home = (gfn: number) => g.gfnToMfn(gfn) % SHADOW_OOS_PAGES;
    for (const l1 of l1s) {
      const h = home(l1);
      const slot = model[h] >= 0 && home(model[h]) === h ? (h + 1) % 3 : h;
      if (model[slot] >= 0) evictions++;
      if (slot !== h) model[slot] = model[h];
      model[h] = l1;
      g.kernel.ops.setPte(l1, 500, 0, 0);
      expect(Array.from(oos.gfn)).toEqual(model);
    }
    expect(evictions).toBeGreaterThan(0); // four pages, three slots
    expect(count("shadow_unsync")).toBe(4);
    expect(count("shadow_unsync_evict")).toBe(evictions);
    expect(count("shadow_resync")).toBe(evictions);
    for (const l1 of l1s) {
      const writable = ((leaf(sh, directMap(l1))?.[0] ?? 0) & PTE_RW) !== 0;
      expect(writable, `gfn ${l1}`).toBe(oos.isOutOfSync(l1));
    }
    g.check();
  });

  test("an evicted page is resynced: its changes reach the shadow", () => {
    const { g, sh } = oosGuest();
    const p = process(g, [0, 1, 512, 1024, 1536], 2048);
    const l1 = l1Of(g, p, page(0));
    g.cpu.writeCr3(p.l4Gfn * 4096, 0, false);
    const { mfn1 } = swapFirstTwo(g, l1);
    // Out-of-sync pages until l1 is pushed out.
    for (const n of [512, 1024, 1536]) {
      if (!sh.oos?.isOutOfSync(l1)) break;
      g.kernel.ops.setPte(l1Of(g, p, page(n)), 500, 0, 0);
    }
    expect(sh.oos?.isOutOfSync(l1)).toBe(false);
    expect(pteFrame(...(leaf(sh, page(0)) ?? [0, 0]))).toBe(mfn1);
  });

  test("a third writable mapping of an out-of-sync L1 takes the oldest one's write right", () => {
    const { g, sh, count } = oosGuest({ shadow: { unshadow: "none" } });
    const p = process(g, [0]);
    const l1 = l1Of(g, p, page(0));
    const rw = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
    // The kernel's store unsyncs the table (its direct map is the first writable mapping)...
    g.kernel.ops.setPte(l1, 100, pteLo(l1, rw), pteHi(l1, false));
    g.kernel.ops.setPte(l1, 101, pteLo(l1, rw), pteHi(l1, false));
    expect(sh.oos?.isOutOfSync(l1)).toBe(true);
    expect(count("shadow_oos_fixup_evict")).toBe(0);
    // ...and two user mappings of it (a hostile guest) are the second and third. Only a write
    // fault makes a mapping of an out-of-sync page writable (Xen's ft_demand_write), not a read.
    expect(g.cpu.access(page(100) + 8 * 300, KIND_USER_READ, 0)).not.toBe(XLATE_FAULT);
    expect((leaf(sh, page(100))?.[0] ?? PTE_RW) & PTE_RW).toBe(0);
    expect(g.cpu.access(page(100) + 8 * 300, KIND_USER_WRITE, 0)).not.toBe(XLATE_FAULT);
    expect(count("shadow_oos_fixup_evict")).toBe(0);
    expect(g.cpu.access(page(101) + 8 * 301, KIND_USER_WRITE, 0)).not.toBe(XLATE_FAULT);
    expect(count("shadow_oos_fixup_evict")).toBe(1);
    expect((leaf(sh, directMap(l1))?.[0] ?? PTE_RW) & PTE_RW).toBe(0);
    expect((leaf(sh, page(100))?.[0] ?? 0) & PTE_RW).toBe(PTE_RW);
    expect(checkShadow(sh, g.cpu, g.host!.frames, g.vmm!.id)).toBeNull();
  });

  test("isolation: an out-of-sync L1 pointed at another domain's frame maps the guest's own", () => {
    const { g: a, sh } = oosGuest({ hostMiB: 128 });
    const b = bootGuest(32, { mode: "shadow", host: a.host! });
    const pb = process(b, [0, 1, 2, 3]);
    const frames = a.host!.frames;
    // A frame of domain B whose number is a gfn of A's memory.
    const theirs = b.gfnToMfn(pteFrame(...entry(b, l1Of(b, pb, page(3)), 3)));
    expect(frames.owner[theirs]).toBe(OWNER_DOMAIN);
    expect(frames.domainOf(theirs)).toBe(b.vmm!.id);
    expect(theirs).toBeLessThan((32 * 2 ** 20) / 4096);
    const p = process(a, [0]);
    const l1 = l1Of(a, p, page(0));
    const rw = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
    a.kernel.ops.setPte(l1, 7, pteLo(theirs, rw), pteHi(theirs, false));
    expect(sh.oos?.isOutOfSync(l1)).toBe(true);
    for (const kind of [KIND_USER_READ, KIND_USER_WRITE]) {
      const mfn = a.cpu.access(page(7), kind, 5);
      expect(mfn).not.toBe(theirs);
      expect(frames.domainOf(mfn)).toBe(a.vmm!.id);
      expect(checkIsolation(sh, a.cpu, frames, a.vmm!.id)).toBeNull();
    }
    a.cpu.writeCr3(p.l4Gfn * 4096, 0, false);
    expect(checkIsolation(sh, a.cpu, frames, a.vmm!.id)).toBeNull();
    expect(b.read(pb, page(3))).toBe(4); // B's data untouched
  });

  test("isolation: a stale out-of-sync entry loses its frame when the guest gives it away", () => {
    const { g, sh } = oosGuest();
    const p = process(g, [0, 1]);
    const l1 = l1Of(g, p, page(0));
    const [lo0, hi0] = entry(g, l1, 0);
    const gfn0 = pteFrame(lo0, hi0);
    const mfn0 = g.gfnToMfn(gfn0);
    // The guest unmaps page 0 straight into its out-of-sync L1, with no flush, and hands the
    // frame back to the VMM: the shadow entry was stale, and must go with the frame.
    g.kernel.ops.setPte(l1, 0, 0, 0);
    expect(sh.oos?.isOutOfSync(l1)).toBe(true);
    expect(pteFrame(...(leaf(sh, page(0)) ?? [0, 0]))).toBe(mfn0);
    const gfns = Int32Array.of(gfn0);
    expect(g.cpu.memoryOp(MEMOP_DECREASE_RESERVATION, gfns, 1)).toBe(1);
    expect(leaf(sh, page(0))).toBeNull();
    expect(sh.tables.mappingsOf(mfn0)).toEqual([]);
    expect(checkIsolation(sh, g.cpu, g.host!.frames, g.vmm!.id)).toBeNull();
    expect(sh.oos?.isOutOfSync(l1)).toBe(true);
  });
});

/**
 * The other resyncs: each new path to an out-of-sync L1 brings it into sync first, so the path
 * shows the L1 as the guest has written it. Page 0 and 1's entries are swapped in an
 * out-of-sync L1 with no flush; a new path to that L1 must read page 0 as 2 and page 1 as 1
 * (a stale shadow would give 1 and 2). These tables alias each other, which the guest
 * kernel's own accounting does not allow: only the VMM's checks run.
 */
describe("out-of-sync L1 shadows: resyncs on new paths", () => {
  const GIB = 2 ** 30;

  function stale() {
    const { g, sh } = oosGuest();
    const p = process(g, [0, 1]);
    const l1 = l1Of(g, p, page(0));
    const l2 = g.kernel.pt.tableFor(p.l4Gfn, page(0), 2, false);
    const l3 = g.kernel.pt.tableFor(p.l4Gfn, page(0), 3, false);
    swapFirstTwo(g, l1);
    expect(sh.oos?.isOutOfSync(l1)).toBe(true);
    /** What a user read of gva gives (the VMM fixes hidden faults). */
    const read = (gva: number) => {
      expect(g.cpu.access(gva, KIND_USER_READ, 0)).not.toBe(XLATE_FAULT);
      return g.cpu.readValue;
    };
    const vmmChecks = () => {
      expect(checkShadow(sh, g.cpu, g.host!.frames, g.vmm!.id)).toBeNull();
      expect(checkBookkeeping(sh)).toBeNull();
    };
    return { g, sh, p, l1, l2, l3, read, vmmChecks };
  }

  test("an L2 entry that links it (shadow_set_l2e)", () => {
    const { g, sh, l1, l2, read, vmmChecks } = stale();
    // The heap is L2 entry 128 (256 MiB); entry 129 now links the same L1 (an emulated write).
    g.kernel.ops.setPte(l2, 129, ...entry(g, l2, 128));
    expect(sh.oos?.isOutOfSync(l1)).toBe(false);
    expect(read(page(512))).toBe(2);
    expect(read(page(513))).toBe(1);
    vmmChecks();
  });

  test("an L3 entry that links an existing shadow (validate_gl3e)", () => {
    const { g, sh, l1, l3, read, vmmChecks } = stale();
    g.kernel.ops.setPte(l3, 5, ...entry(g, l3, 0));
    expect(sh.oos?.isOutOfSync(l1)).toBe(false);
    expect(read(5 * GIB + page(0))).toBe(2);
    expect(read(5 * GIB + page(1))).toBe(1);
    vmmChecks();
  });

  test("a new L4 or L3 shadow entry made by a fault (shadow_get_and_create_l1e)", () => {
    const { g, sh, p, l1, l3, read, vmmChecks } = stale();
    // A new L3 table, written while it is not shadowed (no exit), linked from L4 entry 1.
    const n = g.kernel.frames.alloc();
    g.kernel.zeroFrame(n);
    g.kernel.ops.setPte(n, 0, ...entry(g, l3, 0));
    g.kernel.ops.setPte(p.l4Gfn, 1, pteLo(n, PTE_P | PTE_RW | PTE_US | PTE_A), pteHi(n, false));
    expect(sh.oos?.isOutOfSync(l1)).toBe(true); // nothing linked yet
    const base = 2 ** 39;
    expect(read(base + page(0))).toBe(2); // the fault builds the path, and resyncs
    expect(sh.oos?.isOutOfSync(l1)).toBe(false);
    expect(read(base + page(1))).toBe(1); // no fault: the shadow entry itself is right
    vmmChecks();
  });

  test("the L1 shadowed at another level (shadow_promote)", () => {
    const { g, sh, l1, l3, vmmChecks } = stale();
    // L3 entry 6 takes the L1 for an L2: a walk through it shadows it as an L2 too. Its entry 1
    // (page 0's frame now) reads as an L2 entry, and page 0's first word (1) as a present L1e.
    const flags = PTE_P | PTE_RW | PTE_US | PTE_A;
    g.kernel.ops.setPte(l3, 6, pteLo(l1, flags), pteHi(l1, false));
    expect(g.cpu.access(6 * GIB + 2 ** 21, KIND_SUP_READ, 0)).not.toBe(XLATE_FAULT);
    expect(sh.tables.shadowsOf(l1).length).toBe(2);
    expect(sh.oos?.isOutOfSync(l1)).toBe(false);
    vmmChecks();
  });

  // The walk above also sets a new L3 shadow entry, which resyncs everything: the promotion's
  // own resync is seen only when the tables are asked directly.
  test("the tables resync a page before shadowing it at another level", () => {
    const { sh, l1 } = stale();
    expect(sh.tables.prealloc(1)).toBe(true);
    const l2 = sh.tables.create(l1, SH_L2);
    expect(sh.oos?.isOutOfSync(l1)).toBe(false);
    sh.tables.maybeFree(l2);
    expect(checkBookkeeping(sh)).toBeNull();
  });
});
