/**
 * The vCPU's batched entry (Vcpu.accessBatch, through ProcessDriver.accessBatch) against the
 * same accesses made one at a time (ProcessDriver.access): in every paging mode, with demand
 * faults, TLB flushes, large-page-free heaps and stamps near their renumbering, the two must
 * leave the same counters, TLB entries (keys, generations, LRU stamps), memory contents, read
 * hash and vCPU state. Also the page-contents switch (HostMemory.contents).
 */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { populate } from "../src/bench/access.js";
import { benchGuest } from "../src/bench/guest.js";
import { USER_HEAP_BASE } from "../src/guest/layout.js";
import {
  KIND_SUP_FETCH,
  KIND_SUP_READ,
  KIND_SUP_WRITE,
  KIND_USER_FETCH,
  KIND_USER_READ,
  KIND_USER_WRITE,
  MASK_WRITES,
} from "../src/hw/access.js";
import { AccessBuffer } from "../src/hw/access-buffer.js";
import { type Vcpu, WRITE_KINDS } from "../src/hw/cpu.js";
import { foldRead } from "../src/hw/read-hash.js";
import { CLOCK_LIMIT } from "../src/hw/tlb-layout.js";
import {
  C_ACCESSES,
  C_FETCHES,
  C_KERNEL_ACCESSES,
  C_TLB_L2_HITS,
  C_WRITES,
} from "../src/metrics/counters.js";
import { Rng } from "../src/workload/rng.js";

type Mode = "native" | "shadow" | "hap" | "pv";
const HEAP_PAGES = 2048;

/** A stream over a heap that is touched as it goes: hot pages, cold ones, reads and writes. */
function stream(n: number, seed: number): AccessBuffer {
  const rng = new Rng(seed);
  const buf = new AccessBuffer(n);
  for (let i = 0; i < n; i++) {
    const page = rng.nextFloat() < 0.7 ? rng.nextBelow(96) * 7 : rng.nextBelow(HEAP_PAGES);
    const r = rng.nextFloat();
    const kind = r < 0.3 ? KIND_USER_WRITE : KIND_USER_READ;
    buf.push(USER_HEAP_BASE + page * 4096 + ((i * 8) & 4095), kind, Math.imul(i + 1, 0x9e3779b1));
  }
  return buf;
}

function guest(mode: Mode, contents: boolean) {
  return benchGuest(mode, 64 * 2 ** 20, HEAP_PAGES, { contents });
}

/** Everything the two ways must agree on. */
function state(g: ReturnType<typeof guest>) {
  const cpu = g.cpu as Vcpu;
  const levels = cpu.tlb.named().map(([name, l]) => ({
    name,
    keys: Array.from(l.keys),
    d: Array.from(l.d),
    stamps: Array.from(l.stamps),
    clock: l.clock,
    allValid: Array.from(l.allValid),
  }));
  return {
    counters: Array.from(g.counters),
    walkHist: Array.from(cpu.walkHist),
    levels,
    meta: Array.from(cpu.mem.meta),
    materialized: cpu.mem.materializedFrames,
    readValue: cpu.readValue,
    pend: [cpu.op, cpu.pendLo | 0, cpu.pendHi],
    proc: [g.driver.proc.accesses, g.driver.proc.readHash, g.driver.proc.faults],
    last: [g.driver.lastGva, g.driver.lastKind, g.driver.lastFrame],
  };
}

/** Field by field, naming the first difference (the whole states are large). */
function same(got: ReturnType<typeof state>, want: ReturnType<typeof state>): void {
  const flat = (x: unknown, path: string, out: Map<string, unknown>): void => {
    if (Array.isArray(x)) {
      for (let i = 0; i < x.length; i++) flat(x[i], `${path}[${i}]`, out);
    } else if (x !== null && typeof x === "object") {
      for (const [k, v] of Object.entries(x)) flat(v, `${path}.${k}`, out);
    } else out.set(path, x);
  };
  const g = new Map<string, unknown>();
  const w = new Map<string, unknown>();
  flat(got, "", g);
  flat(want, "", w);
  const diffs = [...w]
    .filter(([k, v]) => g.get(k) !== v)
    .map(([k, v]) => `${k}: ${g.get(k)} != ${v}`);
  expect(diffs.slice(0, 8)).toEqual([]);
}

/** Run `buf` one access at a time on a, in batches of `chunk` on b, with `between` after each. */
function runBoth(
  a: ReturnType<typeof guest>,
  b: ReturnType<typeof guest>,
  buf: AccessBuffer,
  chunk: number,
  between: (g: ReturnType<typeof guest>, chunk: number) => void = () => {},
): void {
  // The batch overwrites read slots with the values read: each side gets its own copy.
  const copy = new AccessBuffer(buf.length);
  for (let i = 0; i < buf.length; i++) copy.push(buf.gva(i), buf.kind[i], buf.value[i]);
  for (let start = 0; start < buf.length; start += chunk) {
    const end = Math.min(buf.length, start + chunk);
    for (let i = start; i < end; i++) a.driver.access(buf.gva(i), buf.kind[i], buf.value[i]);
    expect(b.driver.accessBatch(copy, start, end)).toBe(end);
    between(a, start / chunk);
    between(b, start / chunk);
  }
}

describe("accessBatch", () => {
  for (const mode of ["native", "shadow", "hap", "pv"] as const) {
    for (const contents of [true, false]) {
      it(`${mode}, contents ${contents ? "on" : "off"}: the same state as one access at a time`, () => {
        const a = guest(mode, contents);
        const b = guest(mode, contents);
        const buf = stream(30_000, 5);
        // A CR3 reload between chunks flushes the address space: L1 sets stop being all valid.
        runBoth(a, b, buf, 1000, (g, chunk) => {
          if (chunk % 3 === 2 && mode !== "pv") g.cpu.writeCr3(g.cpu.guestCr3, 0, false);
        });
        expect(a.counters[C_ACCESSES]).toBeGreaterThan(30_000);
        expect(a.counters[C_TLB_L2_HITS]).toBeGreaterThan(1000);
        same(state(b), state(a));
      });
    }
  }

  it("an L2 hit into an L1 set left not all valid (INVLPG), after a miss walked in the same batch", () => {
    for (const mode of ["native", "shadow"] as const) {
      const a = guest(mode, false);
      const b = guest(mode, false);
      const buf = stream(20_000, 9);
      // INVLPG of hot pages: their L1 sets stop being all valid while other hot pages of those
      // sets stay in L2; the next chunk's cold pages miss and are walked in the batch before.
      runBoth(a, b, buf, 250, (g, chunk) => {
        for (let k = 0; k < 6; k++) {
          g.cpu.invlpg(USER_HEAP_BASE + ((chunk * 6 + k) % 96) * 7 * 4096);
        }
      });
      expect(a.counters[C_TLB_L2_HITS]).toBeGreaterThan(500);
      same(state(b), state(a));
    }
  });

  it("the same state under any cut into batches and any TLB event between them (fast-check)", () => {
    // An event between two batches: none, INVLPG of a page, a CR3 reload (flushing, or under
    // another PCID without a flush, as a context switch with PCIDs does), a full flush.
    const arbEvent = fc.oneof(
      fc.constant({ kind: "none" as const, page: 0 }),
      fc.record({ kind: fc.constant("invlpg" as const), page: fc.nat(HEAP_PAGES - 1) }),
      fc.record({ kind: fc.constant("cr3" as const), page: fc.nat(3) }),
      fc.constant({ kind: "flush" as const, page: 0 }),
    );
    const arbCut = fc.record({ length: fc.integer({ min: 1, max: 600 }), event: arbEvent });
    for (const mode of ["native", "shadow", "hap"] as const) {
      fc.assert(
        fc.property(
          fc.nat(1000),
          fc.array(arbCut, { minLength: 1, maxLength: 12 }),
          (seed, cuts) => {
            const a = guest(mode, false);
            const b = guest(mode, false);
            const total = cuts.reduce((n, c) => n + c.length, 0);
            const buf = stream(total, seed);
            const copy = new AccessBuffer(total);
            for (let i = 0; i < total; i++) copy.push(buf.gva(i), buf.kind[i], buf.value[i]);
            let start = 0;
            for (const { length, event } of cuts) {
              const end = start + length;
              for (let i = start; i < end; i++)
                a.driver.access(buf.gva(i), buf.kind[i], buf.value[i]);
              expect(b.driver.accessBatch(copy, start, end)).toBe(end);
              for (const g of [a, b]) {
                if (event.kind === "invlpg") g.cpu.invlpg(USER_HEAP_BASE + event.page * 4096);
                else if (event.kind === "cr3") {
                  // PCIDs only natively (the shadow and HAP set-ups here run without them).
                  const pcid = mode === "native" ? event.page & 1 : 0;
                  g.cpu.writeCr3(g.cpu.guestCr3, pcid, mode === "native" && event.page >= 2);
                } else if (event.kind === "flush") g.cpu.flushTlbAll();
              }
              start = end;
            }
            same(state(b), state(a));
          },
        ),
        { numRuns: 12, seed: 16 },
      );
    }
  });

  it("renumbers LRU stamps where one access at a time does", () => {
    const a = guest("native", true);
    const b = guest("native", true);
    runBoth(a, b, stream(3000, 7), 3000);
    for (const g of [a, b]) {
      const tlb = (g.cpu as Vcpu).tlb;
      // Push the clocks to just below the limit, keeping the stamps' order.
      for (const l of [tlb.l1, tlb.l2]) {
        const shift = CLOCK_LIMIT - 40 - l.clock;
        for (let s = 0; s < l.entries; s++) if (l.stamps[s] > 0) l.stamps[s] += shift;
        l.clock += shift;
      }
    }
    runBoth(a, b, stream(5000, 8), 5000);
    const l1 = (a.cpu as Vcpu).tlb.l1;
    expect(l1.clock).toBeLessThan(CLOCK_LIMIT - 40); // renumbered on the way
    same(state(b), state(a));
  });

  it("stops at a fault the guest cannot fix: the process is killed, the index says where", () => {
    const g = guest("native", true);
    const buf = new AccessBuffer(4);
    buf.push(USER_HEAP_BASE, KIND_USER_WRITE, 1);
    buf.push(USER_HEAP_BASE + 8, KIND_USER_READ, 0);
    buf.push(0x1000, KIND_USER_READ, 0); // no VMA there: SIGSEGV
    buf.push(USER_HEAP_BASE + 16, KIND_USER_READ, 0);
    expect(g.driver.accessBatch(buf, 0, 4)).toBe(3);
    expect(g.driver.proc.alive).toBe(false);
    expect(g.driver.proc.accesses).toBe(3);
  });

  it("fetches and kernel accesses count as access() counts them", () => {
    const a = guest("native", true);
    const b = guest("native", true);
    const buf = new AccessBuffer(64);
    // The bench process's code page, fetched again and again after its first fault.
    for (let i = 0; i < 64; i++) buf.push(0x400000 + i * 8, KIND_USER_FETCH, 0);
    runBoth(a, b, buf, 16);
    same(state(b), state(a));
  });
});

describe("Vcpu.accessBatch", () => {
  it("tells writes by the literal WRITE_KINDS, which is MASK_WRITES", () => {
    expect(WRITE_KINDS).toBe(MASK_WRITES);
  });

  it("counts every kind, kernel ones too, over long runs of one kind, as access() does", () => {
    // Straight on the vCPU (a process's batches hold user accesses only). Runs of 3,000 hits of
    // one kind: longer than a span of hitRun's packed counts.
    const a = guest("native", true);
    const b = guest("native", true);
    for (const g of [a, b]) {
      populate(g.driver, 64);
      g.driver.access(0x400000, KIND_USER_FETCH, 0); // the code page, faulted in
    }
    const kinds = [
      KIND_SUP_READ,
      KIND_USER_READ,
      KIND_SUP_WRITE,
      KIND_USER_WRITE,
      KIND_SUP_FETCH,
      KIND_USER_FETCH,
    ];
    const buf = new AccessBuffer(kinds.length * 3000 + 600);
    for (const kind of kinds) {
      // Fetches from the process's code page, data to the heap (NX).
      const fetch = kind === KIND_SUP_FETCH || kind === KIND_USER_FETCH;
      for (let i = 0; i < 3000; i++) {
        const gva = fetch ? 0x400000 + ((i * 8) & 4095) : USER_HEAP_BASE + (i % 4) * 4096;
        buf.push(gva, kind, i + 1);
      }
    }
    const rng = new Rng(3);
    for (let i = 0; i < 600; i++) {
      const kind = kinds[rng.nextBelow(4)];
      buf.push(USER_HEAP_BASE + rng.nextBelow(64) * 4096, kind, i);
    }
    const cpuA = a.cpu as Vcpu;
    const cpuB = b.cpu as Vcpu;
    let hash = 0;
    for (let i = 0; i < buf.length; i++) {
      expect(cpuA.access(buf.gva(i), buf.kind[i], buf.value[i])).toBeGreaterThanOrEqual(0);
      if (buf.kind[i] !== KIND_SUP_WRITE && buf.kind[i] !== KIND_USER_WRITE) {
        hash = foldRead(hash, cpuA.readValue);
      }
    }
    cpuB.batchReadHash = 0;
    expect(cpuB.accessBatch(buf, 0, buf.length)).toBe(buf.length);
    expect(cpuB.batchReadHash).toBe(hash);
    same(state(b), state(a));
    expect(b.counters[C_KERNEL_ACCESSES]).toBe(a.counters[C_KERNEL_ACCESSES]);
    expect(b.counters[C_FETCHES]).toBe(a.counters[C_FETCHES]);
  });
});

describe("the page-contents switch", () => {
  it("off: data writes leave memory alone and reads return 0; on: reads see the writes", () => {
    for (const contents of [true, false]) {
      const g = guest("native", contents);
      const buf = new AccessBuffer(2);
      buf.push(USER_HEAP_BASE + 64, KIND_USER_WRITE, 1234);
      buf.push(USER_HEAP_BASE + 64, KIND_USER_READ, 0);
      const before = Array.from(g.cpu.mem.meta);
      expect(g.driver.accessBatch(buf, 0, 2)).toBe(2);
      const frame = g.driver.lastFrame;
      expect(g.counters[C_WRITES]).toBeGreaterThan(0);
      if (contents) {
        expect(g.cpu.mem.meta[2 * frame + 1]).not.toBe(before[2 * frame + 1]);
        expect(buf.value[1]).not.toBe(0);
      } else {
        expect(g.cpu.mem.meta[2 * frame + 1]).toBe(0); // a fresh zeroed page, still zero
        expect(buf.value[1]).toBe(0);
        expect(g.cpu.readValue).toBe(0);
      }
    }
  });
});
