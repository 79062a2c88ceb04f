/**
 * Page sharing against everything else, two domains on one host, each mirrored by a native
 * guest doing the same (fast-check): writes of few values (many duplicates), reads, fork, exit,
 * spawn, munmap, mprotect, the balloon, host swap-outs, a domain destroyed, and scans by either
 * scanner, with huge pages, prefetch, every unshadow policy and tiny shadow pools. After every
 * step every checker runs, and a shared frame's content must never change; at the end each
 * domain has seen exactly what its native mirror saw.
 */

import fc from "fast-check";
import { expect, test } from "vitest";
import { fork } from "../src/guest/fork.js";
import { USER_HEAP_BASE } from "../src/guest/layout.js";
import { type Process, VM_READ, VM_WRITE } from "../src/guest/process.js";
import { C_COW_BREAKS, C_SHARING_MERGES } from "../src/metrics/counters.js";
import { KsmScanner } from "../src/vmm/sharing/ksm.js";
import { ALL_WALK_CACHES } from "./support/domains.js";
import { bootGuest, type TestGuest } from "./support/guest.js";

const HEAP = 32;

type Op =
  | { op: "write"; d: number; p: number; page: number; value: number }
  | { op: "read"; d: number; p: number; page: number }
  | { op: "readall"; d: number; p: number }
  | { op: "fork"; d: number; p: number }
  | { op: "exit"; d: number; p: number }
  | { op: "spawn"; d: number }
  | { op: "munmap"; d: number; p: number; page: number; pages: number }
  | { op: "mprotect"; d: number; p: number; page: number; pages: number; w: boolean }
  | { op: "balloon"; d: number; fraction: number }
  | { op: "swap"; d: number; pages: number }
  | { op: "scan"; pages: number }
  | { op: "destroy" };

const dom = fc.nat(1);
const proc = fc.nat(5);
const heapPage = fc.nat(HEAP - 1);
const span = fc.integer({ min: 1, max: 8 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant("write" as const),
      d: dom,
      p: proc,
      page: heapPage,
      value: fc.integer({ min: 1, max: 4 }),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({ op: fc.constant("read" as const), d: dom, p: proc, page: heapPage }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("readall" as const), d: dom, p: proc }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("fork" as const), d: dom, p: proc }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("exit" as const), d: dom, p: proc }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("spawn" as const), d: dom }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("munmap" as const),
      d: dom,
      p: proc,
      page: heapPage,
      pages: span,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("mprotect" as const),
      d: dom,
      p: proc,
      page: heapPage,
      pages: span,
      w: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("balloon" as const),
      d: dom,
      fraction: fc.double({ min: 0.5, max: 1, noNaN: true }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("swap" as const),
      d: dom,
      pages: fc.integer({ min: 1, max: 64 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: "destroy" as const }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("scan" as const),
      pages: fc.integer({ min: 1, max: 20000 }),
    }),
  },
);

interface Side {
  g: TestGuest;
  procs: Process[];
  seen: string[];
}

const gva = (page: number) => USER_HEAP_BASE + page * 4096;

function apply(s: Side, o: Op, huge: boolean): void {
  const g = s.g;
  const image = { code: 4096, heap: HEAP * 4096, hugeHeap: huge, name: "img", imageData: 0.5 };
  const live = s.procs.filter((p) => p.alive);
  if (o.op === "balloon") {
    g.setBalloonTarget(Math.floor(g.kernel.memFrames * o.fraction));
    return;
  }
  if (o.op === "swap") {
    g.swapOut(o.pages);
    return;
  }
  if (o.op === "spawn") {
    if (live.length >= 6) return;
    const p = g.kernel.spawn("p", image);
    if (p) s.procs.push(p);
    s.seen.push(`spawn ${p?.pid}`);
    return;
  }
  if (o.op === "scan" || o.op === "destroy" || live.length === 0) return;
  const p = live[o.p % live.length];
  switch (o.op) {
    case "write":
      s.seen.push(`w ${p.pid} ${o.page} ${g.write(p, gva(o.page), o.value)}`);
      break;
    case "read":
      s.seen.push(`r ${p.pid} ${o.page} ${g.read(p, gva(o.page))}`);
      break;
    case "readall":
      for (let i = 0; i < HEAP; i++) s.seen.push(`r ${p.pid} ${i} ${g.read(p, gva(i))}`);
      break;
    case "fork":
      if (live.length < 6) {
        g.kernel.switchTo(p);
        const c = fork(g.kernel, p);
        if (c) s.procs.push(c);
        s.seen.push(`fork ${c?.pid}`);
      }
      break;
    case "exit":
      g.kernel.exit(p);
      s.seen.push(`exit ${p.pid}`);
      break;
    case "munmap":
      g.kernel.munmap(p, gva(o.page), Math.min(o.pages, HEAP - o.page) * 4096);
      break;
    case "mprotect":
      g.kernel.mprotect(
        p,
        gva(o.page),
        Math.min(o.pages, HEAP - o.page) * 4096,
        o.w ? VM_READ | VM_WRITE : VM_READ,
      );
      break;
  }
}

/** A shared frame's content never changes while it is shared. */
function checkSharedUnchanged(g: TestGuest, digests: Map<number, number>): void {
  const host = g.host!;
  const sharing = host.sharing!;
  for (let mfn = 0; mfn < host.frames.frames; mfn++) {
    if (sharing.isShared[mfn] === 0) {
      digests.delete(mfn);
      continue;
    }
    const digest = host.mem.contentDigest(mfn);
    const before = digests.get(mfn);
    if (before === undefined) digests.set(mfn, digest);
    else expect(digest, `shared mfn ${mfn} changed`).toBe(before);
  }
}

interface Config {
  huge: boolean;
  algorithm: "ksm" | "esx";
  zero: boolean;
  pool: number;
  prefetch: number;
  unshadow: "early" | "flood" | "none";
}

const totals = { merges: 0, cowBreaks: 0 };

function runCase(ops: Op[], cfg: Config): void {
  const shadow = { pool: cfg.pool, prefetch: cfg.prefetch, unshadow: cfg.unshadow };
  const walkCaches = ALL_WALK_CACHES;
  const a = bootGuest(16, {
    mode: "shadow",
    sharing: cfg.algorithm,
    shadow,
    osImage: "linux",
    walkCaches,
  });
  const b = bootGuest(16, { mode: "shadow", host: a.host!, shadow, osImage: "linux", walkCaches });
  const mirrors = [
    bootGuest(16, { osImage: "linux", walkCaches }),
    bootGuest(16, { osImage: "linux", walkCaches }),
  ];
  a.scan(0);
  // KSM's use_zero_pages (the ESX scanner has no such setting and ignores it).
  const scanner = a.host!.scanner;
  if (scanner instanceof KsmScanner) scanner.options.useZeroPages = cfg.zero;
  const sides: Side[] = [a, b].map((g) => ({ g, procs: [], seen: [] }));
  const natives: Side[] = mirrors.map((g) => ({ g, procs: [], seen: [] }));
  for (const s of [...sides, ...natives]) apply(s, { op: "spawn", d: 0 }, cfg.huge);
  const digests = new Map<number, number>();
  let destroyed = false;
  for (const o of ops) {
    if (o.op === "destroy") {
      if (!destroyed) a.host!.destroyDomain(b.vmm!);
      destroyed = true;
    } else if (o.op === "scan") {
      a.scan(o.pages);
    } else if (!(destroyed && o.d === 1)) {
      apply(sides[o.d], o, cfg.huge);
      apply(natives[o.d], o, cfg.huge);
    }
    a.check();
    if (!destroyed) b.check();
    checkSharedUnchanged(a, digests);
  }
  totals.merges += a.host!.counters[C_SHARING_MERGES];
  totals.cowBreaks += a.counters[C_COW_BREAKS] + b.counters[C_COW_BREAKS];
  for (let i = 0; i < (destroyed ? 1 : 2); i++) expect(sides[i].seen).toEqual(natives[i].seen);
}

const configArb: fc.Arbitrary<Config> = fc.record({
  huge: fc.boolean(),
  algorithm: fc.constantFrom("ksm" as const, "esx" as const),
  zero: fc.boolean(),
  pool: fc.constantFrom(0, 8 * 4096, 12 * 4096),
  prefetch: fc.constantFrom(0, 8),
  unshadow: fc.constantFrom("early" as const, "flood" as const, "none" as const),
});

test("two sharing domains see what their native mirrors see, whatever else happens", () => {
  fc.assert(
    fc.property(configArb, fc.array(opArb, { minLength: 5, maxLength: 120 }), (cfg, ops) =>
      runCase(ops, cfg),
    ),
    { numRuns: 80, seed: 1 },
  );
  expect(totals.merges).toBeGreaterThan(0);
  expect(totals.cowBreaks).toBeGreaterThan(0);
});
