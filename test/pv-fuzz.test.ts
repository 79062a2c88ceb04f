/**
 * PV validation against a hostile guest, random sequences (fast-check): hypercalls, stores into
 * its tables, pins, base pointers, balloon operations and accesses with entries naming every
 * kind of frame. Entries naming frames the domain does not own are refused every time with
 * their errno, counted, and after every step no translation reaches such a frame.
 */

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { directMap, USER_HEAP_BASE } from "../src/guest/layout.js";
import {
  KIND_SUP_READ,
  KIND_SUP_WRITE,
  KIND_USER_READ,
  KIND_USER_WRITE,
} from "../src/hw/access.js";
import {
  EINVAL,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_UNPIN_TABLE,
  UVMF_INVLPG,
} from "../src/hw/hypercall.js";
import { PTE_A, PTE_P, PTE_PS, PTE_RW, PTE_US, pteHi, pteLo } from "../src/hw/pte.js";
import { C_PV_HYPERCALL_ERRORS, COUNTER_NAMES } from "../src/metrics/counters.js";
import { OWNER_FREE } from "../src/vmm/frames.js";
import { ALL_WALK_CACHES } from "./support/domains.js";
import { setup, update, vmmCheck } from "./support/pv.js";

/** Counters that show a hostile run did something (added up over the runs). */
const STATS = [
  "num_page_updates",
  "pv_page_validations",
  "pv_validation_failures",
  "ptwr_emulations",
  "need_flush_tlb_flush",
  "balloon_inflated_pages",
] as const;

/** Where a hostile entry points. */
const TARGETS = ["own", "table", "foreign", "beyond", "vmm", "free"] as const;

const hostileOp = fc.oneof(
  fc.record({
    call: fc.constantFrom("mmu" as const, "uva" as const, "ptwr" as const),
    table: fc.nat(10_000),
    index: fc.nat(511),
    target: fc.constantFrom(...TARGETS),
    pick: fc.nat(100_000),
    rw: fc.boolean(),
    ps: fc.boolean(),
    present: fc.boolean(),
  }),
  fc.record({
    call: fc.constantFrom("pin" as const, "unpin" as const, "base" as const),
    level: fc.integer({ min: 1, max: 4 }),
    target: fc.constantFrom(...TARGETS),
    pick: fc.nat(100_000),
  }),
  fc.record({
    call: fc.constantFrom("balloon" as const, "populate" as const),
    gfn: fc.nat(4095),
  }),
  fc.record({
    call: fc.constant("access" as const),
    page: fc.nat(70),
    write: fc.boolean(),
    kernel: fc.boolean(),
  }),
);

describe("hostile PV sequences (fast-check): isolation holds after every step", () => {
  test("random hypercalls, stores and accesses", () => {
    let refusedForeign = 0;
    const stats = new Map<string, number>();
    fc.assert(
      fc.property(fc.array(hostileOp, { minLength: 1, maxLength: 40 }), (ops) => {
        const { host, g, victim, pv } = setup(ALL_WALK_CACHES);
        const p2m = g.vmm?.p2m;
        if (!p2m) throw new Error("no p2m");
        const tables = () => {
          const out: number[] = [];
          for (let gfn = 0; gfn < p2m.gfns; gfn++) {
            const mfn = p2m.mfn[gfn];
            if (mfn >= 0 && pv.mm.isTable(mfn)) out.push(mfn);
          }
          return out;
        };
        const resolve = (target: (typeof TARGETS)[number], pick: number): number => {
          switch (target) {
            case "own":
              return Math.max(0, p2m.mfn[pick % p2m.gfns]);
            case "table": {
              const t = tables();
              return t[pick % t.length];
            }
            case "foreign":
              return Math.max(0, victim.gfnToMfn(pick % 4096));
            case "beyond":
              return host.frames.frames + (pick % 1000);
            case "vmm":
              return p2m.tablePages[pick % p2m.tablePages.length];
            case "free": {
              let m = pick % host.frames.frames;
              while (host.frames.owner[m] !== OWNER_FREE) m = (m + 1) % host.frames.frames;
              return m;
            }
          }
        };
        for (const op of ops) {
          const errors = g.counters[C_PV_HYPERCALL_ERRORS];
          switch (op.call) {
            case "mmu":
            case "uva":
            case "ptwr": {
              const mfn = resolve(op.target, op.pick);
              let flags = PTE_US | PTE_A;
              if (op.present) flags |= PTE_P;
              if (op.rw) flags |= PTE_RW;
              if (op.ps) flags |= PTE_PS;
              const lo = pteLo(mfn, flags);
              const hi = pteHi(mfn, false);
              const t = tables();
              const table = t[op.table % t.length];
              const bad = op.present && op.target !== "own" && op.target !== "table";
              if (op.call === "mmu") {
                const rc = update(g, table, op.index, lo, hi);
                if (bad) {
                  expect(rc).toBeLessThan(0);
                  expect(g.counters[C_PV_HYPERCALL_ERRORS]).toBe(errors + 1);
                  refusedForeign++;
                }
              } else if (op.call === "uva") {
                const gva = USER_HEAP_BASE + (op.index % 70) * 4096;
                const rc = g.cpu.updateVaMapping(gva, lo, hi, UVMF_INVLPG);
                if (bad) expect(rc).toBeLessThan(0);
              } else {
                const gfn = host.frames.gfnOf(table);
                // The store may fault (refused, or an L2..L4 table): either way nothing leaks.
                g.cpu.store64(directMap(gfn) + op.index * 8, lo, hi);
              }
              break;
            }
            case "pin":
            case "unpin":
            case "base": {
              const mfn = resolve(op.target, op.pick);
              const cmd =
                op.call === "pin"
                  ? MMUEXT_PIN_L1_TABLE + op.level - 1
                  : op.call === "unpin"
                    ? MMUEXT_UNPIN_TABLE
                    : MMUEXT_NEW_BASEPTR;
              const rc = g.cpu.mmuextOp(cmd, mfn, 0);
              if (op.target !== "own" && op.target !== "table") {
                expect(rc).toBe(-EINVAL);
                expect(g.counters[C_PV_HYPERCALL_ERRORS]).toBe(errors + 1);
              }
              break;
            }
            case "balloon":
              // As Linux's balloon: unmap from the direct map first (refused if it is a table
              // or mapped elsewhere); a frame the VMM takes must then be unreachable.
              g.cpu.updateVaMapping(directMap(op.gfn), 0, 0, UVMF_INVLPG);
              g.cpu.memoryOp(1, Int32Array.of(op.gfn), 1);
              break;
            case "populate":
              g.cpu.memoryOp(6, Int32Array.of(op.gfn), 1);
              break;
            case "access": {
              const gva = op.kernel ? directMap(op.page * 50) : USER_HEAP_BASE + op.page * 4096;
              const kind = op.kernel
                ? op.write
                  ? KIND_SUP_WRITE
                  : KIND_SUP_READ
                : op.write
                  ? KIND_USER_WRITE
                  : KIND_USER_READ;
              g.cpu.access(gva, kind, 1);
              break;
            }
          }
          vmmCheck(g, pv);
        }
        for (const name of STATS) {
          const i = COUNTER_NAMES.indexOf(name);
          stats.set(name, (stats.get(name) ?? 0) + g.counters[i]);
        }
        // The victim never sees the attacker's writes.
        expect(victim.read(victim.kernel.processes[0], USER_HEAP_BASE)).toBe(0x5ec7e7);
      }),
      { numRuns: 100, seed: 31 },
    );
    expect(refusedForeign).toBeGreaterThan(0);
    // The sequences did more than fail: tables were validated and torn down, pages ballooned.
    for (const name of STATS) expect(stats.get(name), name).toBeGreaterThan(0);
  });
});
