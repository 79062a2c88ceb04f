/**
 * The one domain check (api/check.ts) that --check and every test guest run: in each mode it
 * reaches that mode's own invariants, so a corruption only that mode's check can see is
 * reported. Each test corrupts one structure after a clean run and expects one violation.
 */

import { describe, expect, test } from "vitest";
import { builtinScenario, type PagingMode, Simulation } from "../src/api/index.js";
import { USER_HEAP_BASE } from "../src/guest/layout.js";
import { EPT_PS, EPT_W, eptFrame, eptPresent } from "../src/hw/ept.js";
import { isPresent, pteFrame } from "../src/hw/pte.js";
import { F_FRAME, SLOT } from "../src/hw/tlb-layout.js";

import { P2M_RAM_SHARED } from "../src/vmm/p2m.js";
import { SH_L1 } from "../src/vmm/shadow/page.js";
import { checkSharing } from "../src/vmm/sharing/check.js";
import { bootGuest } from "./support/guest.js";
import { hapOf, pvOf, shadowOf } from "./support/modes.js";

/** A short, clean run of tlb-thrash in `mode` with checks on. */
function cleanRun(mode: PagingMode) {
  const sim = new Simulation(builtinScenario("tlb-thrash"), { mode, accesses: 5_000, check: true });
  expect(sim.run().checks).toEqual({ enabled: true, violations: 0 });
  return { sim, d: sim.domains[0] };
}

describe("the domain check reaches every mode's invariants", () => {
  test.each(["native", "shadow", "hap", "pv"] as const)(
    "%s: a TLB entry that maps the wrong frame is reported by the quick check",
    (mode) => {
      const { d } = cleanRun(mode);
      const cpu = d.platform.cpu;
      const level = cpu.tlb.l1;
      let slot = -1;
      for (let s = 0; s < level.entries && slot < 0; s++) {
        if (level.isValid(s, cpu.tlb.tagGens) && level.decode(s).tag === cpu.tag) slot = s;
      }
      expect(slot).toBeGreaterThanOrEqual(0);
      level.d[slot * SLOT + F_FRAME] ^= 1;
      d.runChecks(false);
      expect(d.violations).toBe(1);
      expect(d.firstViolation).toMatch(/TLB/);
    },
  );

  test("hap: an EPT leaf that maps a frame the P2M does not give is reported", () => {
    const { d } = cleanRun("hap");
    const hap = hapOf(d.platform.vmm);
    const mem = d.platform.mem;
    // The first present leaf, found from the EPT's root (levels 4 .. 1, or a 2 MiB leaf).
    let leaf: { table: number; index: number } | null = null;
    const find = (table: number, level: number): void => {
      for (let i = 0; i < 512 && leaf === null; i++) {
        mem.read64(table, i);
        if (!eptPresent(mem.lo)) continue;
        if (level === 1 || (mem.lo & EPT_PS) !== 0) leaf = { table, index: i };
        else find(eptFrame(mem.lo, mem.hi), level - 1);
      }
    };
    find(hap.ept.root, 4);
    expect(leaf).not.toBeNull();
    const { table, index } = leaf as unknown as { table: number; index: number };
    mem.read64(table, index);
    // Point it at the EPT's own root: a VMM frame no guest may reach.
    const lo = ((mem.lo & 0xfff) | (hap.ept.root << 12)) >>> 0;
    mem.write64(table, index, lo, 0);
    d.runChecks(true);
    expect(d.violations).toBe(1);
    expect(d.firstViolation).toMatch(/^domain \S+: ept: gfn \d+ maps mfn \d+ but the p2m says/);
  });

  test("pv: a page table's type count that disagrees with its references is reported", () => {
    const { d } = cleanRun("pv");
    const pv = pvOf(d.platform.vmm);
    pv.types.count[pv.baseMfn]++;
    d.runChecks(false);
    expect(d.violations).toBe(0); // the quick check looks at translations only
    d.runChecks(true);
    expect(d.violations).toBe(1);
    expect(d.firstViolation).toMatch(/has type count/);
  });
});

describe("page sharing's isolation check reaches every mode's translations", () => {
  test("hap: an EPT leaf onto a shared frame the domain's P2M does not reference is reported", () => {
    const a = bootGuest(16, { mode: "hap", sharing: true });
    const b = bootGuest(16, { mode: "hap", host: a.host! });
    const host = a.host!;
    const pa = a.kernel.spawn("a", { code: 4096, heap: 4 * 4096, hugeHeap: false })!;
    const pb = b.kernel.spawn("b", { code: 4096, heap: 4 * 4096, hugeHeap: false })!;
    for (let i = 0; i < 4; i++) expect(a.write(pa, USER_HEAP_BASE + i * 4096, 100 + i)).toBe(true);
    // Two identical pages in b alone: they merge into a frame only b references.
    for (let i = 0; i < 2; i++) expect(b.write(pb, USER_HEAP_BASE + i * 4096, 0xb0b)).toBe(true);
    a.scan(0);
    const scanner = host.scanner!;
    while (scanner.fullScans < 3) a.scan(1024);
    a.check();
    b.check();
    const referenced = (g: typeof a) => {
      const p2m = g.vmm!.p2m;
      const mfns = new Set<number>();
      for (let gfn = 0; gfn < p2m.gfns; gfn++) {
        if (p2m.type[gfn] === P2M_RAM_SHARED) mfns.add(p2m.mfn[gfn]);
      }
      return mfns;
    };
    const mine = referenced(a);
    const foreign = [...referenced(b)].find((mfn) => !mine.has(mfn));
    expect(foreign).toBeDefined();
    expect(checkSharing(host)).toBeNull();
    // Re-point one of a's 4 KiB EPT leaves at b's shared frame, read-only as a shared leaf is.
    const mem = host.mem;
    let done = false;
    const visit = (table: number, level: number): void => {
      for (let i = 0; i < 512 && !done; i++) {
        mem.read64(table, i);
        if (!eptPresent(mem.lo)) continue;
        if (level > 1 && (mem.lo & EPT_PS) === 0) {
          visit(eptFrame(mem.lo, mem.hi), level - 1);
        } else if (level === 1) {
          mem.write64(table, i, ((mem.lo & 0xfff & ~EPT_W) | (foreign! << 12)) >>> 0, 0);
          done = true;
        }
      }
    };
    visit(hapOf(a.vmm).ept.root, 4);
    expect(done).toBe(true);
    expect(checkSharing(host)).toMatch(/reaches shared mfn \d+, which its P2M does not reference/);
  });
});

describe("sampled checks (--check) find a change at the next check", () => {
  /** A clean shadow run and the first present entry of an l1 shadow with its location. */
  function shadowLeaf() {
    const { d } = cleanRun("shadow");
    const sh = shadowOf(d.platform.vmm);
    const mem = d.platform.mem;
    for (const sp of sh.tables.pages()) {
      if (sp.type !== SH_L1) continue;
      for (let i = 0; i < 512; i++) {
        mem.read64(sp.mfn, i);
        if (isPresent(mem.lo)) return { d, sh, mem, sp, index: i, mfn: pteFrame(mem.lo, mem.hi) };
      }
    }
    throw new Error("no present shadow leaf");
  }

  test("a shadow leaf rewritten to another domain's frame", () => {
    const { d, sh, mem, sp, index } = shadowLeaf();
    d.runChecks(false);
    expect(d.violations).toBe(0);
    // Point it at the shadow pool's own first frame: not a frame of the domain's RAM.
    mem.read64(sp.mfn, index);
    const lo = ((mem.lo & 0xfff) | (sh.root!.mfn << 12)) >>> 0;
    mem.write64(sp.mfn, index, lo, 0);
    d.runChecks(false);
    expect(d.violations).toBe(1);
    expect(d.firstViolation).toMatch(/reaches mfn \d+, which domain \d+ does not own/);
  });

  test("a P2M entry changed without dropping the shadow leaves that map its old frame", () => {
    const { d, sh, mfn } = shadowLeaf();
    d.runChecks(false);
    const gfn = sh.p2m.mfn.indexOf(mfn);
    expect(gfn).toBeGreaterThanOrEqual(0);
    // Swap the frames of two of the domain's gfns behind the shadows' back.
    const other = sh.p2m.mfn.findIndex((m, g) => m >= 0 && g !== gfn);
    sh.p2m.mfn[gfn] = sh.p2m.mfn[other];
    sh.p2m.mfn[other] = mfn;
    d.runChecks(false);
    expect(d.violations).toBe(1);
    expect(d.firstViolation).toMatch(/maps mfn \d+ but p2m\(gfn \d+\) is \d+/);
  });
});
