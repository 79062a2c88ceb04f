/**
 * Isolation, the security property of a hypervisor: a hostile guest that writes anything into
 * its page tables never reaches a frame it does not own. What it gets is a fault, or a crash of
 * its own domain; the other domain's data stays intact, and every invariant holds throughout.
 */

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { userAccess } from "../src/guest/fault.js";
import { Kernel } from "../src/guest/kernel.js";
import { directMap, USER_HEAP_BASE } from "../src/guest/layout.js";
import { NativePagingOps } from "../src/guest/paging-ops.js";
import type { Process } from "../src/guest/process.js";
import { KIND_SUP_WRITE, KIND_USER_READ, KIND_USER_WRITE } from "../src/hw/access.js";
import { PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US, pteHi, pteLo } from "../src/hw/pte.js";
import { COUNTER_NAMES, newCounters } from "../src/metrics/counters.js";
import { DomainCrash } from "../src/vmm/crash.js";
import { OWNER_DOMAIN } from "../src/vmm/frames.js";
import { checkHostFrames } from "../src/vmm/frames-check.js";
import { Host, type VmmDomain } from "../src/vmm/host.js";
import { checkIsolation, checkShadow, checkShadowPwc } from "../src/vmm/shadow/check.js";
import { ALL_WALK_CACHES, shadowSpec, TEST_HARDWARE } from "./support/domains.js";
import { evilAccess, evilWrite } from "./support/hostile.js";
import { shadowOf } from "./support/modes.js";

const HW = { ...TEST_HARDWARE, walkCaches: ALL_WALK_CACHES };
const spec = (name: string) => shadowSpec(name);
const image = { code: 4096, heap: 64 * 4096, hugeHeap: false };
const SECRET = 0x5ec2e7;

interface Dom {
  vmm: VmmDomain;
  kernel: Kernel;
  proc: Process;
  counters: Float64Array;
}

function boot(host: Host, name: string): Dom {
  const counters = newCounters();
  const vmm = host.createDomain(spec(name), HW, counters);
  const kernel = new Kernel(vmm.cpu, new NativePagingOps(vmm.cpu), 4096, counters, {
    gigaPages: false,
    pcid: false,
  });
  kernel.boot();
  const proc = kernel.spawn(name, image)!;
  kernel.switchTo(proc);
  return { vmm, kernel, proc, counters };
}

function twoDomains() {
  const host = new Host((64 * 2 ** 20) / 4096);
  host.mem.exactData = true;
  const evil = boot(host, "evil");
  const victim = boot(host, "victim");
  for (let i = 0; i < 32; i++)
    userAccess(victim.kernel, victim.proc, USER_HEAP_BASE + i * 4096, KIND_USER_WRITE, SECRET + i);
  for (let i = 0; i < 8; i++)
    userAccess(evil.kernel, evil.proc, USER_HEAP_BASE + i * 4096, KIND_USER_WRITE, i);
  return { host, evil, victim };
}

/**
 * Isolation for the hostile domain (its tables may disagree with a TLB it never flushed, as on
 * real hardware), every invariant for the victim, and the victim's data unchanged.
 */
function assertIsolated(host: Host, evil: Dom, victim: Dom, evilCrashed: boolean): void {
  if (!evilCrashed) {
    expect(checkIsolation(shadowOf(evil.vmm), evil.vmm.cpu, host.frames, evil.vmm.id)).toBeNull();
    expect(checkShadowPwc(shadowOf(evil.vmm), evil.vmm.cpu)).toBeNull();
  }
  expect(checkShadow(shadowOf(victim.vmm), victim.vmm.cpu, host.frames, victim.vmm.id)).toBeNull();
  expect(checkHostFrames(host.frames)).toBeNull();
  for (let i = 0; i < 32; i++) {
    expect(
      userAccess(victim.kernel, victim.proc, USER_HEAP_BASE + i * 4096, KIND_USER_READ, 0),
    ).toBeGreaterThanOrEqual(0);
    expect(victim.vmm.cpu.readValue).toBe(SECRET + i);
  }
}

/** The evil guest stores a raw 64-bit value into one of its page tables (through its CPU). */
function poke(d: Dom, tableGfn: number, index: number, lo: number, hi: number): void {
  d.vmm.cpu.store64(directMap(tableGfn) + index * 8, lo >>> 0, hi >>> 0);
}

describe("a hostile guest cannot reach another domain's memory", () => {
  test("random values in its page tables, then random accesses (fast-check)", () => {
    fc.assert(
      fc.property(
        fc.array(evilWrite, { maxLength: 12 }),
        fc.array(evilAccess, { maxLength: 24 }),
        (writes, accesses) => {
          const { host, evil, victim } = twoDomains();
          let crashed = false;
          const tables = [1, 2, 3, 4].map((l) =>
            l === 4
              ? evil.proc.l4Gfn
              : evil.kernel.pt.tableFor(evil.proc.l4Gfn, USER_HEAP_BASE, l, false),
          );
          try {
            for (const w of writes) poke(evil, tables[w.level - 1], w.index, w.lo, w.hi);
            for (const a of accesses) evil.vmm.cpu.access(a.page * 4096, a.kind, 0xbad);
          } catch (e) {
            if (!(e instanceof DomainCrash)) throw e;
            crashed = true;
          }
          assertIsolated(host, evil, victim, crashed);
        },
      ),
      { numRuns: 150, seed: 99 },
    );
  });

  test("a frame number beyond its memory crashes that domain alone, counted", () => {
    const { host, evil, victim } = twoDomains();
    const l1 = evil.kernel.pt.tableFor(evil.proc.l4Gfn, USER_HEAP_BASE, 1, false);
    poke(
      evil,
      l1,
      100,
      pteLo(50_000, PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D),
      pteHi(50_000, false),
    );
    expect(() => evil.vmm.cpu.access(USER_HEAP_BASE + 100 * 4096, KIND_USER_READ, 0)).toThrow(
      DomainCrash,
    );
    assertIsolated(host, evil, victim, true);
  });

  test("a victim's machine frame number, written as if it were a gfn, maps the guest's own memory", () => {
    const { host, evil, victim } = twoDomains();
    const victimFrames: number[] = [];
    for (let mfn = 0; mfn < host.frames.frames && victimFrames.length < 40; mfn++) {
      if (host.frames.owner[mfn] === OWNER_DOMAIN && host.frames.domainOf(mfn) === victim.vmm.id) {
        victimFrames.push(mfn);
      }
    }
    const l1 = evil.kernel.pt.tableFor(evil.proc.l4Gfn, USER_HEAP_BASE, 1, false);
    for (const frame of victimFrames) {
      poke(evil, l1, 200, pteLo(frame, PTE_P | PTE_US | PTE_A), pteHi(frame, false));
      evil.vmm.cpu.invlpg(USER_HEAP_BASE + 200 * 4096);
      try {
        const mfn = evil.vmm.cpu.access(USER_HEAP_BASE + 200 * 4096, KIND_USER_READ, 0);
        if (mfn >= 0) expect(host.frames.domainOf(mfn)).toBe(evil.vmm.id);
        expect(evil.vmm.cpu.readValue & ~31).not.toBe(SECRET & ~31);
      } catch (e) {
        if (!(e instanceof DomainCrash)) throw e;
      }
    }
    assertIsolated(host, evil, victim, true);
  });

  test("its own page table mapped writable is still write-protected: writes are emulated", () => {
    const { host, evil, victim } = twoDomains();
    const l1 = evil.kernel.pt.tableFor(evil.proc.l4Gfn, USER_HEAP_BASE, 1, false);
    // A user mapping of the page table itself, writable.
    poke(evil, l1, 300, pteLo(l1, PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D), pteHi(l1, false));
    const alias = USER_HEAP_BASE + 300 * 4096;
    const emulated = evil.counters[COUNTER_NAMES.indexOf("shadow_emulate_write")];
    // Through the alias, try to point an entry at a frame outside its memory, then use it.
    evil.vmm.cpu.access(
      alias + 301 * 8,
      KIND_USER_WRITE,
      pteLo(60_000, PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D),
    );
    expect(evil.counters[COUNTER_NAMES.indexOf("shadow_emulate_write")]).toBe(emulated + 1);
    expect(() => evil.vmm.cpu.access(USER_HEAP_BASE + 301 * 4096, KIND_USER_READ, 0)).toThrow(
      DomainCrash,
    );
    expect(KIND_SUP_WRITE).toBe(1);
    assertIsolated(host, evil, victim, true);
  });
});
