/**
 * Hardware-assisted paging: the 2D walk's exact reference counts, cold and with each cache;
 * no #PF, CR3 or INVLPG exit; EPT violations for first touches, swapped-out pages and shared
 * pages; and the differential check: the same random operations natively and under HAP look
 * the same to the guest, with every invariant (TLB and EPT against the P2M) checked after each.
 */

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { Simulation } from "../src/api/simulation.js";
import type { WalkCacheSpec } from "../src/api/types.js";
import { directMap, USER_HEAP_BASE } from "../src/guest/layout.js";
import { KIND_USER_READ } from "../src/hw/access.js";
import { PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US, pteHi, pteLo } from "../src/hw/pte.js";
import { COUNTER_NAMES, type CounterName } from "../src/metrics/counters.js";
import { DomainCrash } from "../src/vmm/crash.js";
import { checkEpt, checkReach } from "../src/vmm/hap/check.js";
import { P2M_RAM_SHARED } from "../src/vmm/p2m.js";
import { parseScenario } from "../src/workload/scenario/parse.js";
import { bootGuest, type GuestOptions, type TestGuest } from "./support/guest.js";
import { evilAccess, evilWrite } from "./support/hostile.js";
import { hapOf } from "./support/modes.js";
import { observe } from "./support/observe.js";
import { type Op, opArb, overcommitOpArb, sharingOpArb } from "./support/ops.js";

const NO_CACHES: WalkCacheSpec = { pwc: false, eptPwc: false, nestedTlb: false };

function count(g: TestGuest, name: CounterName): number {
  return g.counters[COUNTER_NAMES.indexOf(name)];
}

/** A HAP guest with one process that has written its first heap page. */
function hapGuest(nested: WalkCacheSpec, options: GuestOptions = {}) {
  const g = bootGuest(16, { mode: "hap", walkCaches: nested, ...options });
  const proc = g.kernel.spawn("p", { code: 4096, heap: 64 * 4096, hugeHeap: false });
  if (proc === null) throw new Error("no memory for the process");
  expect(g.write(proc, USER_HEAP_BASE, 7)).toBe(true);
  return { g, proc };
}

/** The references of the walk a read of gva makes (exactly one walk). */
function refsOfRead(g: TestGuest, proc: Parameters<TestGuest["read"]>[0], gva: number) {
  const walks = count(g, "walks");
  const refs = count(g, "walk_refs");
  const ept = count(g, "ept_refs");
  expect(g.read(proc, gva)).toBe(7);
  expect(count(g, "walks") - walks).toBe(1);
  return { refs: count(g, "walk_refs") - refs, ept: count(g, "ept_refs") - ept };
}

describe("the 2D walk", () => {
  test("a cold walk of a 4-level guest over a 4-level EPT makes 24 references", () => {
    const { g, proc } = hapGuest(NO_CACHES);
    g.cpu.flushTlbAll();
    // n*(m+1)+m = 4*5+4: each guest level's table through the EPT, then the data page.
    expect(refsOfRead(g, proc, USER_HEAP_BASE)).toEqual({ refs: 24, ept: 20 });
    g.check();
  });

  test.each([
    // The PDE cache gives the guest L1 table's host frame: 1 guest read + 4 for the data.
    ["paging-structure caches", { ...NO_CACHES, pwc: true }, 5, 4, "pwc_hits"],
    // Every gfn of the walk is in the nested TLB: only the 4 guest reads remain.
    ["nested TLB", { ...NO_CACHES, nestedTlb: true }, 4, 0, "ntlb_hits"],
    // Each EPT translation starts at the EPT's L1 table: 5 EPT reads + 4 guest reads.
    ["EPT paging-structure caches", { ...NO_CACHES, eptPwc: true }, 9, 5, "ept_pwc_hits"],
    ["all three", { pwc: true, eptPwc: true, nestedTlb: true }, 1, 0, "pwc_hits"],
  ] as const)(
    "with the %s, a warm walk makes fewer references",
    (_, caches, refs, ept, counter) => {
      const { g, proc } = hapGuest(caches);
      const hits = count(g, counter);
      // Drop only the TLB entry (not INVLPG, which also empties the paging-structure caches).
      g.cpu.tlb.invalidatePage(USER_HEAP_BASE / 4096, g.cpu.tag, g.cpu.globalTag);
      expect(refsOfRead(g, proc, USER_HEAP_BASE)).toEqual({ refs, ept });
      expect(count(g, counter)).toBeGreaterThan(hits);
      g.check();
    },
  );

  test("with 2 MiB EPT pages a cold walk makes 19 references (4 * (3 + 1) + 3)", () => {
    const { g, proc } = hapGuest(NO_CACHES, { eptLargePages: true });
    g.cpu.flushTlbAll();
    expect(refsOfRead(g, proc, USER_HEAP_BASE)).toEqual({ refs: 19, ept: 15 });
    // Superpages: whole blocks were populated at their first touch.
    expect(count(g, "p2m_populate") % 512).toBe(0);
    g.check();
  });

  test("changing one gfn under a 2 MiB EPT leaf splits it; the rest stays mapped", () => {
    const { g, proc } = hapGuest(NO_CACHES, { eptLargePages: true, hostMiB: 64 });
    for (let p = 1; p < 64; p++) g.write(proc, USER_HEAP_BASE + p * 4096, p + 7);
    expect(g.swapOut(40)).toBe(40);
    expect(count(g, "ept_splits")).toBeGreaterThan(0);
    for (let p = 1; p < 64; p++) expect(g.read(proc, USER_HEAP_BASE + p * 4096)).toBe(p + 7);
    g.check();
  });

  test("INVLPG empties the guest's paging-structure caches, INVEPT the EPT's", () => {
    const { g, proc } = hapGuest({ pwc: true, eptPwc: true, nestedTlb: true });
    g.cpu.invlpg(USER_HEAP_BASE);
    // The guest walk starts from CR3 again; every gfn is still in the nested TLB.
    expect(refsOfRead(g, proc, USER_HEAP_BASE)).toEqual({ refs: 4, ept: 0 });
    hapOf(g.vmm).invept();
    // Every cache starts empty: the first EPT walk of this walk makes 4 references; it fills
    // the EPT's caches, so each later one starts at the EPT's L1 table (the guest's tables and
    // the page lie in one 2 MiB region of guest-physical memory here): 4 + 4 * 1, and 4 guest.
    expect(refsOfRead(g, proc, USER_HEAP_BASE)).toEqual({ refs: 12, ept: 8 });
  });

  test("guest faults and CR3 writes never exit; first touches are EPT violations", () => {
    const g = bootGuest(16, { mode: "hap" });
    const proc = g.kernel.spawn("p", { code: 4096, heap: 64 * 4096, hugeHeap: false });
    if (proc === null) throw new Error("no memory");
    const violations = count(g, "vmexits_ept_violation");
    for (let p = 0; p < 32; p++) expect(g.write(proc, USER_HEAP_BASE + p * 4096, p)).toBe(true);
    expect(count(g, "guest_page_faults")).toBeGreaterThanOrEqual(32);
    expect(count(g, "vmexits_pf") + count(g, "vmexits_cr3") + count(g, "vmexits_invlpg")).toBe(0);
    // 32 data pages and the new page tables: each gfn's first touch.
    expect(count(g, "vmexits_ept_violation") - violations).toBeGreaterThanOrEqual(32);
    expect(count(g, "vmexits")).toBe(
      count(g, "vmexits_ept_violation") + count(g, "vmexits_hypercall"),
    );
    g.check();
  });

  test("a swapped-out page, even a page table, comes back on an EPT violation", () => {
    const { g, proc } = hapGuest(NO_CACHES, { hostMiB: 64 });
    for (let p = 1; p < 64; p++) g.write(proc, USER_HEAP_BASE + p * 4096, p + 7);
    const swapped = g.swapOut(4000);
    expect(swapped).toBeGreaterThan(64);
    for (let p = 1; p < 64; p++) expect(g.read(proc, USER_HEAP_BASE + p * 4096)).toBe(p + 7);
    expect(count(g, "host_swap_ins")).toBeGreaterThan(60);
    g.check();
  });

  test("a write to a shared page exits and gets a copy; reads keep sharing it", () => {
    const a = hapGuest(NO_CACHES, { sharing: true, hostMiB: 96 });
    const b = hapGuest(NO_CACHES, { host: a.g.host ?? undefined });
    for (const { g, proc } of [a, b]) {
      for (let p = 1; p < 32; p++) g.write(proc, USER_HEAP_BASE + p * 4096, 1000 + p);
    }
    a.g.scan(20_000);
    a.g.scan(20_000);
    const p2m = a.g.vmm?.p2m;
    const shared = p2m ? Array.from(p2m.type).filter((t) => t === P2M_RAM_SHARED).length : 0;
    expect(shared).toBeGreaterThan(31);
    for (let p = 1; p < 32; p++) expect(a.g.read(a.proc, USER_HEAP_BASE + p * 4096)).toBe(1000 + p);
    const breaks = count(a.g, "cow_breaks");
    expect(a.g.write(a.proc, USER_HEAP_BASE + 4096, 5)).toBe(true);
    expect(count(a.g, "cow_breaks")).toBe(breaks + 1);
    expect(b.g.read(b.proc, USER_HEAP_BASE + 4096)).toBe(1001);
    a.g.check();
    b.g.check();
  });
});

describe("the step API under HAP", () => {
  test("shows each of a cold 2D walk's 24 references and the EPT violations before it", () => {
    const scenario = parseScenario(
      [
        "hardware: { walk_caches: { pwc: false, ept_pwc: false } } # the cold walk: 24 refs",
        "domains:",
        "  - name: d",
        "    memory: 64MiB",
        "    mode: hap",
        "    processes:",
        "      - { name: p, kind: database, working_set: 1MiB, fetches: 0 }",
        "",
      ].join("\n"),
      "s.yaml",
    );
    const sim = new Simulation(scenario);
    let found = false;
    for (let i = 0; i < 200 && !found; i++) {
      const step = sim.step();
      if (step === null) break;
      const last = step.walks[step.walks.length - 1];
      if (!step.exits.some((e) => e.reason === "EPT_VIOLATION") || last?.result !== "ok") continue;
      found = true;
      // Before it: walks that exited (the data page, new tables), and the kernel's own walks.
      expect(step.walks.some((w) => w.result === "EPT violation")).toBe(true);
      const refs = last.nested ?? [];
      // The cold walk: each guest level's table through the EPT (4 EPT reads, then the guest
      // entry), then the data page's 4 EPT reads.
      expect(refs.map((r) => r.dim).join(" ")).toBe(
        [...Array(4).fill("ept ept ept ept guest"), "ept ept ept ept"].join(" "),
      );
      expect(refs.filter((r) => r.dim === "guest").map((r) => r.level)).toEqual([4, 3, 2, 1]);
      expect(refs[refs.length - 1].flags).toMatch(/^R W X -> 0x/);
      expect(step.mfn).toBeGreaterThanOrEqual(0);
    }
    expect(found).toBe(true);
  });
});

/** The same operations natively (no caches) and in `mode` with `options`: the same to the guest. */
function differential(
  ops: Op[],
  options: GuestOptions,
  huge = false,
  frames = true,
  mode: GuestOptions["mode"] = "hap",
) {
  const { walkCaches: _, ...plain } = options;
  const native = observe(bootGuest(16, { ...plain, mode: "native" }), ops, huge, frames);
  const other = observe(bootGuest(16, { ...options, mode }), ops, huge, frames);
  expect(other.seen).toEqual(native.seen);
  expect(other.counters).toEqual(native.counters);
  expect(other.tables).toEqual(native.tables);
  expect(other.framesInUse).toBe(native.framesInUse);
}

const ops = fc.array(opArb, { minLength: 1, maxLength: 50 });
const ALL_CACHES: WalkCacheSpec = { pwc: true, eptPwc: true, nestedTlb: true };

describe("HAP looks like native paging to the guest", () => {
  test("no caches", () => {
    fc.assert(
      fc.property(ops, (o) => differential(o, {})),
      { numRuns: 40, seed: 11 },
    );
  });

  test("every cache, PCIDs", () => {
    fc.assert(
      fc.property(ops, (o) => differential(o, { walkCaches: ALL_CACHES, pcid: true })),
      { numRuns: 40, seed: 12 },
    );
  });

  test("transparent huge pages and 1 GiB direct-map pages", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), (o) =>
        differential(o, { walkCaches: ALL_CACHES, gigaPages: true }, true),
      ),
      { numRuns: 25, seed: 13 },
    );
  });

  test("with the balloon inflating and deflating and the host swapping", () => {
    fc.assert(
      fc.property(fc.array(overcommitOpArb, { minLength: 1, maxLength: 50 }), (o) =>
        differential(o, { walkCaches: ALL_CACHES }, false, false),
      ),
      { numRuns: 30, seed: 14 },
    );
  });

  test("2 MiB EPT pages, split by the balloon and host swapping", () => {
    fc.assert(
      fc.property(fc.array(overcommitOpArb, { minLength: 1, maxLength: 50 }), (o) =>
        differential(o, { eptLargePages: true, hostMiB: 96 }, false, false),
      ),
      { numRuns: 30, seed: 16 },
    );
  });

  test("with the host sharing pages between scans", () => {
    fc.assert(
      fc.property(fc.array(sharingOpArb, { minLength: 20, maxLength: 100 }), (o) =>
        differential(o, { sharing: true, walkCaches: ALL_CACHES }),
      ),
      { numRuns: 40, seed: 15 },
    );
  });
});

describe("paging-structure caches on one-dimensional walks", () => {
  test("natively a warm walk from the PDE cache makes one reference", () => {
    const g = bootGuest(16, { walkCaches: { ...NO_CACHES, pwc: true } });
    const proc = g.kernel.spawn("p", { code: 4096, heap: 64 * 4096, hugeHeap: false });
    if (proc === null) throw new Error("no memory");
    expect(g.write(proc, USER_HEAP_BASE, 7)).toBe(true);
    g.cpu.tlb.invalidatePage(USER_HEAP_BASE / 4096, g.cpu.tag, g.cpu.globalTag);
    expect(refsOfRead(g, proc, USER_HEAP_BASE)).toEqual({ refs: 1, ept: 0 });
    g.cpu.invlpg(USER_HEAP_BASE);
    expect(refsOfRead(g, proc, USER_HEAP_BASE)).toEqual({ refs: 4, ept: 0 });
    g.check();
  });

  test.each([["native"], ["shadow"], ["pv"]] as const)(
    "%s walks with the caches look like walks without them to the guest",
    (mode) => {
      // A PV guest's allocations land on other gfns (its 4 KiB direct map): compare flags only.
      fc.assert(
        fc.property(ops, (o) =>
          differential(o, { walkCaches: ALL_CACHES, pcid: true }, false, mode !== "pv", mode),
        ),
        { numRuns: 30, seed: 17 },
      );
    },
  );
});

describe("a hostile HAP guest cannot reach another domain's memory", () => {
  test("random values in its page tables, then random accesses (fast-check)", () => {
    fc.assert(
      fc.property(
        fc.array(evilWrite, { maxLength: 12 }),
        fc.array(evilAccess, { maxLength: 24 }),
        fc.boolean(),
        (writes, accesses, large) => {
          const victim = hapGuest(NO_CACHES, { hostMiB: 64, eptLargePages: large });
          const evil = hapGuest(ALL_CACHES, { host: victim.g.host ?? undefined });
          for (let p = 1; p < 16; p++) victim.g.write(victim.proc, USER_HEAP_BASE + p * 4096, p);
          const tables = [1, 2, 3, 4].map((l) =>
            l === 4
              ? evil.proc.l4Gfn
              : evil.g.kernel.pt.tableFor(evil.proc.l4Gfn, USER_HEAP_BASE, l, false),
          );
          let crashed = false;
          try {
            for (const w of writes) {
              evil.g.cpu.store64(
                directMap(tables[w.level - 1]) + w.index * 8,
                w.lo >>> 0,
                w.hi >>> 0,
              );
            }
            for (const a of accesses) evil.g.cpu.access(a.page * 4096, a.kind, 0xbad);
          } catch (e) {
            if (!(e instanceof DomainCrash)) throw e;
            crashed = true;
          }
          const host = victim.g.host;
          const evilVmm = evil.g.vmm;
          if (host === null || evilVmm === null) throw new Error("no VMM");
          if (!crashed) {
            expect(checkReach(evil.g.cpu, host.frames, evilVmm.id)).toBeNull();
            expect(checkEpt(hapOf(evilVmm), host.frames, evilVmm.id)).toBeNull();
          }
          for (let p = 1; p < 16; p++) {
            expect(victim.g.read(victim.proc, USER_HEAP_BASE + p * 4096)).toBe(p);
          }
          expect(victim.g.read(victim.proc, USER_HEAP_BASE)).toBe(7);
          victim.g.check();
        },
      ),
      { numRuns: 120, seed: 18 },
    );
  });

  test("a frame number beyond its memory crashes that domain alone", () => {
    const victim = hapGuest(NO_CACHES, { hostMiB: 64 });
    const evil = hapGuest(NO_CACHES, { host: victim.g.host ?? undefined });
    const l1 = evil.g.kernel.pt.tableFor(evil.proc.l4Gfn, USER_HEAP_BASE, 1, false);
    const beyond = 50_000;
    evil.g.cpu.store64(
      directMap(l1) + 100 * 8,
      pteLo(beyond, PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D),
      pteHi(beyond, false),
    );
    expect(() => evil.g.cpu.access(USER_HEAP_BASE + 100 * 4096, KIND_USER_READ, 0)).toThrow(
      /outside its 4096 frames of RAM/,
    );
    expect(victim.g.read(victim.proc, USER_HEAP_BASE)).toBe(7);
    victim.g.check();
  });
});
