/**
 * The benchmarks' yardstick (src/bench/yardstick.ts) is a fair one only if it is the model
 * native-local and native-random measure: on the same stream its L1 hits, L2 hits and misses
 * must be memvisor's, access for access. The stream is the benchmarks' own (fillStream), over
 * the same 2^20 populated pages.
 */

import { describe, expect, it } from "vitest";
import { fillStream, PAGES, populate } from "../src/bench/access.js";
import { benchGuest } from "../src/bench/guest.js";
import { emptyTlb, runChunk, yardstickTables } from "../src/bench/yardstick.js";
import { AccessBuffer } from "../src/hw/access-buffer.js";
import { C_TLB_L1_HITS, C_TLB_L2_HITS, C_TLB_MISSES } from "../src/metrics/counters.js";
import { Rng } from "../src/workload/rng.js";

describe("the yardstick", () => {
  it("hits and misses both TLB levels exactly where memvisor does, on the benchmarks' stream", () => {
    const g = benchGuest("native", 4.5 * 2 ** 30, PAGES, { contents: false });
    populate(g.driver, PAGES);
    // Populating filled the TLB with the last pages touched; the yardstick starts empty.
    g.cpu.flushTlbAll();
    const mem = yardstickTables().words;
    const tlb = emptyTlb();
    const before = [C_TLB_L1_HITS, C_TLB_L2_HITS, C_TLB_MISSES].map((c) => g.counters[c]);
    for (const hotShare of [0.9, 0]) {
      const rng = new Rng(11);
      const a = new AccessBuffer(20_000);
      const b = new AccessBuffer(20_000);
      for (let done = 0; done < 100_000; done += 20_000) {
        fillStream(a, rng, done, 20_000, hotShare);
        b.length = 0;
        for (let i = 0; i < 20_000; i++) b.push(a.gva(i), a.kind[i], a.value[i]);
        runChunk(a, 20_000, tlb, mem);
        expect(g.driver.accessBatch(b, 0, 20_000)).toBe(20_000);
      }
    }
    const after = [C_TLB_L1_HITS, C_TLB_L2_HITS, C_TLB_MISSES].map((c) => g.counters[c]);
    const memvisor = after.map((x, k) => x - before[k]);
    expect(memvisor[2]).toBeGreaterThan(90_000); // the random half misses
    expect(memvisor[1]).toBeGreaterThan(10_000); // the local half hits L2 most
    expect([tlb.l1Hits, tlb.l2Hits, tlb.misses]).toEqual(memvisor);
  });
});
