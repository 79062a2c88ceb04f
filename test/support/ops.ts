/** Random sequences of guest system calls and accesses, for property tests (fast-check). */

import fc from "fast-check";
import { fork } from "../../src/guest/fork.js";
import { USER_HEAP_BASE } from "../../src/guest/layout.js";
import { type Process, VM_READ, VM_WRITE } from "../../src/guest/process.js";
import type { TestGuest } from "./guest.js";

export const HEAP_PAGES = 64;

export type Op =
  | { op: "spawn" }
  | { op: "write"; p: number; page: number; value: number }
  | { op: "read"; p: number; page: number }
  | { op: "fork"; p: number }
  | { op: "exit"; p: number }
  | { op: "munmap"; p: number; page: number; pages: number }
  | { op: "mprotect"; p: number; page: number; pages: number; writable: boolean }
  /** munmap or mprotect read-only the page the last access touched, while it is still loaded. */
  | { op: "unmap-last" }
  | { op: "protect-last" }
  /** Set the balloon target (a fraction of the guest's memory) and let the driver run. */
  | { op: "balloon"; fraction: number }
  /** The host swaps out `pages` random pages of the domain. */
  | { op: "swap-out"; pages: number }
  /** The host's sharing scanner visits `pages` pages. */
  | { op: "scan"; pages: number };

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ op: "spawn" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "unmap-last" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "protect-last" as const }) },
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant("write" as const),
      p: fc.nat(7),
      page: fc.nat(HEAP_PAGES + 3),
      value: fc.integer({ min: 1, max: 0x7fffffff }),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant("read" as const),
      p: fc.nat(7),
      page: fc.nat(HEAP_PAGES + 3),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("fork" as const), p: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("exit" as const), p: fc.nat(7) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("munmap" as const),
      p: fc.nat(7),
      page: fc.nat(HEAP_PAGES - 1),
      pages: fc.integer({ min: 1, max: 8 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("mprotect" as const),
      p: fc.nat(7),
      page: fc.nat(HEAP_PAGES - 1),
      pages: fc.integer({ min: 1, max: 8 }),
      writable: fc.boolean(),
    }),
  },
);

/** opArb with the host's memory operations mixed in (no-ops natively). */
export const overcommitOpArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: opArb },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("balloon" as const),
      fraction: fc.double({ min: 0.5, max: 1, noNaN: true }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("swap-out" as const),
      pages: fc.integer({ min: 1, max: 64 }),
    }),
  },
);

/** opArb with the sharing scanner's work mixed in (a no-op natively). */
export const sharingOpArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: opArb },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("scan" as const),
      pages: fc.integer({ min: 1, max: 8192 }),
    }),
  },
);

/**
 * Run ops on a guest and return what a program and an observer of the guest would see: each
 * read's value or death, each write's success, each process's fate, in order. The same ops on
 * two paging modes must give the same observations.
 */
export function runOps(g: TestGuest, ops: Op[], huge = false, afterEach?: () => void): string[] {
  const image = { code: 4096, heap: HEAP_PAGES * 4096, hugeHeap: huge };
  const procs: Process[] = [];
  const seen: string[] = [];
  const spawn = () => {
    const p = g.kernel.spawn("p", image);
    if (p) procs.push(p);
    seen.push(`spawn ${p?.pid ?? "oom"}`);
  };
  spawn();
  let last: { p: Process; page: number } | null = null;
  const gva = (page: number) => USER_HEAP_BASE + page * 4096;
  for (const o of ops) {
    const live = procs.filter((p) => p.alive);
    if (o.op === "balloon") {
      g.setBalloonTarget(Math.floor(g.kernel.memFrames * o.fraction));
    } else if (o.op === "swap-out") {
      g.swapOut(o.pages);
    } else if (o.op === "scan") {
      g.scan(o.pages);
    } else if (o.op === "spawn") {
      if (live.length < 8) spawn();
    } else if (o.op === "unmap-last" || o.op === "protect-last") {
      if (last?.p.alive && last.page < HEAP_PAGES) {
        if (o.op === "unmap-last") g.kernel.munmap(last.p, gva(last.page), 4096);
        else g.kernel.mprotect(last.p, gva(last.page), 4096, VM_READ);
        seen.push(`${o.op} ${last.p.pid} ${last.page}`);
      }
    } else if (live.length > 0) {
      const p = live[o.p % live.length];
      switch (o.op) {
        case "write":
          last = { p, page: o.page };
          seen.push(`write ${p.pid} ${o.page} ${g.write(p, gva(o.page), o.value)}`);
          break;
        case "read":
          last = { p, page: o.page };
          seen.push(`read ${p.pid} ${o.page} ${g.read(p, gva(o.page))}`);
          break;
        case "fork":
          if (live.length < 8) {
            g.kernel.switchTo(p);
            const child = fork(g.kernel, p);
            if (child) procs.push(child);
            seen.push(`fork ${p.pid} ${child?.pid ?? "oom"}`);
          }
          break;
        case "exit":
          g.kernel.exit(p);
          seen.push(`exit ${p.pid}`);
          break;
        case "munmap": {
          const n = Math.min(o.pages, HEAP_PAGES - o.page);
          g.kernel.munmap(p, gva(o.page), n * 4096);
          seen.push(`munmap ${p.pid} ${o.page} ${n}`);
          break;
        }
        case "mprotect": {
          const n = Math.min(o.pages, HEAP_PAGES - o.page);
          g.kernel.mprotect(p, gva(o.page), n * 4096, o.writable ? VM_READ | VM_WRITE : VM_READ);
          seen.push(`mprotect ${p.pid} ${o.page} ${n} ${o.writable}`);
          break;
        }
      }
    }
    afterEach?.();
  }
  for (const p of procs)
    seen.push(`pid ${p.pid} ${p.alive ? "alive" : `dead ${p.killedBy}`} faults ${p.faults}`);
  return seen;
}
