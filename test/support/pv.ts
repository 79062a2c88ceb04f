/** A hostile PV guest for tests: two PV domains on one host, and probes of their tables. */

import { expect } from "vitest";
import type { WalkCacheSpec } from "../../src/api/types.js";
import { USER_HEAP_BASE } from "../../src/guest/layout.js";
import { MmuBatch } from "../../src/hw/hypercall.js";
import { PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US, pteFrame } from "../../src/hw/pte.js";
import { C_PV_HYPERCALL_ERRORS } from "../../src/metrics/counters.js";
import { checkHostFrames } from "../../src/vmm/frames-check.js";
import { Host } from "../../src/vmm/host.js";
import { checkPvIsolation, checkPvTables } from "../../src/vmm/pv/check.js";
import type { PvPaging } from "../../src/vmm/pv/pv.js";
import { bootGuest, type TestGuest } from "./guest.js";
import { pvOf as pvPaging } from "./modes.js";

export const LEAF = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;

/** Two PV domains on one host: the attacker (with a process whose heap is touched) and a victim. */
/** Two PV guests on one host, the attacker's heap touched; `walkCaches` for both. */
export function setup(walkCaches?: WalkCacheSpec) {
  const host = new Host(((16 * 2 + 16) * 2 ** 20) / 4096);
  const g = bootGuest(16, { mode: "pv", host, walkCaches });
  const victim = bootGuest(16, { mode: "pv", host, walkCaches });
  const proc = g.kernel.spawn("attacker", { code: 4096, heap: 64 * 4096, hugeHeap: false });
  if (proc === null) throw new Error("spawn");
  for (let p = 0; p < 8; p++) expect(g.write(proc, USER_HEAP_BASE + p * 4096, p + 1)).toBe(true);
  const vproc = victim.kernel.spawn("victim", { code: 4096, heap: 8 * 4096, hugeHeap: false });
  if (vproc === null) throw new Error("spawn");
  expect(victim.write(vproc, USER_HEAP_BASE, 0x5ec7e7)).toBe(true);
  g.kernel.switchTo(proc);
  return { host, g, victim, proc, vproc, pv: pvOf(g) };
}

export function pvOf(g: TestGuest): PvPaging {
  return pvPaging(g.vmm);
}

/**
 * Only the VMM's invariants: a hostile guest's kernel bookkeeping is its own business, and so
 * is a TLB entry it left stale by changing an entry without a flush (Xen flushes only what
 * safety needs); isolation must hold all the same.
 */
export function vmmCheck(g: TestGuest, pv: PvPaging): void {
  const host = g.host as Host;
  const err = checkPvIsolation(pv, g.cpu) ?? checkPvTables(pv) ?? checkHostFrames(host.frames);
  if (err !== null) throw new Error(err);
}

/** The mfn of the L1 table that maps the heap's first page, and of its L2, L3, L4. */
export function heapTables(g: TestGuest, pv: PvPaging) {
  const mem = g.mem;
  const path: number[] = [pv.baseMfn];
  let table = pv.baseMfn;
  for (let level = 4; level > 1; level--) {
    mem.read64(table, Math.floor(USER_HEAP_BASE / 2 ** (12 + 9 * (level - 1))) % 512);
    table = pteFrame(mem.lo, mem.hi);
    path.push(table);
  }
  return { l4: path[0], l3: path[1], l2: path[2], l1: path[3] };
}

export function update(g: TestGuest, table: number, index: number, lo: number, hi: number): number {
  const b = new MmuBatch(1);
  b.push(table, index, lo, hi);
  return g.cpu.mmuUpdate(b, 1);
}

/** Expect `run` to be refused with -errno, counted, and the entry left as it was. */
export function refused(
  g: TestGuest,
  pv: PvPaging,
  errno: number,
  table: number,
  index: number,
  run: () => number,
) {
  g.mem.read64(table, index);
  const before = [g.mem.lo, g.mem.hi];
  const errors = g.counters[C_PV_HYPERCALL_ERRORS];
  expect(run()).toBe(-errno);
  expect(g.counters[C_PV_HYPERCALL_ERRORS]).toBe(errors + 1);
  g.mem.read64(table, index);
  expect([g.mem.lo, g.mem.hi]).toEqual(before);
  vmmCheck(g, pv);
}

export function entry(g: TestGuest, table: number, index: number): [number, number] {
  g.mem.read64(table, index);
  return [g.mem.lo, g.mem.hi];
}
