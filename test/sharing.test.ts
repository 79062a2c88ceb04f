/**
 * Content-based page sharing: identical pages merge and different ones never do (a checksum
 * collision is caught by the full compare); KSM's two-scan rule, volatile pages and zero pages;
 * a write breaks the sharing and no domain ever reads what another wrote; the same guest view
 * as without sharing; the bookkeeping balances; a copy on write with no memory left.
 */

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { sweepDomains } from "../src/api/sweep.js";
import { USER_HEAP_BASE } from "../src/guest/layout.js";
import type { Process } from "../src/guest/process.js";
import { KIND_USER_READ } from "../src/hw/access.js";
import { WALK_NO_FRAME } from "../src/hw/walker.js";
import {
  C_COW_BREAKS,
  C_SHARING_MERGES,
  C_SHARING_PAGES_VOLATILE,
} from "../src/metrics/counters.js";
import { DomainCrash } from "../src/vmm/crash.js";
import { OWNER_DOMAIN } from "../src/vmm/frames.js";
import { Host } from "../src/vmm/host.js";
import { P2M_RAM_SHARED } from "../src/vmm/p2m.js";
import { checkSharing } from "../src/vmm/sharing/check.js";
import { KsmScanner } from "../src/vmm/sharing/ksm.js";
import { builtinScenario } from "../src/workload/scenario/builtin.js";
import { bootGuest, TEST_SHARING, type TestGuest } from "./support/guest.js";
import { shadowOf } from "./support/modes.js";

const page = (i: number) => USER_HEAP_BASE + i * 4096;

function spawn(g: TestGuest, pages: number): Process {
  const p = g.kernel.spawn("p", { code: 4096, heap: pages * 4096, hugeHeap: false });
  if (p === null) throw new Error("cannot spawn");
  return p;
}

/** Write `values[i]` at the start of page i (and only there: the rest of the page is zero). */
function writeAll(g: TestGuest, p: Process, values: number[]): void {
  values.forEach((v, i) => {
    expect(g.write(p, page(i), v)).toBe(true);
  });
}

function readAll(g: TestGuest, p: Process, n: number): (number | null)[] {
  return Array.from({ length: n }, (_, i) => g.read(p, page(i)));
}

/** Two shadow guests on one host that shares pages. */
function twoGuests(memMiB = 16) {
  const a = bootGuest(memMiB, { mode: "shadow", sharing: true });
  const b = bootGuest(memMiB, { mode: "shadow", host: a.host! });
  return { a, b, host: a.host! };
}

function sharedGfns(g: TestGuest): number {
  const p2m = g.vmm!.p2m;
  let n = 0;
  for (let gfn = 0; gfn < p2m.gfns; gfn++) if (p2m.type[gfn] === P2M_RAM_SHARED) n++;
  return n;
}

/**
 * Full scans of every domain's memory, page by page so that they end where a scan ends (the
 * next one has then visited one page: gfn 0, a kernel page).
 */
function fullScans(g: TestGuest, scans: number): void {
  g.scan(0); // start the scanner
  const ksm = g.host!.scanner!;
  const target = ksm.fullScans + scans;
  while (ksm.fullScans < target) g.scan(1);
}

describe("merging", () => {
  test("identical pages of two domains merge; different pages never do", () => {
    const { a, b, host } = twoGuests();
    const pa = spawn(a, 40);
    const pb = spawn(b, 40);
    const same = Array.from({ length: 20 }, (_, i) => 1000 + i);
    writeAll(a, pa, [...same, ...same.map((v) => v + 5000)]);
    writeAll(b, pb, [...same, ...same.map((v) => v + 9000)]);
    fullScans(a, 3);
    a.check();
    b.check();
    // The 20 identical pages (and nothing of the 20 that differ) are shared, one frame each.
    const sharing = host.sharing!;
    expect(sharedGfns(b)).toBeGreaterThanOrEqual(20);
    expect(sharing.pagesSharing).toBeGreaterThanOrEqual(20);
    expect(readAll(a, pa, 40)).toEqual([...same, ...same.map((v) => v + 5000)]);
    expect(readAll(b, pb, 40)).toEqual([...same, ...same.map((v) => v + 9000)]);
    expect(checkSharing(host)).toBeNull();
  });

  test("a checksum collision is caught by the full compare", () => {
    const { a, b, host } = twoGuests();
    const pa = spawn(a, 30);
    const pb = spawn(b, 30);
    writeAll(
      a,
      pa,
      Array.from({ length: 30 }, (_, i) => 7 + i),
    );
    writeAll(
      b,
      pb,
      Array.from({ length: 30 }, (_, i) => (i < 10 ? 7 + i : 99_000 + i)),
    );
    // Every page has the same checksum: only the full compare tells them apart.
    host.scanner = new KsmScanner(
      host.mem,
      host.sharing!,
      host.domains.map((d) => d.p2m),
      TEST_SHARING,
      host.counters,
      () => 42,
    );
    while (host.scanner.fullScans < 3) host.scanner.scan(1024);
    a.check();
    b.check();
    expect(readAll(a, pa, 30)).toEqual(Array.from({ length: 30 }, (_, i) => 7 + i));
    expect(readAll(b, pb, 30)).toEqual(
      Array.from({ length: 30 }, (_, i) => (i < 10 ? 7 + i : 99_000 + i)),
    );
    expect(host.sharing!.pagesSharing).toBeGreaterThanOrEqual(10);
  });

  test("a new pair of duplicates merges no earlier than its second full scan", () => {
    const { a, b, host } = twoGuests();
    fullScans(a, 1); // whatever boot left is seen once
    const pa = spawn(a, 4);
    const pb = spawn(b, 4);
    writeAll(a, pa, [11, 12, 13, 14]);
    writeAll(b, pb, [11, 12, 13, 14]);
    const merges = () => host.counters[C_SHARING_MERGES];
    const before = merges();
    const baseA = sharedGfns(a);
    fullScans(a, 1);
    expect(sharedGfns(a)).toBe(baseA); // first sight: checksums only
    fullScans(a, 1);
    expect(merges() - before).toBeGreaterThanOrEqual(4);
    expect(readAll(b, pb, 4)).toEqual([11, 12, 13, 14]);
  });

  test("a page that changes between scans is volatile and not merged", () => {
    const { a, b, host } = twoGuests();
    const pa = spawn(a, 1);
    const pb = spawn(b, 1);
    for (let round = 0; round < 4; round++) {
      a.write(pa, page(0), 500 + round);
      b.write(pb, page(0), 500 + round);
      fullScans(a, 1);
    }
    expect(host.counters[C_SHARING_PAGES_VOLATILE]).toBeGreaterThan(0);
    // Pages written before every scan never settle into the unstable table: both stay private.
    for (const [g, p] of [
      [a, pa],
      [b, pb],
    ] as const) {
      expect(g.read(p, page(0))).toBe(503);
      const mfn = g.cpu.access(page(0), KIND_USER_READ, 0);
      expect(host.frames.owner[mfn]).toBe(OWNER_DOMAIN);
    }
  });

  test("with use_zero_pages, zero pages map one zero frame at the first scan", () => {
    const a = bootGuest(16, { mode: "shadow", sharing: true });
    const p = spawn(a, 30);
    for (let i = 0; i < 30; i++) expect(a.read(p, page(i))).toBe(0); // touched, never written
    a.scan(0);
    const ksm = a.host!.scanner as KsmScanner;
    (ksm.options as { useZeroPages: boolean }).useZeroPages = true;
    const target = ksm.fullScans + 1;
    while (ksm.fullScans < target) a.scan(1024);
    expect(a.host!.sharing!.pagesShared).toBe(1);
    expect(a.host!.sharing!.pagesSharing).toBeGreaterThanOrEqual(29);
    a.check();
    for (let i = 0; i < 30; i++) expect(a.read(p, page(i))).toBe(0);
  });
});

describe("copy on write", () => {
  test("a write breaks the sharing: the writer sees its value, the others the old one", () => {
    const { a, b } = twoGuests();
    const pa = spawn(a, 8);
    const pb = spawn(b, 8);
    const values = [1, 2, 3, 4, 5, 6, 7, 8];
    writeAll(a, pa, values);
    writeAll(b, pb, values);
    fullScans(a, 3);
    expect(sharedGfns(a)).toBeGreaterThanOrEqual(8);
    expect(a.write(pa, page(3), 4444)).toBe(true);
    expect(a.counters[C_COW_BREAKS]).toBeGreaterThanOrEqual(1);
    expect(a.read(pa, page(3))).toBe(4444);
    expect(b.read(pb, page(3))).toBe(4);
    a.check();
    b.check();
  });

  test("with no host memory left: swapped to make room, or the domain is crashed", () => {
    for (const swap of [true, false]) {
      const { a, b, host } = twoGuests();
      const pa = spawn(a, 8);
      const pb = spawn(b, 16);
      writeAll(a, pa, [9, 9, 9, 9, 9, 9, 9, 9]);
      // b also has pages of its own, which the host may swap out.
      writeAll(b, pb, [9, 9, 9, 9, 9, 9, 9, 9, 21, 22, 23, 24, 25, 26, 27, 28]);
      fullScans(a, 3);
      // Use up the host's free frames.
      while (host.frames.free > 0) host.frames.alloc(3, -1);
      (host.swap.options as { enabled: boolean }).enabled = swap;
      if (swap) {
        expect(a.write(pa, page(0), 1)).toBe(true);
        expect(a.read(pa, page(0))).toBe(1);
        expect(b.read(pb, page(0))).toBe(9);
        expect(b.vmm!.p2m.swappedOut).toBeGreaterThan(0);
      } else {
        expect(() => a.write(pa, page(0), 1)).toThrow(DomainCrash);
        expect(b.read(pb, page(0))).toBe(9);
      }
    }
  });
});

describe("isolation under sharing", () => {
  type Op =
    | { op: "write"; dom: number; page: number; value: number }
    | { op: "read"; dom: number; page: number }
    | { op: "scan"; pages: number };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        op: fc.constant("write" as const),
        dom: fc.nat(1),
        page: fc.nat(15),
        value: fc.integer({ min: 1, max: 6 }), // few values: many duplicates
      }),
    },
    {
      weight: 4,
      arbitrary: fc.record({ op: fc.constant("read" as const), dom: fc.nat(1), page: fc.nat(15) }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant("scan" as const),
        // Up to four full scans of both guests: duplicates get merged, then written.
        pages: fc.integer({ min: 1, max: 16384 }),
      }),
    },
  );

  test("every domain reads back exactly what it wrote, whatever was merged (fast-check)", () => {
    let merged = 0;
    let broken = 0;
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 80 }), (ops) => {
        const { a, b, host } = twoGuests(8);
        const guests = [a, b];
        const procs = guests.map((g) => spawn(g, 16));
        const model = [new Map<number, number>(), new Map<number, number>()];
        for (const o of ops) {
          if (o.op === "scan") a.scan(o.pages);
          else if (o.op === "write") {
            expect(guests[o.dom].write(procs[o.dom], page(o.page), o.value)).toBe(true);
            model[o.dom].set(o.page, o.value);
          } else {
            const v = guests[o.dom].read(procs[o.dom], page(o.page));
            expect(v).toBe(model[o.dom].get(o.page) ?? 0);
          }
          a.check();
          b.check();
        }
        merged += host.counters[C_SHARING_MERGES];
        broken += a.counters[C_COW_BREAKS] + b.counters[C_COW_BREAKS];
      }),
      { numRuns: 60, seed: 12 },
    );
    expect(merged).toBeGreaterThan(0);
    expect(broken).toBeGreaterThan(0);
  });
});

describe("the host", () => {
  test("a host built without sharing has none", () => {
    expect(new Host(1024).sharing).toBeNull();
  });
});

describe("the sweep over identical guests", () => {
  test("the saving grows with the number of guests, zero pages the most shared", () => {
    const s = builtinScenario("sharing");
    // A quarter of the built-in, so that it runs in a test's time.
    for (const d of s.domains) {
      d.memory /= 4;
      for (const p of d.processes) {
        p.workingSet /= 4;
        p.code /= 4;
      }
    }
    const sweep = sweepDomains(s, 3, { accessesPerDomain: 60_000, check: true });
    expect(sweep.results.map((r) => r.domains)).toEqual([1, 2, 3]);
    for (const r of sweep.results) expect(r.report.checks.violations).toBe(0);
    const saved = sweep.results.map((r) => r.memory_saved_bytes);
    expect(saved[1]).toBeGreaterThan(saved[0]);
    expect(saved[2]).toBeGreaterThan(saved[1]);
    for (const r of sweep.results) {
      const populated = r.report.domains.reduce((n, d) => n + d.counters.p2m_entries!, 0);
      expect(r.saved_pct).toBeCloseTo((100 * r.pages_sharing) / populated, 6);
    }
    const last = sweep.results[2];
    expect(last.zero_pages_sharing).toBeGreaterThan(last.pages_sharing / 2);
    // Each domain did the same work.
    for (const d of last.report.domains) expect(d.counters.user_accesses).toBe(60_000);
  });
});

describe("the ESX-style scanner", () => {
  function esxGuests() {
    const a = bootGuest(8, { mode: "shadow", sharing: "esx" });
    const b = bootGuest(8, { mode: "shadow", host: a.host! });
    return { a, b, host: a.host! };
  }

  test("random scans with hint frames merge identical pages, and only those", () => {
    const { a, b, host } = esxGuests();
    const pa = spawn(a, 20);
    const pb = spawn(b, 20);
    writeAll(
      a,
      pa,
      Array.from({ length: 20 }, (_, i) => 300 + i),
    );
    writeAll(
      b,
      pb,
      Array.from({ length: 20 }, (_, i) => (i < 10 ? 300 + i : 800 + i)),
    );
    for (let i = 0; i < 40; i++) a.scan(2048);
    a.check();
    b.check();
    expect(host.scanner?.fullScans).toBe(0);
    expect(host.sharing!.pagesSharing).toBeGreaterThanOrEqual(10);
    expect(readAll(a, pa, 20)).toEqual(Array.from({ length: 20 }, (_, i) => 300 + i));
    expect(readAll(b, pb, 20)).toEqual(
      Array.from({ length: 20 }, (_, i) => (i < 10 ? 300 + i : 800 + i)),
    );
  });

  test("a hint whose page changed is stale and is not merged", () => {
    const { a, b, host } = esxGuests();
    const pa = spawn(a, 1);
    const pb = spawn(b, 1);
    for (let round = 0; round < 6; round++) {
      a.write(pa, page(0), 40 + round);
      a.scan(4096);
      b.write(pb, page(0), 40 + round - 1); // b always holds what a held the round before
      b.scan(4096);
    }
    a.check();
    expect(a.read(pa, page(0))).toBe(45);
    expect(b.read(pb, page(0))).toBe(44);
    expect(host.counters[C_SHARING_PAGES_VOLATILE]).toBeGreaterThan(0);
  });
});

describe("review fixes", () => {
  test("writing the last reference to a shared frame takes it back without a copy", () => {
    const { a, b, host } = twoGuests();
    const pa = spawn(a, 4);
    const pb = spawn(b, 4);
    writeAll(a, pa, [5, 6, 7, 8]);
    writeAll(b, pb, [5, 6, 7, 8]);
    fullScans(a, 3);
    expect(host.sharing!.pagesSharing).toBeGreaterThanOrEqual(4);
    host.destroyDomain(b.vmm!);
    // No free frame and no swapping: a copy would crash the domain, taking the frame back does not.
    while (host.frames.free > 0) host.frames.alloc(3, -1);
    expect(a.write(pa, page(2), 70)).toBe(true);
    expect(a.read(pa, page(2))).toBe(70);
    expect(readAll(a, pa, 4)).toEqual([5, 6, 70, 8]);
    a.check();
  });

  test("ESX hints stay one per page however often a page changes", () => {
    const a = bootGuest(8, { mode: "shadow", sharing: "esx" });
    const p = spawn(a, 1);
    for (let i = 0; i < 200; i++) {
      a.write(p, page(0), 1000 + i);
      a.scan(4096);
    }
    expect(a.host!.scanner!.pagesUnshared).toBeLessThanOrEqual(a.vmm!.p2m.gfns);
    a.check();
  });

  test("a walk that must set a bit in a read-only root stops at the root", () => {
    const a = bootGuest(8, { mode: "shadow", sharing: true });
    const p = spawn(a, 1);
    a.write(p, page(0), 1);
    const vmm = a.vmm!;
    const w = shadowOf(vmm).guestWalker;
    const rootGfn = p.l4Gfn;
    const rootMfn = vmm.p2m.mfn[rootGfn];
    const readOnly = new Uint8Array(a.host!.frames.frames);
    readOnly[rootMfn] = 1;
    const saved = w.readOnly;
    w.readOnly = readOnly;
    w.tableGfn[4] = rootGfn;
    // Clear A in the root's entry for the heap, so that the walk has a bit to set there.
    const index = Math.floor(page(0) / 2 ** 39) % 512;
    a.mem.read64(rootMfn, index);
    a.mem.write64(rootMfn, index, (a.mem.lo & ~0x20) >>> 0, a.mem.hi);
    const r = w.walkGuest(a.mem, rootMfn, page(0), 3, a.cpu.ctl, vmm.p2m.mfn);
    expect(r).toBe(WALK_NO_FRAME);
    expect(w.missingGfn).toBe(rootGfn);
    a.mem.read64(rootMfn, index);
    expect(a.mem.lo & 0x20).toBe(0); // nothing written
    w.readOnly = saved;
  });
});
