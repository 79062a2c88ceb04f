/**
 * The guest kernel against a reference model of process memory: random sequences of system
 * calls and accesses (fast-check), where the model says what every read must return and which
 * accesses must kill the process; the invariant checkers run after every step.
 */

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { fork } from "../src/guest/fork.js";
import { USER_HEAP_BASE } from "../src/guest/layout.js";
import { type Process, VM_READ, VM_WRITE } from "../src/guest/process.js";
import {
  C_BALLOON_DEFLATED_PAGES,
  C_BALLOON_INFLATED_PAGES,
  C_HOST_SWAP_INS,
  C_HOST_SWAP_OUTS,
  newCounters,
} from "../src/metrics/counters.js";
import { ALL_WALK_CACHES } from "./support/domains.js";
import { bootGuest, type TestMode, VMM_TEST_MODES } from "./support/guest.js";
import { HEAP_PAGES, type Op, opArb, overcommitOpArb } from "./support/ops.js";

/** What a process's heap holds in the model: per page, mapped?, writable?, value at offset 0. */
interface ModelProc {
  proc: Process;
  mapped: boolean[];
  writable: boolean[];
  value: number[];
}

function runModel(ops: Op[], pcid: boolean, huge: boolean, mode: TestMode = "native") {
  const g = bootGuest(16, { pcid, mode, walkCaches: ALL_WALK_CACHES });
  const image = { code: 4096, heap: HEAP_PAGES * 4096, hugeHeap: huge };
  const procs: ModelProc[] = [];
  const spawn = () => {
    const proc = g.kernel.spawn("p", image);
    if (proc === null) return;
    procs.push({
      proc,
      mapped: Array(HEAP_PAGES).fill(true),
      writable: Array(HEAP_PAGES).fill(true),
      value: Array(HEAP_PAGES).fill(0),
    });
  };
  spawn();
  const kill = (i: number) => procs.splice(i, 1);
  let last: { m: ModelProc; page: number } | null = null;
  for (const o of ops) {
    if (o.op === "spawn") {
      if (procs.length < 8) spawn();
      continue;
    }
    if (o.op === "unmap-last" || o.op === "protect-last") {
      if (last === null || !last.m.proc.alive || last.page >= HEAP_PAGES) continue;
      const { m, page } = last;
      const gva = USER_HEAP_BASE + page * 4096;
      if (o.op === "unmap-last") {
        g.kernel.munmap(m.proc, gva, 4096);
        m.mapped[page] = false;
        m.value[page] = 0;
      } else {
        g.kernel.mprotect(m.proc, gva, 4096, VM_READ);
        m.writable[page] = false;
      }
      g.check();
      continue;
    }
    if (o.op === "scan") {
      g.scan(o.pages);
      g.check();
      continue;
    }
    if (o.op === "balloon" || o.op === "swap-out") {
      // The host's memory operations: invisible to the guest's data (the model is unchanged).
      if (o.op === "balloon") g.setBalloonTarget(Math.floor(g.kernel.memFrames * o.fraction));
      else g.swapOut(o.pages);
      g.check();
      continue;
    }
    if (procs.length === 0) continue;
    const i = o.p % procs.length;
    const m = procs[i];
    const gva = (page: number) => USER_HEAP_BASE + page * 4096;
    const inHeap = (page: number) => page < HEAP_PAGES && m.mapped[page];
    if (o.op === "write" || o.op === "read") last = { m, page: o.page };
    switch (o.op) {
      case "write": {
        const ok = g.write(m.proc, gva(o.page), o.value);
        const expected = inHeap(o.page) && m.writable[o.page];
        expect(ok, `write page ${o.page}`).toBe(expected);
        if (ok) m.value[o.page] = o.value;
        else kill(i);
        break;
      }
      case "read": {
        const v = g.read(m.proc, gva(o.page));
        if (inHeap(o.page)) expect(v, `read page ${o.page}`).toBe(m.value[o.page]);
        else {
          expect(v).toBeNull();
          kill(i);
        }
        break;
      }
      case "fork": {
        if (procs.length >= 8) break;
        g.kernel.switchTo(m.proc);
        const child = fork(g.kernel, m.proc);
        if (child) {
          procs.push({
            proc: child,
            mapped: [...m.mapped],
            writable: [...m.writable],
            value: [...m.value],
          });
        }
        break;
      }
      case "exit":
        g.kernel.exit(m.proc);
        kill(i);
        break;
      case "munmap": {
        const n = Math.min(o.pages, HEAP_PAGES - o.page);
        g.kernel.munmap(m.proc, gva(o.page), n * 4096);
        for (let p = o.page; p < o.page + n; p++) {
          m.mapped[p] = false;
          m.value[p] = 0;
        }
        break;
      }
      case "mprotect": {
        const n = Math.min(o.pages, HEAP_PAGES - o.page);
        g.kernel.mprotect(m.proc, gva(o.page), n * 4096, o.writable ? VM_READ | VM_WRITE : VM_READ);
        for (let p = o.page; p < o.page + n; p++) m.writable[p] = o.writable;
        break;
      }
    }
    g.check();
  }
  for (const m of procs) g.kernel.exit(m.proc);
  g.check();
  // Every frame comes back, but for the ones the balloon still holds.
  expect(g.kernel.framesInUse()).toBe(g.kernel.balloon?.count ?? 0);
  expect(g.kernel.pt.pages).toBe(0);
  return g.counters;
}

describe("guest kernel against a model of process memory", () => {
  test("random system calls and accesses", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
        runModel(ops, false, false);
      }),
      { numRuns: 150, seed: 20261125 },
    );
  });

  test("the same with PCIDs (context switches keep the TLB)", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
        runModel(ops, true, false);
      }),
      { numRuns: 100, seed: 7 },
    );
  });

  test.each(VMM_TEST_MODES)(
    "the same under %s, with the balloon and host swapping at work",
    (mode) => {
      const seen = newCounters();
      fc.assert(
        fc.property(fc.array(overcommitOpArb, { minLength: 1, maxLength: 60 }), (ops) => {
          const c = runModel(ops, false, false, mode);
          for (let i = 0; i < c.length; i++) seen[i] += c[i];
        }),
        { numRuns: mode === "shadow" ? 80 : 40, seed: 4 },
      );
      // The mechanisms ran: pages went into the balloon and came back, pages were swapped out
      // and read back in (the host swaps no PV domain, as Xen's paging needs HAP).
      expect(seen[C_BALLOON_INFLATED_PAGES]).toBeGreaterThan(0);
      expect(seen[C_BALLOON_DEFLATED_PAGES]).toBeGreaterThan(0);
      if (mode !== "pv") {
        expect(seen[C_HOST_SWAP_OUTS]).toBeGreaterThan(0);
        expect(seen[C_HOST_SWAP_INS]).toBeGreaterThan(0);
      }
    },
  );

  test("the same with transparent huge pages", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
        runModel(ops, false, true);
      }),
      { numRuns: 60, seed: 11 },
    );
  });
});
