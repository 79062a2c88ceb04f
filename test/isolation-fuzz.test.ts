import fc from "fast-check";
import { expect, test } from "vitest";
import { userAccess } from "../src/guest/fault.js";
import { directMap, USER_HEAP_BASE } from "../src/guest/layout.js";
import { KIND_USER_WRITE } from "../src/hw/access.js";
import { PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW, PTE_US, pteHi, pteLo } from "../src/hw/pte.js";
import { C_SHADOW_UNSYNC } from "../src/metrics/counters.js";
import { DomainCrash } from "../src/vmm/crash.js";
import { checkBookkeeping, checkIsolation, checkShadowPwc } from "../src/vmm/shadow/check.js";
import { ALL_WALK_CACHES } from "./support/domains.js";
import { bootGuest } from "./support/guest.js";
import { shadowOf } from "./support/modes.js";

/**
 * A hostile guest that writes raw entries into its page tables (pointing anywhere, at other
 * tables, as 2 MiB leaves), accesses random addresses, loads tables as CR3 and flushes, under
 * small and default shadow pools, with every walk cache on: the VMM never throws anything but a
 * crash of that domain, and no translation (a TLB entry, a shadow leaf, a paging-structure cache
 * entry) ever reaches a frame the domain does not own. Its stores to its L1 tables leave them
 * out of sync (the default): a stale shadow never reaches another's frame either.
 */
for (const pool of [8, 12, 0])
  test(`hostile fuzz, shadow pool of ${pool || "default"} pages`, () => {
    let unsyncs = 0;
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            t: fc.nat(5),
            index: fc.nat(511),
            target: fc.nat(5),
            raw: fc.nat(4095),
            flags: fc.constantFrom(
              PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D,
              PTE_P | PTE_US | PTE_A,
              PTE_P | PTE_RW | PTE_US | PTE_A | PTE_PS,
              PTE_P | PTE_RW | PTE_US,
              0,
            ),
            op: fc.nat(9),
            gvaSel: fc.nat(20),
            kind: fc.nat(5),
            cr3: fc.nat(5),
          }),
          { maxLength: 40 },
        ),
        (steps) => {
          const g = bootGuest(16, {
            mode: "shadow",
            shadow: { pool: pool * 4096, unshadow: "flood", prefetch: 2 },
            walkCaches: ALL_WALK_CACHES,
          });
          const k = g.kernel;
          const p = k.spawn("p", { code: 4096, heap: 64 * 4096, hugeHeap: false })!;
          k.switchTo(p);
          for (let i = 0; i < 8; i++)
            userAccess(k, p, USER_HEAP_BASE + i * 4096, KIND_USER_WRITE, i);
          const tabs = [
            p.l4Gfn,
            ...[3, 2, 1].map((l) => k.pt.tableFor(p.l4Gfn, USER_HEAP_BASE, l, false)),
            k.initL4,
            300,
          ];
          try {
            for (const s of steps) {
              const gvas = [
                USER_HEAP_BASE + (s.gvaSel % 8) * 4096,
                s.gvaSel * 2 ** 30 + s.raw * 4096,
                directMap(tabs[s.target]),
                s.gvaSel * 2 ** 39 + s.raw * 2 ** 21,
              ];
              if (s.op < 4) {
                const tgt = s.op === 0 ? s.raw : tabs[s.target];
                g.cpu.store64(
                  directMap(tabs[s.t]) + s.index * 8,
                  pteLo(tgt, s.flags),
                  pteHi(tgt, false),
                );
              } else if (s.op < 8) g.cpu.access(gvas[s.op - 4], s.kind, s.raw);
              else if (s.op === 8) g.cpu.writeCr3(tabs[s.cr3] * 4096, 0, false);
              else g.cpu.invlpg(gvas[s.kind % 4]);
            }
          } catch (e) {
            if (!(e instanceof DomainCrash)) throw e;
            return;
          } finally {
            unsyncs += g.counters[C_SHADOW_UNSYNC];
          }
          expect(checkIsolation(shadowOf(g.vmm), g.cpu, g.host!.frames, g.vmm!.id)).toBeNull();
          expect(checkShadowPwc(shadowOf(g.vmm), g.cpu)).toBeNull();
          expect(checkBookkeeping(shadowOf(g.vmm))).toBeNull();
        },
      ),
      { numRuns: 300, seed: pool + 1 },
    );
    // Eight pages less three snapshots hold one path: every fault reclaims the L1s first.
    if (pool !== 8) expect(unsyncs).toBeGreaterThan(0);
  });
