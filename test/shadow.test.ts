/** Each mechanism of shadow paging, on its own: every test fails when its mechanism goes. */

import { describe, expect, test } from "vitest";
import { fork } from "../src/guest/fork.js";
import { directMap, USER_HEAP_BASE } from "../src/guest/layout.js";
import type { Process } from "../src/guest/process.js";
import { PTE_A, PTE_D, PTE_P, PTE_RW, pteFrame } from "../src/hw/pte.js";
import { COUNTER_NAMES, type CounterName } from "../src/metrics/counters.js";
import { P2M_RAM_RW } from "../src/vmm/p2m.js";
import { unshadow } from "../src/vmm/shadow/emulate.js";
import { SHADOW_OOS_PAGES } from "../src/vmm/shadow/oos.js";
import { isFl1, SH_L1, SH_L4 } from "../src/vmm/shadow/page.js";
import { defaultShadowPoolPages } from "../src/vmm/shadow/shadow.js";
import { bootGuest, type GuestOptions, type TestGuest } from "./support/guest.js";
import { shadowOf } from "./support/modes.js";

const image = { code: 4096, heap: 256 * 4096, hugeHeap: false };
const page = (n: number) => USER_HEAP_BASE + n * 4096;

function shadowGuest(options: GuestOptions = {}) {
  const g = bootGuest(32, { mode: "shadow", ...options });
  const count = (name: CounterName) => g.counters[COUNTER_NAMES.indexOf(name)];
  const sh = shadowOf(g.vmm);
  return { g, sh, count };
}

/** The guest's own leaf entry for gva in proc (read from guest memory through the P2M). */
function guestPte(
  g: TestGuest,
  proc: Process,
  gva: number,
): { lo: number; hi: number; gfn: number } {
  const l1 = g.kernel.pt.tableFor(proc.l4Gfn, gva, 1, false);
  g.mem.read64(g.gfnToMfn(l1), Math.floor(gva / 4096) % 512);
  return { lo: g.mem.lo, hi: g.mem.hi, gfn: pteFrame(g.mem.lo, g.mem.hi) };
}

describe("shadow paging mechanisms", () => {
  // The article's sequence and the heuristics below are about emulated page-table writes: with
  // out-of-sync L1s (shadow-oos.test.ts) a process's PTE writes go straight to its L1 instead.
  const EMULATED = { outOfSync: false } as const;

  test("the article's sequence: true fault, populate, emulated PTE write, then no VMM at all", () => {
    const { g, count } = shadowGuest({ shadow: EMULATED });
    const p = g.kernel.spawn("p", image)!;
    // A first page makes the process's page-table page T exist and be shadowed.
    expect(g.write(p, page(6), 1)).toBe(true);
    const before = {
      fault: count("shadow_fault"),
      bail: count("shadow_fault_bail_real_fault"),
      populate: count("p2m_populate"),
      emulate: count("shadow_emulate_write"),
      validate: count("shadow_validate_gl1e_calls"),
      guest: count("guest_page_faults"),
    };
    expect(g.write(p, page(7), 42)).toBe(true);
    // 1-2: the shadow walk faults, the guest walk says not present: a true fault, injected.
    expect(count("shadow_fault")).toBeGreaterThan(before.fault);
    expect(count("shadow_fault_bail_real_fault")).toBeGreaterThan(before.bail);
    expect(count("guest_page_faults")).toBe(before.guest + 1);
    // 3: the guest zeroes a fresh frame: its first touch gives it a host frame.
    expect(count("p2m_populate")).toBeGreaterThan(before.populate);
    // 4: the guest's PTE write is trapped, emulated and revalidated.
    expect(count("shadow_emulate_write")).toBeGreaterThan(before.emulate);
    expect(count("shadow_validate_gl1e_calls")).toBeGreaterThan(before.validate);
    // 5: from then on the access runs with no VMM involvement.
    const exits = count("vmexits");
    for (let i = 0; i < 10; i++) expect(g.read(p, page(7))).toBe(42);
    expect(count("vmexits")).toBe(exits);
    g.check();
  });

  test("a hidden fault rebuilds a missing shadow without the guest noticing", () => {
    const { g, sh, count } = shadowGuest();
    const p = g.kernel.spawn("p", image)!;
    g.write(p, page(1), 5);
    const l1 = g.kernel.pt.tableFor(p.l4Gfn, page(1), 1, false);
    unshadow(sh, l1);
    const guestFaults = count("guest_page_faults");
    const fixed = count("shadow_fault_fixed");
    expect(g.read(p, page(1))).toBe(5);
    expect(count("guest_page_faults")).toBe(guestFaults);
    expect(count("shadow_fault_fixed")).toBe(fixed + 1);
    expect(sh.tables.lookup(l1, SH_L1)).not.toBeNull();
    g.check();
  });

  test.each(["rmap", "bruteforce"] as const)(
    "write protection (%s): the direct map loses write access to a new page table",
    (writableSearch) => {
      const { g, sh, count } = shadowGuest({ shadow: { writableSearch, ...EMULATED } });
      const p = g.kernel.spawn("p", image)!;
      g.write(p, page(0), 1);
      const l1 = g.kernel.pt.tableFor(p.l4Gfn, page(0), 1, false);
      expect(sh.tables.isShadowedTable(l1)).toBe(true);
      // The kernel's own mapping of the table (its direct map, an FL1 entry) is read-only.
      const leaf = sh.findLeaf(directMap(l1));
      if (leaf) {
        g.mem.read64(leaf.sp.mfn, leaf.index);
        expect(g.mem.lo & PTE_RW).toBe(0);
      }
      expect(
        count(writableSearch === "rmap" ? "shadow_writeable" : "shadow_writeable_bf"),
      ).toBeGreaterThan(0);
      expect(count(writableSearch === "rmap" ? "shadow_writeable_bf" : "shadow_writeable")).toBe(0);
      // So a kernel store to it is emulated.
      const emulated = count("shadow_emulate_write");
      g.kernel.switchTo(p);
      g.kernel.ops.setPte(l1, 100, 0, 0);
      expect(count("shadow_emulate_write")).toBe(emulated + 1);
      g.check();
    },
  );

  test("A/D emulation: a clean page is mapped read-only until the first write sets D", () => {
    const { g, sh, count } = shadowGuest();
    const p = g.kernel.spawn("p", image)!;
    g.write(p, page(0), 1);
    const child = fork(g.kernel, p)!; // child entries are old (A clear) and write-protected
    expect(guestPte(g, child, page(0)).lo & PTE_A).toBe(0);
    expect(g.read(child, page(0))).toBe(1);
    expect(guestPte(g, child, page(0)).lo & PTE_A).toBe(PTE_A); // set by the VMM, as hardware would
    g.kernel.exit(p); // the child is now the frame's only user: its COW fault will reuse it
    // A page whose guest entry is writable but clean: the shadow leaf stays read-only.
    g.kernel.switchTo(child);
    const mapped = g.kernel.mmap(child, 4 * 4096, 3, false);
    expect(g.read(child, mapped)).toBe(0);
    const pte = guestPte(g, child, mapped);
    expect(pte.lo & PTE_RW).toBe(PTE_RW);
    expect(pte.lo & PTE_D).toBe(0);
    let leaf = sh.findLeaf(mapped)!;
    g.mem.read64(leaf.sp.mfn, leaf.index);
    expect(g.mem.lo & PTE_RW).toBe(0);
    const fixed = count("shadow_fault_fixed");
    const guestFaults = count("guest_page_faults");
    expect(g.write(child, mapped, 9)).toBe(true);
    expect(count("shadow_fault_fixed")).toBe(fixed + 1); // a hidden fault, no guest fault
    expect(count("guest_page_faults")).toBe(guestFaults);
    expect(guestPte(g, child, mapped).lo & PTE_D).toBe(PTE_D);
    leaf = sh.findLeaf(mapped)!;
    g.mem.read64(leaf.sp.mfn, leaf.index);
    expect(g.mem.lo & PTE_RW).toBe(PTE_RW);
    g.check();
  });

  test("a guest 2 MiB page is splintered into an FL1 shadow", () => {
    const { g, sh } = shadowGuest();
    const p = g.kernel.spawn("p", { code: 4096, heap: 4 * 2 ** 20, hugeHeap: true })!;
    g.write(p, USER_HEAP_BASE + 3 * 4096, 7);
    const leaf = sh.findLeaf(USER_HEAP_BASE + 3 * 4096)!;
    expect(isFl1(leaf.sp.type)).toBe(true);
    expect(leaf.index).toBe(3);
    expect(g.read(p, USER_HEAP_BASE + 3 * 4096)).toBe(7);
    g.check();
  });

  test("CR3: a top-level shadow is found again by its hash, pinned and moved to the front", () => {
    const { g, sh, count } = shadowGuest();
    const a = g.kernel.spawn("a", image)!;
    const b = g.kernel.spawn("b", image)!;
    g.write(a, page(0), 1);
    g.write(b, page(0), 2);
    const sa = sh.tables.lookup(a.l4Gfn, SH_L4)!;
    const allocs = count("shadow_alloc");
    const cr3 = count("vmexits_cr3");
    expect(g.read(a, page(0))).toBe(1);
    expect(count("vmexits_cr3")).toBe(cr3 + 1);
    expect(sh.root).toBe(sa);
    expect(sa.pinned).toBe(true);
    expect(count("shadow_alloc")).toBe(allocs); // nothing rebuilt
    g.check();
  });

  test("INVLPG drops the shadow leaf and the TLB entry", () => {
    const { g, sh, count } = shadowGuest();
    const p = g.kernel.spawn("p", image)!;
    g.write(p, page(0), 1);
    expect(sh.findLeaf(page(0))).not.toBeNull();
    g.kernel.switchTo(p);
    g.cpu.invlpg(page(0));
    expect(count("vmexits_invlpg")).toBe(1);
    expect(count("shadow_invlpg")).toBe(1);
    expect(sh.findLeaf(page(0))).toBeNull();
    expect(g.read(p, page(0))).toBe(1); // and it faults back in
    g.check();
  });

  test("a small pool reclaims: first by unpinning top levels, then by unhooking everything", () => {
    const { g, count } = shadowGuest({ shadow: { pool: 8 * 4096 } });
    const procs: Process[] = [];
    for (let i = 0; i < 6; i++) procs.push(g.kernel.spawn(`p${i}`, image)!);
    for (let round = 0; round < 3; round++) {
      procs.forEach((p, i) => {
        for (let j = 0; j < 3; j++) g.write(p, page(j * 100), i * 10 + j);
      });
    }
    procs.forEach((p, i) => {
      for (let j = 0; j < 3; j++) expect(g.read(p, page(j * 100))).toBe(i * 10 + j);
    });
    expect(count("shadow_prealloc_1")).toBeGreaterThan(0);
    expect(count("shadow_prealloc_2")).toBeGreaterThan(0);
    g.check();
  });

  test("early unshadow: the zero writes of an exit unshadow the dying table", () => {
    const run = (unshadowPolicy: "early" | "none") => {
      const { g, count } = shadowGuest({ shadow: { unshadow: unshadowPolicy, ...EMULATED } });
      const p = g.kernel.spawn("p", image)!;
      for (let i = 0; i < 16; i++) g.write(p, page(i), i);
      const emulated = count("shadow_emulate_write");
      g.kernel.exit(p);
      g.check();
      return {
        early: count("shadow_early_unshadow"),
        emulated: count("shadow_emulate_write") - emulated,
      };
    };
    const early = run("early");
    const none = run("none");
    expect(early.early).toBeGreaterThan(0);
    expect(none.early).toBe(0);
    // Once the table is unshadowed, the rest of the teardown writes it at full speed.
    expect(early.emulated).toBeLessThan(none.emulated);
  });

  test("write flooding: three emulated writes with no use unshadow the page", () => {
    const { g, sh, count } = shadowGuest({ shadow: { unshadow: "flood", ...EMULATED } });
    const p = g.kernel.spawn("p", image)!;
    g.write(p, page(0), 1);
    const l1 = g.kernel.pt.tableFor(p.l4Gfn, page(0), 1, false);
    g.kernel.switchTo(p);
    for (let i = 0; i < 3; i++) g.kernel.ops.setPte(l1, 300 + i, 0, 0);
    expect(count("shadow_flood_unshadow")).toBe(1);
    expect(sh.tables.isShadowedTable(l1)).toBe(false);
    expect(g.read(p, page(0))).toBe(1);
    g.check();
  });

  test("a P2M change removes every shadow entry and TLB entry of the old frame", () => {
    const { g, sh } = shadowGuest();
    const p = g.kernel.spawn("p", image)!;
    g.write(p, page(0), 77);
    const { gfn } = guestPte(g, p, page(0));
    const old = g.gfnToMfn(gfn);
    expect(sh.tables.mappingsOf(old).length).toBeGreaterThan(0);
    // Move the gfn to a new frame holding the same data (as a host swap-in would).
    const fresh = g.host!.frames.alloc(1, g.vmm!.id, gfn);
    g.mem.copyFrame(fresh, old);
    g.vmm!.p2m.replace(gfn, fresh, P2M_RAM_RW);
    g.host!.frames.release(old);
    expect(sh.tables.mappingsOf(old)).toHaveLength(0);
    g.mem.write64(old, 0, 0xdead, 0); // whatever lands in the old frame is out of reach
    expect(g.read(p, page(0))).toBe(77);
    expect(sh.tables.mappingsOf(fresh).length).toBeGreaterThan(0);
    g.check();
  });

  test("prefetch fills neighbouring entries of a rebuilt table", () => {
    const { g, sh, count } = shadowGuest({ shadow: { prefetch: 16 } });
    const p = g.kernel.spawn("p", image)!;
    for (let i = 0; i < 20; i++) g.write(p, page(i), i + 1);
    unshadow(sh, g.kernel.pt.tableFor(p.l4Gfn, page(0), 1, false));
    const fixed = count("shadow_fault_fixed");
    for (let i = 0; i < 17; i++) expect(g.read(p, page(i))).toBe(i + 1);
    expect(count("shadow_prefetch")).toBe(16);
    expect(count("shadow_fault_fixed")).toBe(fixed + 1);
    g.check();
  });

  test("prefetch stops as Xen's does: at an entry already shadowed, or one needing its A bit", () => {
    const { g, sh, count } = shadowGuest({ shadow: { prefetch: 31 } });
    const p = g.kernel.spawn("p", image)!;
    for (let i = 0; i < 20; i++) g.write(p, page(i), i + 1);
    const l1 = g.kernel.pt.tableFor(p.l4Gfn, page(0), 1, false);
    unshadow(sh, l1);
    /** Set or clear the accessed bit of page n's guest entry. */
    const accessed = (n: number, on: boolean) => {
      const index = (page(n) / 4096) % 512;
      g.kernel.pt.read(l1, index);
      const lo = on ? g.kernel.pt.lo | PTE_A : g.kernel.pt.lo & ~PTE_A;
      g.kernel.pt.set(l1, index, lo >>> 0, g.kernel.pt.hi, true);
    };
    // Pages 8 and 11 lose their accessed bit: touching them would fault for it.
    accessed(8, false);
    accessed(11, false);
    const prefetched = (fn: () => void) => {
      const before = count("shadow_prefetch");
      fn();
      return count("shadow_prefetch") - before;
    };
    expect(prefetched(() => expect(g.read(p, page(0))).toBe(1))).toBe(7); // 1..7, not 8
    expect(prefetched(() => expect(g.read(p, page(9))).toBe(10))).toBe(1); // 10, not 11
    // 11 is accessed again; a fault on 8 stops at 9, which has its shadow entry already.
    accessed(11, true);
    expect(prefetched(() => expect(g.read(p, page(8))).toBe(9))).toBe(0);
    g.check();
  });

  test("the default pool is Xen's: 1 MiB per vCPU plus 8 KiB per MiB of guest memory", () => {
    expect(defaultShadowPoolPages(2 ** 30)).toBe(256 + 2048);
    expect(defaultShadowPoolPages(512 * 2 ** 20, 2)).toBe(512 + 1024);
    const { sh } = shadowGuest();
    expect(sh.hostFrames()).toBe(defaultShadowPoolPages(32 * 2 ** 20));
    // Three of its pages hold the snapshots of out-of-sync L1s, as in Xen.
    expect(sh.tables.poolSize).toBe(defaultShadowPoolPages(32 * 2 ** 20) - SHADOW_OOS_PAGES);
    expect(PTE_P).toBe(1);
  });
});
