/**
 * The guest's page cache (guest/page-cache.ts, guest/file-fault.ts), natively and under every
 * VMM mode with every invariant checked: processes running one program map the same frames
 * for its pages, each page read once; the pages stay cached after the last process exits and
 * are found again; reclaim drops unmapped cached pages before the OOM killer runs; a write to a
 * private file page gets a copy and leaves the cached page as it was; fault-around maps the
 * cached neighbours of a read fault; fork does not copy a text area's entries.
 */

import { describe, expect, test } from "vitest";
import { userAccess } from "../src/guest/fault.js";
import { fork } from "../src/guest/fork.js";
import type { ProcessImage } from "../src/guest/kernel.js";
import { USER_CODE_BASE, USER_HEAP_BASE } from "../src/guest/layout.js";
import { type Process, VM_EXEC, VM_READ, VM_WRITE } from "../src/guest/process.js";
import { KIND_USER_FETCH } from "../src/hw/access.js";
import { tableIndex } from "../src/hw/addr.js";
import { imageId } from "../src/hw/memory.js";
import { pteFrame } from "../src/hw/pte.js";
import {
  C_FAULT_AROUND_PAGES,
  C_GUEST_COW_FAULTS,
  C_GUEST_OOM,
  C_GUEST_PAGE_FAULTS,
  C_PAGE_CACHE_EVICTIONS,
  C_PAGE_CACHE_HITS,
  C_PAGE_CACHE_MISSES,
  C_PAGE_COPY,
  C_PAGE_READS,
} from "../src/metrics/counters.js";
import { bootGuest, type GuestOptions, type TestGuest, VMM_TEST_MODES } from "./support/guest.js";

const MODES = ["native", ...VMM_TEST_MODES] as const;

const CODE_PAGES = 32;
const prog: ProcessImage = {
  code: CODE_PAGES * 4096,
  heap: 16 * 4096,
  hugeHeap: false,
  name: "prog",
};

/** The frame the leaf entry for gva maps in proc's tables (read as the checkers read them), or -1. */
function leaf(g: TestGuest, proc: Process, gva: number): number {
  const path = [4, 3, 2, 1].map((l) => tableIndex(gva, l)).join("/");
  const line = g.tables(proc).find((l) => l.startsWith(`/${path}:`));
  if (line === undefined) return -1;
  const [, hi, lo] = line.split(/:? /);
  return pteFrame(Number.parseInt(lo, 16), Number.parseInt(hi, 16));
}

/** An instruction fetch from gva by proc: the value fetched, or null if it was killed. */
function fetch(g: TestGuest, proc: Process, gva: number): number | null {
  g.kernel.switchTo(proc);
  return userAccess(g.kernel, proc, gva, KIND_USER_FETCH, 0) === -1 ? null : g.cpu.readValue;
}

const code = (page: number) => USER_CODE_BASE + page * 4096 + 8;

function fetchAll(g: TestGuest, proc: Process, pages = CODE_PAGES): (number | null)[] {
  const seen: (number | null)[] = [];
  for (let page = 0; page < pages; page++) seen.push(fetch(g, proc, code(page)));
  return seen;
}

/** A counter's growth while `run` runs. */
function delta(g: TestGuest, counter: number, run: () => void): number {
  const before = g.counters[counter];
  run();
  return g.counters[counter] - before;
}

describe.each(MODES)("the page cache (%s)", (mode) => {
  const boot = (mib = 16, options: GuestOptions = {}) => bootGuest(mib, { mode, ...options });

  test("two instances of a program map the same frames for its text, each page read once", () => {
    const g = boot();
    const a = g.kernel.spawn("a", prog)!;
    const b = g.kernel.spawn("b", prog)!;
    let seenA: (number | null)[] = [];
    let seenB: (number | null)[] = [];
    const reads = delta(g, C_PAGE_READS, () => {
      seenA = fetchAll(g, a);
      seenB = fetchAll(g, b);
    });
    g.check();
    expect(reads).toBe(CODE_PAGES);
    expect(g.counters[C_PAGE_CACHE_MISSES]).toBe(CODE_PAGES);
    expect(seenB).toEqual(seenA);
    for (let page = 0; page < CODE_PAGES; page++) {
      const frame = leaf(g, a, code(page));
      expect(frame).toBeGreaterThan(0);
      expect(leaf(g, b, code(page)), `page ${page}`).toBe(frame);
    }
    // Without the page cache each instance reads its own copy of every page.
    const h = boot(16, { pageCache: false });
    const ha = h.kernel.spawn("a", prog)!;
    const hb = h.kernel.spawn("b", prog)!;
    const ownReads = delta(h, C_PAGE_READS, () => {
      expect(fetchAll(h, ha)).toEqual(seenA);
      expect(fetchAll(h, hb)).toEqual(seenA);
    });
    h.check();
    expect(ownReads).toBe(2 * CODE_PAGES);
    expect(g.kernel.framesInUse()).toBe(h.kernel.framesInUse() - CODE_PAGES);
  });

  test("the pages stay cached after the last exit, and the next run finds them", () => {
    const g = boot();
    const a = g.kernel.spawn("a", prog)!;
    const first = fetchAll(g, a);
    g.kernel.exit(a);
    g.check();
    expect(g.kernel.pageCache.pages).toBe(CODE_PAGES);
    expect(g.kernel.framesInUse()).toBe(CODE_PAGES); // the cache's pages, nothing else
    const b = g.kernel.spawn("b", prog)!;
    const faults = b.faults;
    const reads = delta(g, C_PAGE_READS, () => expect(fetchAll(g, b)).toEqual(first));
    g.check();
    expect(reads).toBe(0);
    // Two faults, each mapping a 16-page block of cached pages (fault-around).
    expect(b.faults - faults).toBe(2);
    expect(g.counters[C_PAGE_CACHE_HITS]).toBe(2);
  });

  test("fault-around maps the cached pages of the fault's aligned block, in the area only", () => {
    // Two areas of one image, contiguous pages of it: [5, 11) and [11, 15) of the first
    // 16-page block of the page table, then [16, 40) across the next blocks.
    const region = (from: number, to: number) => ({
      start: USER_CODE_BASE + from * 4096,
      end: USER_CODE_BASE + to * 4096,
      prot: VM_READ | VM_EXEC,
      kind: "code" as const,
      fromImage: true,
    });
    const split: ProcessImage = {
      code: 0,
      heap: 0,
      hugeHeap: false,
      name: "split",
      layout: [region(5, 11), region(11, 15), region(16, 40)],
    };
    const pages = [
      5,
      6,
      7,
      8,
      9,
      10,
      11,
      12,
      13,
      14,
      ...Array.from({ length: 24 }, (_, i) => 16 + i),
    ];
    const g = boot();
    const a = g.kernel.spawn("a", split)!;
    const first = pages.map((p) => fetch(g, a, code(p)));
    expect(a.faults).toBe(pages.length); // nothing was cached: one fault (and read) per page
    const b = g.kernel.spawn("b", split)!;
    fetch(g, b, code(8));
    g.check();
    expect(b.faults).toBe(1);
    expect(g.counters[C_FAULT_AROUND_PAGES]).toBe(5); // 5..10 but 8: not 11..14, another area
    for (const p of [5, 6, 7, 9, 10])
      expect(leaf(g, b, code(p)), `page ${p}`).toBe(leaf(g, a, code(p)));
    for (const p of [11, 12, 13, 14]) expect(leaf(g, b, code(p)), `page ${p}`).toBe(-1);
    expect(pages.map((p) => fetch(g, b, code(p)))).toEqual(first);
    // 8, then 11 (maps 11..14), then 16, 32 (blocks of 16): 4 faults for 34 pages.
    expect(b.faults).toBe(4);
    g.check();
    // Turned off (fault_around_bytes 4096), every page is a fault of its own.
    const h = boot(16, { faultAroundPages: 1 });
    const ha = h.kernel.spawn("a", split)!;
    for (const p of pages) fetch(h, ha, code(p));
    const hb = h.kernel.spawn("b", split)!;
    expect(pages.map((p) => fetch(h, hb, code(p)))).toEqual(first);
    expect(hb.faults).toBe(pages.length);
    expect(h.counters[C_FAULT_AROUND_PAGES]).toBe(0);
  });

  test("a write to a private file page gets a copy; the cached page is unchanged", () => {
    const data: ProcessImage = {
      code: 0,
      heap: 0,
      hugeHeap: false,
      name: "data",
      layout: [
        {
          start: USER_HEAP_BASE,
          end: USER_HEAP_BASE + 16 * 4096,
          prot: VM_READ | VM_WRITE,
          kind: "heap",
          fromImage: true,
        },
      ],
    };
    const g = boot(16, { faultAroundPages: 1 });
    const at = (page: number) => USER_HEAP_BASE + page * 4096 + 16;
    const cachedFrame = (page: number) =>
      g.kernel.pageCache.find(imageId("data"), USER_HEAP_BASE / 4096 + page);
    const a = g.kernel.spawn("a", data)!;
    const b = g.kernel.spawn("b", data)!;
    const original = g.read(a, at(3));
    expect(g.read(b, at(3))).toBe(original);
    expect(leaf(g, a, at(3))).toBe(leaf(g, b, at(3)));
    // A write to the present, read-only cached page: wp_page_copy.
    const copies = delta(g, C_PAGE_COPY, () => {
      expect(delta(g, C_GUEST_COW_FAULTS, () => g.write(a, at(3), 0x1234))).toBe(1);
    });
    g.check();
    expect(copies).toBe(1);
    expect(leaf(g, a, at(3))).not.toBe(leaf(g, b, at(3)));
    expect(leaf(g, b, at(3))).toBe(cachedFrame(3));
    expect(g.read(a, at(3))).toBe(0x1234);
    expect(g.read(b, at(3))).toBe(original);
    // A write to a page not mapped yet: do_cow_fault reads it into the cache and copies it.
    const reads = delta(g, C_PAGE_READS, () => expect(g.write(a, at(5), 0x5678)).toBe(true));
    g.check();
    expect(reads).toBe(1);
    expect(cachedFrame(5)).toBeGreaterThan(0);
    expect(leaf(g, a, at(5))).not.toBe(cachedFrame(5));
    expect(g.read(a, at(5))).toBe(0x5678);
    const c = g.kernel.spawn("c", data)!;
    expect(delta(g, C_PAGE_READS, () => expect(g.read(c, at(5))).not.toBe(0x5678))).toBe(0);
    expect(leaf(g, c, at(5))).toBe(cachedFrame(5));
    // The copies are the writer's: a fork shares them copy-on-write, and they go at its exit.
    g.kernel.switchTo(a);
    const child = fork(g.kernel, a)!;
    expect(g.read(child, at(3))).toBe(0x1234);
    expect(leaf(g, child, at(3))).toBe(leaf(g, a, at(3)));
    g.check();
    g.kernel.exit(a);
    g.kernel.exit(child);
    g.check();
    expect(g.read(b, at(3))).toBe(original);
  });

  test("fork leaves the text's entries to the child's faults (vma_needs_copy)", () => {
    const g = boot();
    const parent = g.kernel.spawn("p", prog)!;
    const seen = fetchAll(g, parent);
    expect(g.write(parent, USER_HEAP_BASE, 7)).toBe(true);
    g.kernel.switchTo(parent);
    const child = fork(g.kernel, parent)!;
    g.check();
    expect(leaf(g, child, code(0))).toBe(-1);
    expect(leaf(g, child, USER_HEAP_BASE)).toBe(leaf(g, parent, USER_HEAP_BASE));
    const reads = delta(g, C_PAGE_READS, () => expect(fetchAll(g, child)).toEqual(seen));
    expect(reads).toBe(0);
    expect(child.faults).toBe(2); // two 16-page blocks, from the cache
    for (let page = 0; page < CODE_PAGES; page++) {
      expect(leaf(g, child, code(page))).toBe(leaf(g, parent, code(page)));
    }
    g.check();
  });

  test("reclaim drops unmapped cached pages, oldest first, before the OOM killer runs", () => {
    const big: ProcessImage = { ...prog, code: 64 * 4096 };
    const g = boot(8);
    const a = g.kernel.spawn("a", big)!;
    const first = fetchAll(g, a, 64);
    g.kernel.exit(a);
    // A live process keeps pages 0..15 mapped: reclaim never takes them.
    const keep = g.kernel.spawn("keep", big)!;
    fetch(g, keep, code(0));
    expect(g.kernel.pageCache.pages).toBe(64);
    expect(g.kernel.pageCache.unmappedPages).toBe(48);
    // A process that needs 20 frames more than are free: pages 16.. go, no one is killed.
    const pages = g.kernel.frames.freeCount + 20;
    const hog = g.kernel.spawn("hog", { code: 4096, heap: pages * 4096, hugeHeap: false })!;
    let alive = true;
    const evicted = delta(g, C_PAGE_CACHE_EVICTIONS, () => {
      for (let p = 0; p < pages && alive; p++)
        alive = g.write(hog, USER_HEAP_BASE + p * 4096, p + 1);
    });
    g.check();
    expect(alive).toBe(true);
    expect(g.counters[C_GUEST_OOM]).toBe(0);
    expect(evicted).toBeGreaterThanOrEqual(20);
    expect(evicted).toBeLessThan(48);
    expect(g.kernel.pageCache.pages).toBe(64 - evicted);
    // The oldest unmapped pages went first (those a exited from, in the order it faulted them).
    const id = imageId("prog");
    for (let p = 0; p < 64; p++) {
      const cached = g.kernel.pageCache.find(id, p) >= 0;
      expect(cached, `page ${p}`).toBe(p < 16 || p >= 16 + evicted);
    }
    g.kernel.exit(hog);
    // An evicted page is read again at its next fault, with the same content.
    const reads = delta(g, C_PAGE_READS, () => expect(fetchAll(g, keep, 64)).toEqual(first));
    expect(reads).toBe(evicted);
    g.check();
    // Asking for more than free and cached pages together: every unmapped page goes, then the
    // OOM killer takes the hog; the pages a live process maps stay.
    const hog2 = g.kernel.spawn("hog2", { code: 4096, heap: 4096 * 4096, hugeHeap: false })!;
    g.kernel.exit(keep);
    const keep2 = g.kernel.spawn("keep2", big)!;
    fetch(g, keep2, code(0));
    alive = true;
    for (let p = 0; p < 4096 && alive; p++) alive = g.write(hog2, USER_HEAP_BASE + p * 4096, 1);
    expect(alive).toBe(false);
    expect(hog2.killedBy).toBe("oom");
    expect(keep2.alive).toBe(true);
    expect(g.kernel.pageCache.pages).toBe(16);
    expect(g.kernel.pageCache.unmappedPages).toBe(0);
    g.check();
  });
});

test("the faults on a program's text fall from one per page to one per 16-page block", () => {
  const g = bootGuest(16);
  const a = g.kernel.spawn("a", prog)!;
  fetchAll(g, a);
  const faults = delta(g, C_GUEST_PAGE_FAULTS, () => {
    for (let i = 0; i < 4; i++) {
      const p = g.kernel.spawn(`p${i}`, prog)!;
      fetchAll(g, p);
      g.kernel.exit(p);
    }
  });
  expect(faults).toBe(4 * (CODE_PAGES / 16));
});

describe.each(VMM_TEST_MODES)("the balloon and the page cache (%s)", (mode) => {
  test("inflating at the watermark drops unmapped cached pages, not mapped ones", () => {
    const g = bootGuest(16, { mode });
    const a = g.kernel.spawn("a", prog)!;
    fetchAll(g, a);
    g.kernel.exit(a);
    const keep = g.kernel.spawn("keep", prog)!;
    fetch(g, keep, code(0)); // maps pages 0..15
    const balloon = g.kernel.balloon!;
    // 10 pages more than the allocator can give above its watermark.
    const want = g.kernel.frames.freeCount - balloon.minFree + 10;
    const evicted = delta(g, C_PAGE_CACHE_EVICTIONS, () =>
      g.setBalloonTarget(g.kernel.memFrames - want),
    );
    g.check();
    expect(balloon.count).toBe(want);
    expect(evicted).toBeGreaterThanOrEqual(10);
    expect(g.kernel.pageCache.pages).toBe(CODE_PAGES - evicted);
    expect(g.kernel.pageCache.pages).toBeGreaterThanOrEqual(16);
    // Asking for more than the unmapped pages: the driver stops at the watermark and backs off.
    g.setBalloonTarget(g.kernel.memFrames - want - 100);
    g.check();
    expect(balloon.count).toBeLessThan(want + 100);
    expect(g.kernel.pageCache.pages).toBe(16);
    expect(g.kernel.frames.freeCount).toBe(balloon.minFree);
    expect(fetchAll(g, keep).every((v) => v !== null)).toBe(true);
  });
});
