/**
 * Unit tests of the TLBs (src/hw/tlb.ts) and of the vCPU's use of them (src/hw/cpu.ts):
 * replacement, counters, large pages, flushes by tag, CR3 writes with and without PCIDs, INVLPG,
 * global pages and geometry checks. Invalidation rules: Intel SDM Vol. 3A 4.10.4.1.
 */

import { describe, expect, it } from "vitest";
import { KIND_SUP_READ, KIND_SUP_WRITE, MASK_ALL, MASK_WRITES } from "../src/hw/access.js";
import { Vcpu } from "../src/hw/cpu.js";
import { HostMemory } from "../src/hw/memory.js";
import { PTE_A, PTE_D, PTE_G, PTE_P, PTE_PS, PTE_RW, PTE_US } from "../src/hw/pte.js";
import { MAX_TAGS, TLB_L1, TLB_L2, TLB_MISS, Tlb } from "../src/hw/tlb.js";
import { cachedPerms, TlbLevel } from "../src/hw/tlb-level.js";
import { XLATE_FAULT } from "../src/hw/vcpu-interfaces.js";
import {
  C_TLB_L1_HITS,
  C_TLB_L2_HITS,
  C_TLB_MISSES,
  C_WALKS,
  newCounters,
} from "../src/metrics/counters.js";

const SIZE_2M = 2 ** 21;
const SIZE_1G = 2 ** 30;
const PAGES_2M = 512;
const PAGES_1G = 512 * 512;

// ---------------------------------------------------------------------------------------------
// Page tables in host memory, for the vCPU tests.

class Tables {
  readonly mem = new HostMemory(256);
  private next = 1;

  alloc(): number {
    return this.next++;
  }

  /** Map gva to `frame` with a leaf at `level` (1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB) under `root`. */
  map(root: number, gva: number, level: number, frame: number, flags = 0): void {
    const mem = this.mem;
    let table = root;
    for (let l = 4; l > level; l--) {
      const idx = indexAt(gva, l);
      mem.read64(table, idx);
      let nextTable: number;
      if ((mem.lo & PTE_P) !== 0) {
        nextTable = mem.lo >>> 12;
      } else {
        nextTable = this.alloc();
        mem.write64(table, idx, ((nextTable << 12) | PTE_P | PTE_RW | PTE_US) >>> 0, 0);
      }
      table = nextTable;
    }
    const leafFlags = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D | (level > 1 ? PTE_PS : 0) | flags;
    const lo = ((frame % 0x100000) * 4096 + leafFlags) >>> 0;
    mem.write64(table, indexAt(gva, level), lo, Math.floor(frame / 0x100000));
  }
}

function indexAt(gva: number, level: number): number {
  return Math.floor(gva / 2 ** (12 + 9 * (level - 1))) % 512;
}

interface Machine {
  t: Tables;
  cpu: Vcpu;
  c: Float64Array;
  root: number;
}

function machine(geometry?: ConstructorParameters<typeof Vcpu>[2]): Machine {
  const t = new Tables();
  const c = newCounters();
  const cpu = new Vcpu(t.mem, c, geometry);
  const root = t.alloc();
  cpu.paging = true;
  cpu.ctl.gbpages = true;
  cpu.rootMfn = root;
  return { t, cpu, c, root };
}

/** Translate a supervisor read; returns [frame, walks it made]. */
function read(m: Machine, gva: number): [number, number] {
  const before = m.c[C_WALKS];
  const frame = m.cpu.translate(gva, KIND_SUP_READ);
  return [frame, m.c[C_WALKS] - before];
}

// ---------------------------------------------------------------------------------------------

// The replacement tests go through Tlb.fill / Tlb.lookup only: an entry evicted from L1 but
// still in L2 is seen as a TLB_L2 hit. The L2 arrays are large enough never to evict here.
describe("replacement (TlbLevel through Tlb)", () => {
  const T = 0;
  const GT = 7; // a global tag with no entries
  const fill = (tlb: Tlb, vpn: number, tag = T) => tlb.fill(vpn, tag, 1, 100 + vpn, MASK_ALL);
  const where = (tlb: Tlb, vpn: number, tag = T) => {
    const w = tlb.lookup(vpn, tag, GT);
    if (w !== TLB_MISS) expect(tlb.frame).toBe(100 + vpn);
    return w;
  };

  it("replaces the least recently used way of a set", () => {
    const tlb = new Tlb(8, 4, 1024, 4); // L1: 2 sets of 4 ways, even vpns in set 0
    fill(tlb, 1); // set 1: must never be touched
    for (const vpn of [0, 2, 4, 6]) fill(tlb, vpn);
    // Touch 0 and 4: the LRU order (oldest first) becomes 2, 6, 0, 4.
    expect(where(tlb, 0)).toBe(TLB_L1);
    expect(where(tlb, 4)).toBe(TLB_L1);
    fill(tlb, 8); // evicts 2: 6, 0, 4, 8
    expect(where(tlb, 2)).toBe(TLB_L2); // evicted from L1; copied back, evicting 6: 0, 4, 8, 2
    expect(where(tlb, 6)).toBe(TLB_L2); // evicts 0: 4, 8, 2, 6
    expect(where(tlb, 8)).toBe(TLB_L1); // 4, 2, 6, 8
    expect(where(tlb, 4)).toBe(TLB_L1); // 2, 6, 8, 4
    fill(tlb, 10); // evicts 2: 6, 8, 4, 10
    expect(where(tlb, 1)).toBe(TLB_L1);
    for (const vpn of [6, 8, 4, 10]) expect(where(tlb, vpn)).toBe(TLB_L1);
    expect(where(tlb, 2)).toBe(TLB_L2);
    expect(where(tlb, 0)).toBe(TLB_L2);
    expect(tlb.l1.validEntries(tlb.tagGens)).toBe(5);
  });

  it("evicts an entry of a flushed tag before any valid entry", () => {
    const tlb = new Tlb(4, 4, 1024, 4); // L1: one set
    fill(tlb, 0, 2); // the oldest, valid
    fill(tlb, 1, 2);
    fill(tlb, 2, 3); // tag 3, about to be flushed
    fill(tlb, 3, 2);
    tlb.flushTag(3);
    expect(tlb.l1.validEntries(tlb.tagGens)).toBe(3);
    fill(tlb, 4, 2);
    for (const vpn of [0, 1, 3, 4]) expect(where(tlb, vpn, 2)).toBe(TLB_L1);
    expect(where(tlb, 2, 3)).toBe(TLB_MISS);
  });

  it("refills a page in place instead of keeping two copies", () => {
    const tlb = new Tlb(8, 4, 1024, 4);
    tlb.fill(6, T, 1, 1, MASK_ALL);
    tlb.fill(2, T, 1, 2, MASK_ALL);
    tlb.fill(6, T, 1, 9, MASK_ALL & ~MASK_WRITES);
    expect(tlb.l1.validEntries(tlb.tagGens)).toBe(2);
    expect(tlb.l2.validEntries(tlb.tagGens)).toBe(2);
    expect(tlb.lookup(6, T, GT)).toBe(TLB_L1);
    expect([tlb.frame, tlb.perms]).toEqual([9, MASK_ALL & ~MASK_WRITES]);
  });

  it("matches an entry under its own tag or as the global tag, in the current generation", () => {
    const tlb = new Tlb(8, 4, 1024, 4);
    fill(tlb, 4, 1);
    expect(where(tlb, 4, 1)).toBe(TLB_L1);
    expect(where(tlb, 4, 2)).toBe(TLB_MISS);
    expect(tlb.lookup(4, 2, 1)).toBe(TLB_L1); // tag 1 as the global tag
    expect(tlb.lookup(5, 2, 1)).toBe(TLB_MISS);
    tlb.flushTag(1);
    expect(tlb.lookup(4, 2, 1)).toBe(TLB_MISS);
    expect(where(tlb, 4, 1)).toBe(TLB_MISS);
  });
});

describe("geometry validation", () => {
  it("rejects sets that are not a power of two, and impossible shapes", () => {
    expect(() => new TlbLevel(48, 4)).toThrow(/power of two/); // 12 sets
    expect(() => new TlbLevel(6, 4)).toThrow(RangeError); // 1.5 sets
    expect(() => new TlbLevel(4, 0)).toThrow(RangeError);
    expect(() => new TlbLevel(2, 4)).toThrow(RangeError);
    expect(() => new TlbLevel(64.5, 4)).toThrow(RangeError);
    expect(() => new Tlb(64, 4, 1500, 12)).toThrow(/power of two/);
    expect(() => new Tlb(48, 4, 1536, 12)).toThrow(/power of two/);
    const mem = new HostMemory(1);
    expect(
      () => new Vcpu(mem, newCounters(), { l1Entries: 64, l1Ways: 4, l2Entries: 96, l2Ways: 4 }),
    ).toThrow(/power of two/);
  });

  it("accepts power-of-two sets, including one set and the Skylake default", () => {
    expect(new TlbLevel(12, 12).sets).toBe(1);
    expect(new TlbLevel(1, 1).sets).toBe(1);
    const tlb = new Tlb();
    expect([tlb.l1.entries, tlb.l1.ways, tlb.l1.sets]).toEqual([64, 4, 16]);
    expect([tlb.l2.entries, tlb.l2.ways, tlb.l2.sets]).toEqual([1536, 12, 128]);
  });
});

/**
 * Every TlbLevel array of a Tlb (the 4 KiB levels and any separate large-page arrays), so the
 * checks below hold whichever array an entry lives in.
 */
function arraysOf(tlb: Tlb): TlbLevel[] {
  return Object.values(tlb).filter((v): v is TlbLevel => v instanceof TlbLevel);
}

function validEntries(tlb: Tlb): number {
  return arraysOf(tlb).reduce((n, l) => n + l.validEntries(tlb.tagGens), 0);
}

describe("Tlb", () => {
  /**
   * Fill a large page at `vpn0`, check every 4 KiB page inside hits L1 with its frame, then
   * repeatedly evict it from L1 (with another entry of the same size, which a one-entry L1
   * cannot hold beside it, in another L2 set) and check it comes back from L2.
   */
  function checkLarge(level: number, vpn0: number, firstFrame: number, stride: number) {
    const pages = level === 2 ? PAGES_2M : PAGES_1G;
    const tlb = new Tlb(1, 1, 16, 4);
    tlb.fill(vpn0 + 300, 0, level, firstFrame, MASK_ALL);
    for (let i = 0; i < pages; i++) {
      if (tlb.lookup(vpn0 + i, 0, 1) !== TLB_L1 || tlb.frame !== firstFrame + i) {
        expect.fail(`page ${i}: ${tlb.frame}`);
      }
    }
    expect(tlb.lookup(vpn0 - 1, 0, 1)).toBe(TLB_MISS);
    expect(tlb.lookup(vpn0 + pages, 0, 1)).toBe(TLB_MISS);
    for (let i = 3; i < pages; i += stride) {
      tlb.fill(vpn0 + pages, 0, level, firstFrame + pages, MASK_ALL); // the evictor
      expect(tlb.lookup(vpn0 + i, 0, 1)).toBe(TLB_L2);
      expect(tlb.frame).toBe(firstFrame + i);
      // The L2 hit copied the whole large entry into L1.
      const j = (i * 7 + 11) % pages;
      expect(tlb.lookup(vpn0 + j, 0, 1)).toBe(TLB_L1);
      expect(tlb.frame).toBe(firstFrame + j);
    }
  }

  it("finds a 2 MiB entry for every 4 KiB page inside it, in L1 and through L2", () => {
    checkLarge(2, 8 * PAGES_2M, 0x40000, 1);
  });

  it("finds a 1 GiB entry for every 4 KiB page inside it, in L1 and through L2", () => {
    checkLarge(3, 4 * PAGES_1G, 0x80000, 4099);
  });

  it("a 4 KiB entry is found only for its own page", () => {
    const tlb = new Tlb();
    tlb.fill(1000, 0, 1, 55, MASK_ALL);
    expect(tlb.lookup(1000, 0, 1)).toBe(TLB_L1);
    expect(tlb.frame).toBe(55);
    expect(tlb.lookup(1001, 0, 1)).toBe(TLB_MISS);
    expect(tlb.lookup(999, 0, 1)).toBe(TLB_MISS);
    expect(tlb.lookup(1000, 2, 3)).toBe(TLB_MISS); // another tag
  });

  it("flushTag drops one tag's entries with one generation increment, touching no slot", () => {
    const tlb = new Tlb(16, 4, 64, 4);
    for (let vpn = 0; vpn < 5; vpn++) tlb.fill(vpn, 3, 1, 100 + vpn, MASK_ALL);
    for (let vpn = 0; vpn < 4; vpn++) tlb.fill(vpn + 8, 4, 1, 200 + vpn, MASK_ALL);
    tlb.fill(PAGES_2M * 5, 3, 2, 512 * 9, MASK_ALL); // a large entry of tag 3 too
    // Each entry is in one L1 array and one L2 array.
    expect(validEntries(tlb)).toBe(2 * 10);
    // Every typed array of every TLB array: keys, generations, frames, stamps...
    const snapshot = () =>
      arraysOf(tlb).map((l) =>
        Object.entries(l)
          .filter(([, v]) => ArrayBuffer.isView(v))
          .map(([name, v]) => [name, Array.from(v as Int32Array)]),
      );
    const slotsBefore = snapshot();
    expect(slotsBefore.every((arrays) => arrays.length >= 1)).toBe(true);
    const gensBefore = Array.from(tlb.tagGens);
    tlb.flushTag(3);
    expect(snapshot()).toEqual(slotsBefore);
    const gensAfter = Array.from(tlb.tagGens);
    gensBefore[3]++;
    expect(gensAfter).toEqual(gensBefore);
    expect(validEntries(tlb)).toBe(2 * 4);
    for (let vpn = 0; vpn < 5; vpn++) expect(tlb.lookup(vpn, 3, 5)).toBe(TLB_MISS);
    expect(tlb.lookup(PAGES_2M * 5 + 3, 3, 5)).toBe(TLB_MISS);
    for (let vpn = 0; vpn < 4; vpn++) {
      expect(tlb.lookup(vpn + 8, 4, 5)).toBe(TLB_L1);
      expect(tlb.frame).toBe(200 + vpn);
    }
  });

  it("invalidatePage drops every size of entry covering the page, under the tag and global", () => {
    const tlb = new Tlb();
    const vpn = 2 * PAGES_1G + 3 * PAGES_2M + 17;
    tlb.fill(vpn, 0, 1, 1, MASK_ALL); // 4 KiB, tag 0
    tlb.fill(vpn + 1, 0, 1, 2, MASK_ALL); // neighbour, tag 0
    tlb.fill(vpn, 1, 2, 512, MASK_ALL); // 2 MiB, global tag 1
    tlb.fill(vpn + PAGES_2M, 1, 2, 1024, MASK_ALL); // the next 2 MiB, global
    tlb.fill(vpn, 0, 3, PAGES_1G, MASK_ALL); // 1 GiB, tag 0
    tlb.fill(vpn, 2, 1, 3, MASK_ALL); // another address space's entry for the page
    expect(validEntries(tlb)).toBe(2 * 6);
    tlb.invalidatePage(vpn, 0, 1);
    // Each entry was in an L1 and an L2 array; three entries are gone from both.
    expect(validEntries(tlb)).toBe(2 * 3);
    expect(tlb.lookup(vpn, 0, 1)).toBe(TLB_MISS); // the 4 KiB entry
    expect(tlb.lookup(vpn + 2, 0, 1)).toBe(TLB_MISS); // the 2 MiB global entry
    expect(tlb.lookup(vpn - PAGES_2M, 0, 1)).toBe(TLB_MISS); // the 1 GiB entry
    expect(tlb.lookup(vpn + 1, 0, 1)).toBe(TLB_L1);
    expect(tlb.frame).toBe(2);
    expect(tlb.lookup(vpn + PAGES_2M, 0, 1)).toBe(TLB_L1);
    expect(tlb.frame).toBe(1024 + ((vpn + PAGES_2M) % PAGES_2M));
    expect(tlb.lookup(vpn, 2, 1)).toBe(TLB_L1);
    expect(tlb.frame).toBe(3);
  });

  it("caches a clean page without write permission", () => {
    expect(cachedPerms(MASK_ALL, true)).toBe(MASK_ALL);
    expect(cachedPerms(MASK_ALL, false)).toBe(MASK_ALL & ~MASK_WRITES);
    expect(cachedPerms(0b001001, false)).toBe(0b001001);
  });
});

describe("Vcpu and its TLB", () => {
  it("counts misses, L1 hits and L2 hits, and promotes an L2 hit into L1", () => {
    const m = machine({ l1Entries: 4, l1Ways: 4, l2Entries: 64, l2Ways: 4 });
    for (let i = 0; i < 6; i++) m.t.map(m.root, i * 4096, 1, 1000 + i);
    expect(read(m, 0)).toEqual([1000, 1]);
    expect([m.c[C_TLB_MISSES], m.c[C_TLB_L1_HITS], m.c[C_TLB_L2_HITS]]).toEqual([1, 0, 0]);
    expect(read(m, 8)).toEqual([1000, 0]);
    expect([m.c[C_TLB_MISSES], m.c[C_TLB_L1_HITS], m.c[C_TLB_L2_HITS]]).toEqual([1, 1, 0]);
    for (let i = 1; i <= 4; i++) expect(read(m, i * 4096)).toEqual([1000 + i, 1]); // evicts page 0
    expect(m.cpu.tlb.l1.validEntries(m.cpu.tlb.tagGens)).toBe(4);
    expect(read(m, 16)).toEqual([1000, 0]);
    expect([m.c[C_TLB_MISSES], m.c[C_TLB_L1_HITS], m.c[C_TLB_L2_HITS]]).toEqual([5, 1, 1]);
    expect(read(m, 24)).toEqual([1000, 0]);
    expect([m.c[C_TLB_MISSES], m.c[C_TLB_L1_HITS], m.c[C_TLB_L2_HITS]]).toEqual([5, 2, 1]);
    expect(m.c[C_WALKS]).toBe(5);
  });

  it("the vCPU's own TLB probes keep LRU order: a hit protects an entry from eviction", () => {
    const m = machine({ l1Entries: 4, l1Ways: 4, l2Entries: 64, l2Ways: 4 });
    for (let i = 0; i < 6; i++) m.t.map(m.root, i * 4096, 1, 1000 + i);
    for (let i = 0; i < 4; i++) read(m, i * 4096); // L1 (one set): 0, 1, 2, 3
    read(m, 0); // L1 hit: 1, 2, 3, 0
    read(m, 4 * 4096); // miss, evicts 1: 2, 3, 0, 4
    const hits = () => [m.c[C_TLB_L1_HITS], m.c[C_TLB_L2_HITS]];
    expect(hits()).toEqual([1, 0]);
    expect(read(m, 0)).toEqual([1000, 0]);
    expect(hits()).toEqual([2, 0]); // 0 survived
    expect(read(m, 4096)).toEqual([1001, 0]);
    expect(hits()).toEqual([2, 1]); // 1 was evicted from L1, found in L2; evicts 2
    expect(read(m, 3 * 4096)).toEqual([1003, 0]);
    expect(hits()).toEqual([3, 1]);
    expect(read(m, 2 * 4096)).toEqual([1002, 0]);
    expect(hits()).toEqual([3, 2]);
  });

  it("a #PF drops the cached translation of the faulting page (SDM 4.10.4.1)", () => {
    const m = machine();
    m.t.map(m.root, 0x3000, 1, 77, 0);
    const pt = m.t.mem;
    const l1Table = 4; // root 1, then the L3, L2 and L1 tables
    pt.read64(l1Table, 3);
    pt.write64(l1Table, 3, (pt.lo & ~PTE_RW) >>> 0, pt.hi); // read-only
    expect(read(m, 0x3000)).toEqual([77, 1]);
    // The OS unmaps the page without INVLPG: the cached entry still serves reads...
    pt.write64(l1Table, 3, 0, 0);
    expect(read(m, 0x3000)).toEqual([77, 0]);
    // ...until a write, which the entry does not allow, walks, faults, and drops it.
    expect(m.cpu.translate(0x3000, KIND_SUP_WRITE)).toBe(XLATE_FAULT);
    expect(m.cpu.faultCode).toBe(0x2); // not present, write
    expect(read(m, 0x3000)).toEqual([XLATE_FAULT, 1]);
  });

  it("one walk of a 2 MiB page serves all 512 of its 4 KiB pages", () => {
    const m = machine();
    const gva = 0x40_0000_0000 + 5 * SIZE_2M;
    m.t.map(m.root, gva, 2, 512 * 77);
    for (let i = 0; i < PAGES_2M; i++) {
      const [frame] = read(m, gva + i * 4096 + 8);
      expect(frame).toBe(512 * 77 + i);
    }
    expect(m.c[C_WALKS]).toBe(1);
    expect(read(m, gva + SIZE_2M)).toEqual([XLATE_FAULT, 1]);
  });

  it("a clean page is cached read-only: the first write re-walks and sets D", () => {
    const m = machine();
    m.t.map(m.root, 0x5000, 1, 300);
    const pt = m.t.mem;
    // Clear D in the leaf (the L1 table is the last allocated, frame 4).
    pt.read64(4, 5);
    pt.write64(4, 5, (pt.lo & ~PTE_D) >>> 0, pt.hi);
    expect(read(m, 0x5000)).toEqual([300, 1]);
    expect(m.cpu.translate(0x5000, KIND_SUP_WRITE)).toBe(300);
    expect(m.c[C_WALKS]).toBe(2);
    pt.read64(4, 5);
    expect(pt.lo & PTE_D).toBe(PTE_D);
    expect(m.cpu.translate(0x5008, KIND_SUP_WRITE)).toBe(300);
    expect(m.c[C_WALKS]).toBe(2);
  });

  it("global entries survive a CR3 write without PCID but not flushTlbAll", () => {
    const m = machine();
    const g = 0x7000;
    const ng = 0x8000;
    m.t.map(m.root, g, 1, 10, PTE_G);
    m.t.map(m.root, ng, 1, 20);
    expect(read(m, g)).toEqual([10, 1]);
    expect(read(m, ng)).toEqual([20, 1]);
    // Remap both; the TLB keeps what it holds until flushed.
    m.t.map(m.root, g, 1, 11, PTE_G);
    m.t.map(m.root, ng, 1, 21);
    expect(read(m, g)).toEqual([10, 0]);
    expect(read(m, ng)).toEqual([20, 0]);
    m.cpu.writeCr3(m.root * 4096, 0, false);
    expect(read(m, ng)).toEqual([21, 1]);
    expect(read(m, g)).toEqual([10, 0]); // global: survives the CR3 write (stale, as on hardware)
    m.cpu.flushTlbAll();
    expect(read(m, g)).toEqual([11, 1]);
    expect(read(m, ng)).toEqual([21, 1]);
  });

  it("INVLPG drops 4 KiB and large entries for the address, global ones too, and only those", () => {
    const m = machine();
    const a = 0x1234_5000; // 4 KiB, not global
    const b = 0x1234_6000; // 4 KiB neighbour, global
    const c2m = 0x20_0000_0000 + 7 * SIZE_2M; // 2 MiB, not global
    const e1g = 0x30_0000_0000 + SIZE_1G; // 1 GiB, global
    m.t.map(m.root, a, 1, 1);
    m.t.map(m.root, b, 1, 2, PTE_G);
    m.t.map(m.root, c2m, 2, 512 * 3);
    m.t.map(m.root, e1g, 3, PAGES_1G * 2, PTE_G);
    const probes = [a, b, c2m + 0x3000, c2m + 0x1f_f000, e1g + 0x1234_5000, e1g + 0x3fff_f000];
    for (const gva of probes) read(m, gva);
    expect(m.c[C_WALKS]).toBe(4);
    /** Walks made by reading every probe (twice: the second pass must hit). */
    const walksPerProbe = () =>
      probes.map((gva) => {
        const w = read(m, gva)[1];
        expect(read(m, gva)[1]).toBe(0);
        return w;
      });
    expect(walksPerProbe()).toEqual([0, 0, 0, 0, 0, 0]);
    m.cpu.invlpg(a);
    expect(walksPerProbe()).toEqual([1, 0, 0, 0, 0, 0]);
    m.cpu.invlpg(b + 0x123); // any address in the page; a global entry
    expect(walksPerProbe()).toEqual([0, 1, 0, 0, 0, 0]);
    m.cpu.invlpg(c2m + 0x10_0000); // the middle of the 2 MiB page
    expect(walksPerProbe()).toEqual([0, 0, 1, 0, 0, 0]);
    m.cpu.invlpg(e1g + 0x2000_0000); // the middle of the 1 GiB page, global
    expect(walksPerProbe()).toEqual([0, 0, 0, 0, 1, 0]);
    m.cpu.invlpg(c2m + SIZE_2M); // outside every mapping: drops nothing
    m.cpu.invlpg(a - 4096);
    expect(walksPerProbe()).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it("INVLPG leaves another PCID's entry for the same address", () => {
    const m = machine();
    const root2 = m.t.alloc();
    m.t.map(m.root, 0x9000, 1, 1);
    m.t.map(root2, 0x9000, 1, 2);
    m.cpu.writeCr3(m.root * 4096, 1, true);
    expect(read(m, 0x9000)).toEqual([1, 1]);
    m.cpu.writeCr3(root2 * 4096, 2, true);
    expect(read(m, 0x9000)).toEqual([2, 1]);
    m.cpu.invlpg(0x9000);
    expect(read(m, 0x9000)).toEqual([2, 1]);
    m.cpu.writeCr3(m.root * 4096, 1, true);
    expect(read(m, 0x9000)).toEqual([1, 0]);
  });

  it("after a CR3 write to another root no translation of the old tables is used", () => {
    const m = machine();
    const root2 = m.t.alloc();
    const gva4k = 0x4000_1000;
    const gvaBig = 0x80_0000_0000 + 3 * SIZE_2M + 0x5000;
    m.t.map(m.root, gva4k, 1, 100);
    m.t.map(root2, gva4k, 1, 200);
    m.t.map(m.root, gvaBig, 2, 512 * 10); // 2 MiB in the first space
    m.t.map(root2, gvaBig, 1, 300); // 4 KiB in the second
    expect(read(m, gva4k)).toEqual([100, 1]);
    expect(read(m, gvaBig)).toEqual([512 * 10 + 5, 1]);
    m.cpu.writeCr3(root2 * 4096, 0, false);
    expect(read(m, gva4k)).toEqual([200, 1]);
    expect(read(m, gvaBig)).toEqual([300, 1]);
    expect(read(m, gvaBig + 4096)).toEqual([XLATE_FAULT, 1]); // no stale 2 MiB entry
    m.cpu.writeCr3(m.root * 4096, 0, false);
    expect(read(m, gva4k)).toEqual([100, 1]);
    expect(read(m, gvaBig + 4096)).toEqual([512 * 10 + 6, 1]);
  });

  it("PCIDs: noFlush switches keep both spaces cached; a flushing write drops one PCID", () => {
    const m = machine();
    const root2 = m.t.alloc();
    const gva = 0x6000_0000;
    m.t.map(m.root, gva, 1, 100);
    m.t.map(root2, gva, 1, 200);
    m.t.map(m.root, gva + 4096, 1, 101);
    m.t.map(root2, gva + 4096, 1, 201);
    m.cpu.writeCr3(m.root * 4096, 1, false);
    expect(read(m, gva)).toEqual([100, 1]);
    m.cpu.writeCr3(root2 * 4096, 2, false);
    expect(read(m, gva)).toEqual([200, 1]);
    expect(read(m, gva + 4096)).toEqual([201, 1]);
    for (let round = 0; round < 3; round++) {
      m.cpu.writeCr3(m.root * 4096, 1, true);
      expect(read(m, gva)).toEqual([100, 0]);
      m.cpu.writeCr3(root2 * 4096, 2, true);
      expect(read(m, gva)).toEqual([200, 0]);
      expect(read(m, gva + 4096)).toEqual([201, 0]);
    }
    m.cpu.writeCr3(m.root * 4096, 1, true);
    expect(read(m, gva + 4096)).toEqual([101, 1]);
    // A flushing write for PCID 2 drops PCID 2 only.
    m.cpu.writeCr3(root2 * 4096, 2, false);
    expect(read(m, gva)).toEqual([200, 1]);
    expect(read(m, gva + 4096)).toEqual([201, 1]);
    m.cpu.writeCr3(m.root * 4096, 1, true);
    expect(read(m, gva)).toEqual([100, 0]);
    expect(read(m, gva + 4096)).toEqual([101, 0]);
    // And a flushing write for PCID 1 drops PCID 1 only.
    m.cpu.writeCr3(m.root * 4096, 1, false);
    expect(read(m, gva)).toEqual([100, 1]);
    m.cpu.writeCr3(root2 * 4096, 2, true);
    expect(read(m, gva)).toEqual([200, 0]);
  });

  it("a global entry is shared by every PCID", () => {
    const m = machine();
    const root2 = m.t.alloc();
    m.t.map(m.root, 0xa000, 1, 5, PTE_G);
    m.t.map(root2, 0xa000, 1, 5, PTE_G);
    m.cpu.writeCr3(m.root * 4096, 1, false);
    expect(read(m, 0xa000)).toEqual([5, 1]);
    m.cpu.writeCr3(root2 * 4096, 2, false);
    expect(read(m, 0xa000)).toEqual([5, 0]);
  });
});

describe("tag allocation", () => {
  it("keeps room for the tags handed out only, and an entry survives the arrays' growth", () => {
    const m = machine();
    m.t.map(m.root, 0, 1, 40);
    m.cpu.loadRoot(m.root, 1, false);
    expect(read(m, 0)).toEqual([40, 1]);
    const tagOfRoot = m.cpu.tag;
    expect(m.cpu.tlb.tagCapacity).toBeLessThan(64); // not MAX_TAGS per vCPU
    for (let pcid = 2; pcid < 200; pcid++) m.cpu.setAddressSpace(0, pcid);
    expect(m.cpu.tlb.tagCapacity).toBeGreaterThanOrEqual(m.cpu.tags.used);
    m.cpu.loadRoot(m.root, 1, true); // back to the first space, no flush: its entry is there
    expect(m.cpu.tag).toBe(tagOfRoot);
    expect(read(m, 0)).toEqual([40, 0]); // a TLB hit: no walk
  });

  /**
   * Use up tags, one per CR3 load, until exactly one is left. `vpids` must be new; `spare` is a
   * (vpid, pcid) whose global tag exists and whose own tag does not, for when a new vpid would
   * need two.
   */
  function useTagsUntilOneLeft(cpu: Vcpu, vpids: number[], spare: [number, number]): void {
    for (const vpid of vpids) {
      for (let pcid = 0; pcid < 4095; pcid++) {
        if (cpu.tags.used >= MAX_TAGS - 1) return;
        if (pcid === 0 && cpu.tags.used === MAX_TAGS - 2) {
          cpu.setAddressSpace(spare[0], spare[1]);
          return;
        }
        cpu.setAddressSpace(vpid, pcid);
      }
    }
  }

  /**
   * Space A is loaded with the last free tag while its vpid's global tag overflows the tag
   * space; tags are then used up again and space B (same vpid, a new PCID) is loaded without a
   * flush. Returns the frames gva 0 translates to in A and then in B, and the tags used.
   */
  function exhaustion() {
    const m = machine();
    const rootB = m.t.alloc();
    m.t.map(m.root, 0, 1, 40); // space A: gva 0 -> frame 40
    m.t.map(rootB, 0, 1, 50); // space B: gva 0 -> frame 50
    const cpu = m.cpu;
    const vpids = (from: number) => Array.from({ length: 10 }, (_, i) => from + i);
    useTagsUntilOneLeft(cpu, vpids(0), [0, 4095]);
    const left1 = MAX_TAGS - cpu.tags.used;
    cpu.vpid = 9;
    cpu.loadRoot(m.root, 7, false);
    const tagA = cpu.tag;
    const inA = read(m, 0);
    useTagsUntilOneLeft(cpu, vpids(10), [9, 4095]);
    const left2 = MAX_TAGS - cpu.tags.used;
    cpu.vpid = 9;
    cpu.loadRoot(rootB, 8, true);
    return { left1, left2, tagA, tagB: cpu.tag, inA, inB: read(m, 0) };
  }

  it("the exhaustion scenario below reaches the overflow it is about", () => {
    const r = exhaustion();
    expect([r.left1, r.left2]).toEqual([1, 1]);
    // With one tag left, loading a space needs two: the tags are reset first.
    expect(r.tagA).toBe(0);
    expect(r.inA).toEqual([40, 1]);
    expect(r.tagB).toBe(0);
  });

  // Vcpu.setAddressSpace allocates the (vpid, pcid) tag, then the vpid's global tag; running out
  // of tags between the two must not leave the first one orphaned (and later handed out again
  // without a flush).
  it("tag exhaustion never lets one address space see another's entries", () => {
    expect(exhaustion().inB).toEqual([50, 1]);
  });
});
