/**
 * What the walk caches must not outlive: a PV page table freed and reused as data (the INVLPG
 * hypercalls and a type change flush the paging-structure caches, as Xen and the SDM say), and
 * an EPT L1 table replaced by a 2 MiB leaf (INVEPT). Also compare --vary's own checks. Found by
 * review; each test failed before its fix.
 */

import { describe, expect, test } from "vitest";
import { compareVarying } from "../src/api/compare.js";
import { formatVariation } from "../src/cli/compare.js";
import { directMap, USER_HEAP_BASE } from "../src/guest/layout.js";
import { KIND_SUP_READ, KIND_USER_READ, KIND_USER_WRITE } from "../src/hw/access.js";
import { MMUEXT_UNPIN_TABLE, UVMF_NONE } from "../src/hw/hypercall.js";
import { PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US, pteFrame, pteHi, pteLo } from "../src/hw/pte.js";
import { Host } from "../src/vmm/host.js";
import { checkPvIsolation } from "../src/vmm/pv/check.js";
import { parseScenario } from "../src/workload/scenario/parse.js";
import { bootGuest, type TestGuest } from "./support/guest.js";
import { hapOf } from "./support/modes.js";
import { heapTables, LEAF, pvOf, update } from "./support/pv.js";

const PWC_ONLY = { pwc: true, eptPwc: false, nestedTlb: false };

/** Two PV domains on one host; the attacker with the 1D paging-structure caches on. */
function pvPair() {
  const host = new Host(((16 * 2 + 16) * 2 ** 20) / 4096);
  const g = bootGuest(16, { mode: "pv", host, walkCaches: PWC_ONLY });
  const victim = bootGuest(16, { mode: "pv", host });
  const vproc = victim.kernel.spawn("victim", { code: 4096, heap: 8 * 4096, hugeHeap: false })!;
  expect(victim.write(vproc, USER_HEAP_BASE, 0x5ec7e7)).toBe(true);
  const t = heapTables(victim, pvOf(victim));
  victim.mem.read64(t.l1, 0);
  return { host, g, victim, vproc, victimMfn: pteFrame(victim.mem.lo, victim.mem.hi) };
}

describe("PV with paging-structure caches: no cached entry outlives its L1 table", () => {
  test("a hostile kernel unlinks, unpins and maps its old L1 writable, then writes a foreign mfn in it", () => {
    const { host, g, victim, vproc, victimMfn } = pvPair();
    const proc = g.kernel.spawn("attacker", { code: 4096, heap: 64 * 4096, hugeHeap: false })!;
    for (let p = 0; p < 8; p++) expect(g.write(proc, USER_HEAP_BASE + p * 4096, p + 1)).toBe(true);
    const pv = pvOf(g);
    const { l2, l1 } = heapTables(g, pv);
    // a walk through the heap's L1 table: the PDE cache names it
    g.cpu.tlb.invalidatePage(USER_HEAP_BASE / 4096, g.cpu.tag, g.cpu.globalTag);
    expect(g.cpu.access(USER_HEAP_BASE, KIND_USER_READ, 0)).toBeGreaterThanOrEqual(0);
    // every hypercall below is accepted; none flushes
    expect(update(g, l2, Math.floor(USER_HEAP_BASE / 2 ** 21) % 512, 0, 0)).toBe(0);
    expect(g.cpu.mmuextOp(MMUEXT_UNPIN_TABLE, l1, 0)).toBe(0);
    const l1Gfn = host.frames.gfnOf(l1);
    const rw = pteLo(l1, PTE_P | PTE_RW | PTE_A | PTE_D);
    expect(g.cpu.updateVaMapping(directMap(l1Gfn), rw, pteHi(l1, true), UVMF_NONE)).toBe(0);
    // the former L1 is plain writable memory now: the kernel stores a leaf naming the victim's frame
    expect(
      g.cpu.store64(directMap(l1Gfn) + 100 * 8, pteLo(victimMfn, LEAF), pteHi(victimMfn, false)),
    ).toBe(0);
    // a heap page never touched: the walk starts at the cached L2 entry -> the old L1 -> victim
    const frame = g.cpu.access(USER_HEAP_BASE + 100 * 4096, KIND_USER_WRITE, 0xbad);
    expect(frame).not.toBe(victimMfn);
    expect(checkPvIsolation(pv, g.cpu)).toBeNull();
    expect(victim.read(vproc, USER_HEAP_BASE)).toBe(0x5ec7e7);
  });

  test("a user process whose freed L1 table became its data page cannot reach another domain", () => {
    const { g, victimMfn } = pvPair();
    const a = g.kernel.spawn("a", { code: 4096, heap: 2048 * 4096, hugeHeap: false })!;
    for (let p = 0; p < 8; p++) expect(g.write(a, USER_HEAP_BASE + p * 4096, 1)).toBe(true);
    for (const p of [512, 1024, 1536]) expect(g.write(a, USER_HEAP_BASE + p * 4096, 1)).toBe(true);
    expect(g.write(a, USER_HEAP_BASE + 7 * 4096, 1)).toBe(true); // last walk through region 0's L1
    const oldL1 = g.kernel.pt.tableFor(a.l4Gfn, USER_HEAP_BASE, 1, false);
    // munmap: the emptied L1 table is freed (unpinned, writable again), then 8 MMUEXT_INVLPG_LOCAL,
    // which drop TLB entries but not the paging-structure caches
    g.kernel.munmap(a, USER_HEAP_BASE, 8 * 4096);
    // the process touches heap pages until the kernel hands it the old table's frame as data
    let at = -1;
    for (let p = 513; p < 2048 && at < 0; p++) {
      if (p % 512 === 0) continue;
      expect(g.write(a, USER_HEAP_BASE + p * 4096, 1)).toBe(true);
      const l1 = g.kernel.pt.tableFor(a.l4Gfn, USER_HEAP_BASE + p * 4096, 1, false);
      g.kernel.pt.read(l1, p % 512);
      if (pteFrame(g.kernel.pt.lo, g.kernel.pt.hi) === oldL1) at = p;
    }
    expect(at).toBeGreaterThan(0);
    // it stores a word that looks like a PTE naming the victim's frame, then reads page 100
    const leaf = ((victimMfn << 12) | PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D) >>> 0;
    expect(g.write(a, USER_HEAP_BASE + at * 4096 + 100 * 8, leaf)).toBe(true);
    expect(g.read(a, USER_HEAP_BASE + 100 * 4096)).not.toBe(0x5ec7e7);
    expect(checkPvIsolation(pvOf(g), g.cpu)).toBeNull();
  });
});

describe("HAP with 2 MiB EPT pages: a block whole again replaces its L1 table", () => {
  /** gfn block B: 2 MiB leaf, split by one balloon-out, rest ballooned out, all given back. */
  function reblock(g: TestGuest, B: number) {
    const p2m = g.vmm!.p2m;
    expect(g.cpu.access(directMap(B), KIND_SUP_READ, 0)).toBeGreaterThanOrEqual(0);
    for (let i = 0; i < 512; i++) p2m.removePage(B + i); // the first one splits the leaf
    for (let i = 0; i < 512; i++) p2m.addPage(B + i); // populate_physmap: populate-on-demand
  }

  test("with the EPT caches, the cached entry that named the L1 table goes (INVEPT)", () => {
    const g = bootGuest(16, {
      mode: "hap",
      eptLargePages: true,
      walkCaches: { pwc: false, eptPwc: true, nestedTlb: false },
    });
    reblock(g, 3584);
    expect(g.cpu.access(directMap(3584), KIND_SUP_READ, 0)).toBeGreaterThanOrEqual(0);
  });

  test("the same through the balloon driver and ordinary processes", () => {
    const g = bootGuest(16, {
      mode: "hap",
      eptLargePages: true,
      walkCaches: { pwc: true, eptPwc: true, nestedTlb: true },
    });
    const a = g.kernel.spawn("a", { code: 4096, heap: 2048 * 4096, hugeHeap: false })!;
    for (let p = 0; p < 2048; p++) g.write(a, USER_HEAP_BASE + p * 4096, p + 1);
    g.kernel.exit(a);
    g.setBalloonTarget(1024);
    g.setBalloonTarget(4096);
    const b = g.kernel.spawn("b", { code: 4096, heap: 2048 * 4096, hugeHeap: false })!;
    for (let p = 0; p < 2048; p++) expect(g.write(b, USER_HEAP_BASE + p * 4096, p + 1)).toBe(true);
    g.check();
  });

  test("the replaced L1 table goes back to the host (every EPT page reachable from the root)", () => {
    const g = bootGuest(16, { mode: "hap", eptLargePages: true });
    const hap = hapOf(g.vmm);
    reblock(g, 3584);
    expect(g.cpu.access(directMap(3584), KIND_SUP_READ, 0)).toBeGreaterThanOrEqual(0);
    let reachable = 0;
    const visit = (t: number, l: number) => {
      reachable++;
      if (l === 1) return;
      for (let i = 0; i < 512; i++) {
        g.mem.read64(t, i);
        if ((g.mem.lo & 7) === 0 || (l === 2 && (g.mem.lo & 0x80) !== 0)) continue;
        visit(pteFrame(g.mem.lo, g.mem.hi), l - 1);
      }
    };
    visit(hap.ept.root, 4);
    expect(reachable).toBe(hap.eptPages);
  });
});

describe("compare --vary", () => {
  const yaml = [
    "run: { accesses: 20000 }",
    "domains:",
    "  - name: d",
    "    memory: 64MiB",
    "    mode: native",
    "    processes:",
    "      - { name: db, kind: database, working_set: 8MiB, pattern: { type: sequential }, writes: 1, fetches: 0 }",
    "",
  ].join("\n");

  test("a varied working_set (or jobs) is checked against the domain's memory", () => {
    const scenario = parseScenario(yaml, "v.yaml");
    expect(() =>
      compareVarying(scenario, ["native", "hap"], "working_set", [8 * 2 ** 20, 256 * 2 ** 20]),
    ).toThrow(/working_set 268435456: domain d: the processes need 257MiB/);
  });

  test("'cheapest' may name the first mode when it is a virtualized one", () => {
    const v = compareVarying(parseScenario(yaml, "v.yaml"), ["hap", "shadow"], "writes", [0, 1]);
    expect(formatVariation(v, "")).not.toMatch(/\+\d+\.\d%\) │ shadow/);
  });
});
