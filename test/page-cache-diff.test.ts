/**
 * The page cache under random operations (fast-check): processes running one program fetch its
 * text, read and write a private file mapping of its data, write anonymous memory, fork, exit,
 * munmap and mprotect, and a hog puts the guest under memory pressure. A model says what every
 * read must return (the value the process or its ancestors wrote, else the image's own: the
 * cached pages never change), every invariant is checked after every operation, and every VMM
 * mode must give the guest what native paging gives it: the same values, the same faults and
 * page-cache counts, the same final page tables and the same frames in use.
 */

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { userAccess } from "../src/guest/fault.js";
import { fork } from "../src/guest/fork.js";
import type { ProcessImage } from "../src/guest/kernel.js";
import { USER_HEAP_BASE } from "../src/guest/layout.js";
import { type Process, VM_EXEC, VM_READ, VM_WRITE, type VmaLayout } from "../src/guest/process.js";
import { KIND_USER_FETCH } from "../src/hw/access.js";
import { digestWord, imageId, imagePageDigest } from "../src/hw/memory.js";
import {
  C_FAULT_AROUND_PAGES,
  C_GUEST_OOM,
  C_GUEST_PAGE_FAULTS,
  C_PAGE_CACHE_EVICTIONS,
  C_PAGE_CACHE_HITS,
  C_PAGE_CACHE_MISSES,
  C_PAGE_COPY,
  C_PAGE_READS,
} from "../src/metrics/counters.js";
import { bootGuest, type TestGuest, type TestMode, VMM_TEST_MODES } from "./support/guest.js";
import { renamedFrames } from "./support/observe.js";

const CODE = 0x400000;
const DATA = 0x10000000;
const ANON = 0x20000000;
const CODE_PAGES = 40;
const DATA_PAGES = 12;
const ANON_PAGES = 8;

const region = (start: number, pages: number, prot: number, fromImage: boolean): VmaLayout => ({
  start,
  end: start + pages * 4096,
  prot,
  kind: fromImage ? "code" : "heap",
  fromImage,
});

const prog: ProcessImage = {
  code: 0,
  heap: 0,
  hugeHeap: false,
  name: "prog",
  layout: [
    region(CODE, CODE_PAGES, VM_READ | VM_EXEC, true),
    region(DATA, DATA_PAGES, VM_READ | VM_WRITE, true),
    region(ANON, ANON_PAGES, VM_READ | VM_WRITE, false),
  ],
};

/** The qword of each page the operations touch. */
const OFFSET = 24;

/** What a page of the image holds at OFFSET: what a read must see until someone writes. */
function pristine(gva: number): number {
  return digestWord(imagePageDigest(imageId("prog"), gva / 4096), OFFSET / 8);
}

type Op =
  | { op: "spawn" }
  | { op: "fetch"; p: number; page: number }
  | { op: "read"; p: number; page: number }
  | { op: "write"; p: number; page: number; anon: boolean; value: number }
  | { op: "fork"; p: number }
  | { op: "exit"; p: number }
  | { op: "munmap"; p: number; page: number; pages: number }
  | { op: "mprotect"; p: number; writable: boolean }
  /** A process writes `pages` pages of its own and exits: memory pressure. */
  | { op: "hog"; pages: number };

const p = fc.nat(7);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ op: "spawn" as const }) },
  {
    weight: 8,
    arbitrary: fc.record({ op: fc.constant("fetch" as const), p, page: fc.nat(CODE_PAGES - 1) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("read" as const), p, page: fc.nat(DATA_PAGES - 1) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("write" as const),
      p,
      page: fc.nat(DATA_PAGES - 1),
      anon: fc.boolean(),
      value: fc.integer({ min: 1, max: 0x7fffffff }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("fork" as const), p }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("exit" as const), p }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("munmap" as const),
      p,
      page: fc.nat(CODE_PAGES - 1),
      pages: fc.integer({ min: 1, max: 20 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("mprotect" as const), p, writable: fc.boolean() }),
  },
);
const pressureOpArb = fc.oneof(
  { weight: 12, arbitrary: opArb },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("hog" as const),
      pages: fc.integer({ min: 1500, max: 2100 }),
    }),
  },
);

/** A process and what the model says its private pages hold (gva -> value). */
interface Proc {
  proc: Process;
  written: Map<number, number>;
  /** Pages of its text still mapped (munmap takes them away: a fetch there is a SIGSEGV). */
  unmapped: Set<number>;
  writable: boolean;
}

const COUNTERS = [
  C_PAGE_CACHE_HITS,
  C_PAGE_CACHE_MISSES,
  C_PAGE_CACHE_EVICTIONS,
  C_FAULT_AROUND_PAGES,
  C_PAGE_READS,
  C_PAGE_COPY,
  C_GUEST_PAGE_FAULTS,
  C_GUEST_OOM,
];

function run(mode: TestMode, ops: Op[]) {
  const g: TestGuest = bootGuest(8, { mode });
  const k = g.kernel;
  const procs: Proc[] = [];
  const seen: string[] = [];
  const spawn = () => {
    const proc = k.spawn("prog", prog);
    if (proc) procs.push({ proc, written: new Map(), unmapped: new Set(), writable: true });
    seen.push(`spawn ${proc?.pid ?? "oom"}`);
  };
  /** A read the model checks: the written value, else the image's. */
  const expectRead = (m: Proc, gva: number, value: number | null) => {
    if (value === null) return;
    const want = m.written.get(gva) ?? (gva >= ANON ? 0 : pristine(gva - OFFSET));
    expect(value, `pid ${m.proc.pid} read of ${gva.toString(16)}`).toBe(want);
  };
  spawn();
  for (const o of ops) {
    const live = procs.filter((m) => m.proc.alive);
    if (o.op === "spawn") {
      if (live.length < 6) spawn();
    } else if (o.op === "hog") {
      const hog = k.spawn("hog", { code: 4096, heap: o.pages * 4096, hugeHeap: false });
      let alive = hog !== null;
      for (let i = 0; i < o.pages && alive && hog; i++)
        alive = g.write(hog, USER_HEAP_BASE + i * 4096, i + 1);
      if (hog?.alive) k.exit(hog);
      seen.push(`hog ${o.pages} ${alive}`);
    } else if (live.length > 0) {
      const m = live[o.p % live.length];
      switch (o.op) {
        case "fetch": {
          const gva = CODE + o.page * 4096 + OFFSET;
          k.switchTo(m.proc);
          const ok = userAccess(k, m.proc, gva, KIND_USER_FETCH, 0) !== -1;
          expect(ok, "a fetch from the text").toBe(!m.unmapped.has(o.page));
          if (ok) expectRead(m, gva, g.cpu.readValue);
          seen.push(`fetch ${m.proc.pid} ${o.page} ${ok}`);
          break;
        }
        case "read": {
          const gva = DATA + o.page * 4096 + OFFSET;
          const value = g.read(m.proc, gva);
          expectRead(m, gva, value);
          seen.push(`read ${m.proc.pid} ${o.page} ${value}`);
          break;
        }
        case "write": {
          const gva =
            (o.anon ? ANON : DATA) + (o.page % (o.anon ? ANON_PAGES : DATA_PAGES)) * 4096 + OFFSET;
          const ok = g.write(m.proc, gva, o.value);
          expect(ok, "a write").toBe(o.anon || m.writable);
          if (ok) m.written.set(gva, o.value);
          seen.push(`write ${m.proc.pid} ${gva.toString(16)} ${ok}`);
          break;
        }
        case "fork": {
          if (live.length >= 6) break;
          k.switchTo(m.proc);
          const child = fork(k, m.proc);
          if (child) {
            procs.push({
              proc: child,
              written: new Map(m.written),
              unmapped: new Set(m.unmapped),
              writable: m.writable,
            });
          }
          seen.push(`fork ${m.proc.pid} ${child?.pid ?? "oom"}`);
          break;
        }
        case "exit":
          k.exit(m.proc);
          seen.push(`exit ${m.proc.pid}`);
          break;
        case "munmap": {
          const n = Math.min(o.pages, CODE_PAGES - o.page);
          k.munmap(m.proc, CODE + o.page * 4096, n * 4096);
          for (let i = 0; i < n; i++) m.unmapped.add(o.page + i);
          seen.push(`munmap ${m.proc.pid} ${o.page} ${n}`);
          break;
        }
        case "mprotect":
          k.mprotect(m.proc, DATA, DATA_PAGES * 4096, o.writable ? VM_READ | VM_WRITE : VM_READ);
          m.writable = o.writable;
          seen.push(`mprotect ${m.proc.pid} ${o.writable}`);
          break;
      }
    }
    g.check();
  }
  for (const m of procs) {
    seen.push(
      `pid ${m.proc.pid} ${m.proc.alive ? "alive" : `dead ${m.proc.killedBy}`} faults ${m.proc.faults}`,
    );
  }
  const tables = k.processes.filter((x) => x.alive).map((x) => g.tables(x));
  return {
    seen,
    counters: COUNTERS.map((c) => g.counters[c]),
    tables,
    framesInUse: k.framesInUse(),
    cached: k.pageCache.pages,
  };
}

/** Counts added up over every case, to show what the cases exercised. */
const totals = new Map<number, number>();

function differential(ops: Op[], modes: readonly Exclude<TestMode, "native">[]) {
  const native = run("native", ops);
  for (let i = 0; i < COUNTERS.length; i++) {
    totals.set(COUNTERS[i], (totals.get(COUNTERS[i]) ?? 0) + native.counters[i]);
  }
  for (const mode of modes) {
    const other = run(mode, ops);
    expect(other.seen, mode).toEqual(native.seen);
    expect(other.counters, mode).toEqual(native.counters);
    expect(other.cached, mode).toBe(native.cached);
    expect(other.framesInUse, mode).toBe(native.framesInUse);
    // A PV guest's boot tables take more frames, so its later frames are others: its tables
    // are compared with each frame renamed by its first appearance.
    if (mode === "pv") expect(renamedFrames(other.tables)).toEqual(renamedFrames(native.tables));
    else expect(other.tables, mode).toEqual(native.tables);
  }
}

describe("the page cache looks the same to the guest in every mode", () => {
  test("programs sharing their text and data pages, every VMM mode", () => {
    totals.clear();
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 20, maxLength: 60 }), (ops) =>
        differential(ops, VMM_TEST_MODES),
      ),
      { numRuns: 40, seed: 21 },
    );
    expect(totals.get(C_PAGE_CACHE_HITS)).toBeGreaterThan(0);
    expect(totals.get(C_FAULT_AROUND_PAGES)).toBeGreaterThan(0);
    expect(totals.get(C_PAGE_COPY)).toBeGreaterThan(0);
  });

  // Not PV: its larger boot leaves it fewer free frames, so pressure evicts at other times.
  test("under memory pressure: reclaim of the page cache, the OOM killer", () => {
    totals.clear();
    fc.assert(
      fc.property(fc.array(pressureOpArb, { minLength: 20, maxLength: 60 }), (ops) =>
        differential(ops, ["shadow", "hap"]),
      ),
      { numRuns: 16, seed: 22 },
    );
    expect(totals.get(C_PAGE_CACHE_EVICTIONS)).toBeGreaterThan(0);
    expect(totals.get(C_GUEST_OOM)).toBeGreaterThan(0);
  });
});
