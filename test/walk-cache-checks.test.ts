/**
 * The checks of what the walk caches hold (api/check.ts through each mode): a stale
 * paging-structure cache entry, EPT cache entry or nested TLB entry is a violation even when
 * every TLB entry and every table is right, since the next walk would start from it.
 */

import { describe, expect, test } from "vitest";
import { USER_HEAP_BASE } from "../src/guest/layout.js";
import { EPT_R, EPT_RWX } from "../src/hw/ept.js";
import type { PrefixCache } from "../src/hw/pwc.js";
import { SH_L2 } from "../src/vmm/shadow/page.js";
import { ALL_WALK_CACHES } from "./support/domains.js";
import { bootGuest, type TestGuest } from "./support/guest.js";
import { shadowOf } from "./support/modes.js";

/** A guest with every walk cache on whose process has written 8 heap pages. */
function warmGuest(mode: "shadow" | "hap" | "pv", host?: TestGuest["host"]) {
  const g = bootGuest(16, { mode, walkCaches: ALL_WALK_CACHES, host: host ?? undefined });
  const proc = g.kernel.spawn("p", { code: 4096, heap: 64 * 4096, hugeHeap: false });
  if (proc === null) throw new Error("spawn");
  for (let i = 0; i < 8; i++) expect(g.write(proc, USER_HEAP_BASE + i * 4096, i + 1)).toBe(true);
  return { g, proc };
}

/** The frames the level-2 entries of a paging-structure cache name, for the current tag. */
function cachedL1Tables(g: TestGuest, caches: PrefixCache[]): number[] {
  const out: number[] = [];
  caches[2].forEachEntry((tag, gen, _key, frame) => {
    if (tag === g.cpu.tag && gen === g.cpu.tlb.tagGens[tag]) out.push(frame);
    return null;
  });
  return out;
}

describe("a stale walk-cache entry is a violation", () => {
  test("shadow: an l1 shadow freed without a flush and reused as an l2 shadow", () => {
    const { g } = warmGuest("shadow");
    g.check();
    const sh = shadowOf(g.vmm);
    const pwc = g.cpu.pwc as PrefixCache[];
    const [l1Mfn] = cachedL1Tables(g, pwc);
    expect(l1Mfn).toBeDefined();
    const sp = sh.tables.byMfn.get(l1Mfn);
    expect(sp?.level).toBe(1);
    // What a VMM with a missing flush does: free the shadow, then reuse its frame at level 2,
    // where the guest's next walk through the cached L2 entry would read it as an L1 table.
    sh.tables.destroy(sp!);
    expect(() => g.check()).toThrow(/paging-structure cache L2 .* not a shadow of the domain/);
    const reused = sh.tables.create(4000, SH_L2);
    expect(reused.mfn).toBe(l1Mfn);
    expect(() => g.check()).toThrow(/paging-structure cache L2 .* a level-2 shadow, not level 1/);
  });

  test("shadow: an entry of the running address space that names another l1 shadow", () => {
    const { g, proc } = warmGuest("shadow");
    // A second process's heap gets an l1 shadow of its own; then back to the first.
    const second = g.kernel.spawn("q", { code: 4096, heap: 64 * 4096, hugeHeap: false });
    expect(g.write(second!, USER_HEAP_BASE, 1)).toBe(true);
    expect(g.write(proc, USER_HEAP_BASE, 1)).toBe(true);
    const pwc = g.cpu.pwc as PrefixCache[];
    const other = [...shadowOf(g.vmm).tables.pages()].find(
      (sp) => sp.level === 1 && !cachedL1Tables(g, pwc).includes(sp.mfn),
    );
    expect(other).toBeDefined();
    const tag = g.cpu.tag;
    pwc[2].fill(tag, g.cpu.tlb.tagGens[tag], USER_HEAP_BASE / 2 ** 21, other!.mfn, -1, 0);
    expect(() => g.check()).toThrow(/paging-structure cache L2 .* the tables no longer link it/);
  });

  test("PV: an entry that names a data frame instead of a validated L1 table", () => {
    const { g } = warmGuest("pv");
    g.check();
    const pwc = g.cpu.pwc as PrefixCache[];
    const data = g.gfnToMfn(g.kernel.processes[0].l4Gfn + 1000);
    const tag = g.cpu.tag;
    pwc[2].fill(tag, g.cpu.tlb.tagGens[tag], 12345, data >= 0 ? data : 1, -1, 0);
    expect(() => g.check()).toThrow(
      /paging-structure cache L2 .* not an l1 table|not the domain's/,
    );
  });

  test("HAP: a nested TLB entry onto another domain's frame", () => {
    const { g: victim } = warmGuest("hap");
    const { g } = warmGuest("hap", victim.host);
    g.check();
    const nested = g.cpu.nested!;
    const victimMfn = victim.gfnToMfn(victim.kernel.processes[0].l4Gfn);
    nested.ntlb!.fill(0, 0, 3, victimMfn, EPT_R, 1);
    expect(() => g.check()).toThrow(/nested TLB slot .* maps mfn .*, not|domain/);
  });

  test("HAP: a nested TLB entry the EPT no longer agrees with", () => {
    const { g } = warmGuest("hap");
    const ntlb = g.cpu.nested!.ntlb!;
    const entries: [number, number][] = [];
    ntlb.forEachEntry((_tag, _gen, gfn, frame) => {
      entries.push([gfn, frame]);
      return null;
    });
    const [gfn, mfn] = entries[0];
    const other = entries.find(([, frame]) => frame !== mfn);
    expect(other).toBeDefined();
    // Another of the domain's own frames: no isolation problem, but not what the EPT maps.
    ntlb.fill(0, 0, gfn, other![1], EPT_R, 1);
    expect(() => g.check()).toThrow(/nested TLB slot .* the EPT maps gfn/);
  });

  test("HAP: an EPT cache entry that names a guest frame as an EPT table", () => {
    const { g } = warmGuest("hap");
    const eptPwc = g.cpu.nested!.eptPwc!;
    eptPwc[2].fill(0, 0, 0, g.gfnToMfn(g.kernel.processes[0].l4Gfn), EPT_RWX, 0);
    expect(() => g.check()).toThrow(/EPT paging-structure cache L2 .* not an EPT table/);
  });

  test("HAP: a combined entry of the running address space that names the wrong guest table", () => {
    const { g } = warmGuest("hap");
    const pwc = g.cpu.nested!.pwc!;
    const tag = g.cpu.tag;
    const l4Mfn = g.gfnToMfn(g.kernel.processes[0].l4Gfn);
    pwc[2].fill(tag, g.cpu.tlb.tagGens[tag], USER_HEAP_BASE / 2 ** 21, l4Mfn, -1, EPT_RWX);
    expect(() => g.check()).toThrow(/paging-structure cache L2 .* the tables no longer link it/);
  });
});
