/**
 * Upper-level shadow entries (the shadows of PML4Es, PDPTEs and PDEs) when the guest changes its
 * upper entries: their rights (RW, US, NX), their A bit, their P bit or the table they point at.
 * Natively the next walk after the guest's TLB flush sees the new entry; under shadow paging the
 * shadow's copy must follow, or the hardware keeps walking the old rights or the old table.
 *
 * Two mechanisms could make it follow: the revalidation of an emulated write to a shadowed
 * guest table (emulate.ts's validate, Xen's sh_validate_guest_entry), and the fault handler's
 * re-propagation of an upper entry it finds present and pointing at the right shadow
 * (fault.ts, "Always propagate"). Xen's fault path never rewrites a present sl4e or sl3e
 * (shadow_get_and_create_l3e / _l2e follow them as they are) and redoes a present sl2e only for
 * a demand write through a superpage's read-only sl2e, to pick up its D bit (here the FL1's type
 * follows D instead, page.ts). Revalidation alone suffices because upper tables never go out of
 * sync and the VMM's guest walk only sets A where the shadow entry is absent (an entry without A
 * has none) and D, which upper shadow entries do not copy. So the invariant checked below holds
 * at every #PF exit: each present upper shadow entry that points at the shadow of the table the
 * guest entry names is that guest entry propagated. The fault handler's re-propagation of such
 * an entry therefore never changes it; these tests guard the invariant and the guest-visible
 * outcome (the same faults, error codes, frames and tables as native paging), so that a change
 * that lets upper entries go stale fails here.
 *
 * The rights tests and the isolation test at the end found a hole in ShadowTables.setEntry (a
 * present L2..L4 shadow entry rewritten with other rights, same child: the child lost its only
 * parent reference and was freed while still linked, and the guest then walked another shadow as
 * its table). setEntry now takes the new reference before dropping the old; with the old order
 * they fail.
 */

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import type { ShadowSpec } from "../src/api/types.js";
import { userAccess } from "../src/guest/fault.js";
import { directMap, USER_CODE_BASE, USER_HEAP_BASE, USER_STACK_TOP } from "../src/guest/layout.js";
import type { Process } from "../src/guest/process.js";
import {
  KIND_SUP_READ,
  KIND_SUP_WRITE,
  KIND_USER_FETCH,
  KIND_USER_READ,
  KIND_USER_WRITE,
} from "../src/hw/access.js";
import { tableIndex } from "../src/hw/addr.js";
import {
  isLarge,
  isPresent,
  PFEC_P,
  PFEC_U,
  PFEC_W,
  PTE_A,
  PTE_HI_NX,
  PTE_P,
  PTE_RW,
  PTE_US,
  pteFrame,
  pteHi,
  pteLo,
} from "../src/hw/pte.js";
import { XLATE_EMULATED, XLATE_FAULT } from "../src/hw/vcpu-interfaces.js";
import { OWNER_DOMAIN } from "../src/vmm/frames.js";
import { checkHostFrames } from "../src/vmm/frames-check.js";
import { checkIsolation } from "../src/vmm/shadow/check.js";
import { fl1TypeFor, shadowTypeForLevel } from "../src/vmm/shadow/page.js";
import { propagateTable, Spte } from "../src/vmm/shadow/propagate.js";
import type { ShadowPaging } from "../src/vmm/shadow/shadow.js";
import { bootGuest, type TestGuest } from "./support/guest.js";
import { shadowOf } from "./support/modes.js";

/**
 * The invariant that makes the fault handler's upper re-propagation a no-op: every present
 * shadow entry of an L2..L4 shadow points at the shadow of the table (or FL1 of the 2 MiB page)
 * its guest entry names, and equals that guest entry propagated (propagate.ts). Read from
 * memory only: no counter, A/D bit or TLB entry changes. The first violation, or null.
 */
function upperShadowProblem(sh: ShadowPaging): string | null {
  const expected = new Spte();
  const mem = sh.mem;
  for (const sp of sh.tables.pages()) {
    if (sp.level < 2) continue;
    const guestMfn = sh.p2m.lookup(sp.gfn);
    if (guestMfn < 0) return `level-${sp.level} shadow of gfn ${sp.gfn}: the gfn has no frame`;
    for (let i = 0; i < 512; i++) {
      mem.read64(sp.mfn, i);
      const slo = mem.lo;
      const shi = mem.hi;
      if (!isPresent(slo)) continue;
      mem.read64(guestMfn, i);
      const glo = mem.lo;
      const ghi = mem.hi;
      const where = `level-${sp.level} shadow of gfn ${sp.gfn}, entry ${i}`;
      const child = sh.tables.pageAt(pteFrame(slo, shi));
      if (child === null) return `${where} points at mfn ${pteFrame(slo, shi)}, not a shadow`;
      if (!isPresent(glo)) return `${where} is present, the guest entry is not`;
      if (child.gfn !== pteFrame(glo, ghi)) {
        return `${where} points at the shadow of gfn ${child.gfn}, the guest entry at gfn ${pteFrame(glo, ghi)}`;
      }
      const type =
        sp.level === 2 && isLarge(glo) ? fl1TypeFor(glo) : shadowTypeForLevel(sp.level - 1);
      if (child.type !== type) return `${where} points at a type-${child.type} shadow, not ${type}`;
      propagateTable(expected, glo, ghi, sp.level, child.mfn, sh.cpu.ctl);
      if (((expected.lo ^ slo) | (expected.hi ^ shi)) !== 0) {
        const hex = (hi: number, lo: number) =>
          `${(hi >>> 0).toString(16)}:${(lo >>> 0).toString(16).padStart(8, "0")}`;
        return `${where} is ${hex(shi, slo)}, the guest entry ${hex(ghi, glo)} propagates to ${hex(expected.hi, expected.lo)}`;
      }
    }
  }
  return null;
}

/** The gvas the tests use: each on its own path through the tables. */
const HEAP0 = USER_HEAP_BASE; // heap page 0
const HEAP1 = USER_HEAP_BASE + 4096; // heap page 1: same L1 table
const HEAP2M = USER_HEAP_BASE + 2 ** 21; // heap page 512: another L1 table, same L2 table
const CODE = USER_CODE_BASE; // another PDE of the same L2 table
const STACK = USER_STACK_TOP - 4096; // another PML4E
const BASES = [HEAP0, HEAP1, HEAP2M, CODE, STACK] as const;

/** Span of one entry at each level (index 0 and 1 unused for upper levels). */
const SPAN = [0, 4096, 2 ** 21, 2 ** 30, 2 ** 39];

/**
 * The gva that goes through x's entries at levels >= level and y's below: after x's entry at
 * `level` is made to point at y's table one level down, it reaches what y reaches.
 */
function splice(x: number, y: number, level: number): number {
  const above = Math.floor(x / SPAN[level]) * SPAN[level];
  return above + (y % SPAN[level]);
}

/** Every gva an access may use: the bases and each splice of two of them. */
const GVAS: number[] = [
  ...new Set([
    ...BASES,
    ...BASES.flatMap((x) => BASES.flatMap((y) => [2, 3, 4].map((l) => splice(x, y, l)))),
  ]),
].sort((a, b) => a - b);

const KINDS = [KIND_SUP_READ, KIND_SUP_WRITE, KIND_USER_READ, KIND_USER_WRITE, KIND_USER_FETCH];

/** A step of the guest's, the same natively and under shadow paging. */
type Step =
  /** Change entry `level` of base gva `base`'s path (a kernel store through the direct map). */
  | {
      op: "poke";
      base: number;
      level: number;
      change: "rw" | "us" | "nx" | "a" | "p" | "restore";
    }
  /** Point that entry at `target`'s table one level down (keeping the entry's flags). */
  | { op: "retarget"; base: number; level: number; target: number }
  /** The guest's TLB flush after its changes: a CR3 reload, or INVLPG of every gva it uses. */
  | { op: "flush"; how: "cr3" | "invlpg" }
  | { op: "access"; gva: number; kind: number; value: number };

/** A booted guest with one process whose bases are mapped, natively or under shadow paging. */
function rig(shadow: Partial<ShadowSpec> | null) {
  const g: TestGuest = bootGuest(16, shadow === null ? {} : { mode: "shadow", shadow });
  const proc: Process | null = g.kernel.spawn("p", {
    code: 4096,
    heap: 2 ** 21 + 8 * 4096,
    hugeHeap: false,
  });
  if (proc === null) throw new Error("spawn failed");
  g.kernel.switchTo(proc);
  let value = 100;
  for (const gva of BASES) {
    const kind = gva === CODE ? KIND_USER_READ : KIND_USER_WRITE;
    if (userAccess(g.kernel, proc, gva, kind, value++) === -1) throw new Error("setup fault");
  }
  // The table at each level of each base's path, and its original entry there.
  const tables = new Map<string, number>();
  const original = new Map<string, [number, number]>();
  for (const gva of BASES) {
    let table = proc.l4Gfn;
    for (let level = 4; level >= 1; level--) {
      tables.set(`${gva}/${level}`, table);
      const entry = read(g, table, tableIndex(gva, level));
      original.set(`${gva}/${level}`, entry);
      table = pteFrame(entry[0], entry[1]);
    }
  }
  const sh = shadow === null ? null : shadowOf(g.vmm);
  // At every #PF exit: the invariant, and how many upper entries on the faulting path were
  // present and pointed at the right shadow (the entries the handler re-propagates).
  const atFault: string[] = [];
  let matchingUpper = 0;
  if (sh !== null) {
    const handle = sh.pageFault.bind(sh);
    sh.pageFault = (cpu, gva, kind, code) => {
      const problem = upperShadowProblem(sh);
      if (problem !== null) atFault.push(`#PF at 0x${gva.toString(16)}: ${problem}`);
      matchingUpper += matchingUpperOnPath(sh, gva);
      return handle(cpu, gva, kind, code);
    };
  }
  const gfnOf = (frame: number) => (g.host === null ? frame : g.host.frames.gfnOf(frame));
  return {
    g,
    proc,
    sh,
    tables,
    original,
    atFault,
    gfnOf,
    matchingUpper: () => matchingUpper,
  };
}

type Rig = ReturnType<typeof rig>;

/** Guest table entry (table, index), read by a kernel load through the direct map. */
function read(g: TestGuest, table: number, index: number): [number, number] {
  if (g.cpu.load64(directMap(table) + index * 8) !== 0) throw new Error("kernel load faulted");
  return [g.cpu.lo >>> 0, g.cpu.hi >>> 0];
}

/** How many of levels 4..2 of gva's path in the loaded shadow are present and match the guest. */
function matchingUpperOnPath(sh: ShadowPaging, gva: number): number {
  let n = 0;
  let sp = sh.root;
  const w = sh.mem;
  const root = sh.p2m.lookup(Math.floor(sh.cpu.guestCr3 / 4096));
  let guest = root;
  for (let level = 4; level >= 2 && sp !== null && guest >= 0; level--) {
    const i = tableIndex(gva, level);
    w.read64(sp.mfn, i);
    if (!isPresent(w.lo)) break;
    const child = sh.tables.pageAt(pteFrame(w.lo, w.hi));
    w.read64(guest, i);
    if (child === null || child.gfn !== pteFrame(w.lo, w.hi)) break;
    n++;
    sp = child;
    guest = sh.p2m.lookup(child.gfn);
  }
  return n;
}

/** Run one step; what the guest observes of it (nothing for pokes and flushes). */
function run(r: Rig, step: Step): string {
  const { g } = r;
  const cpu = g.cpu;
  switch (step.op) {
    case "poke":
    case "retarget": {
      const key = `${step.base}/${step.level}`;
      const table = r.tables.get(key)!;
      const index = tableIndex(step.base, step.level);
      let [lo, hi] = read(g, table, index);
      if (step.op === "retarget") {
        const target = r.tables.get(`${step.target}/${step.level - 1}`)!;
        lo = pteLo(target, lo & 0xfff);
        hi = pteHi(target, (hi & PTE_HI_NX) !== 0);
      } else if (step.change === "restore") [lo, hi] = r.original.get(key)!;
      else if (step.change === "nx") hi = (hi ^ PTE_HI_NX) >>> 0;
      else {
        const bit = { rw: PTE_RW, us: PTE_US, a: PTE_A, p: PTE_P }[step.change];
        lo = step.change === "a" ? lo & ~bit : lo ^ bit;
      }
      if (cpu.store64(directMap(table) + index * 8, lo >>> 0, hi >>> 0) !== 0) {
        throw new Error("kernel store faulted");
      }
      return "";
    }
    case "flush":
      if (step.how === "cr3") cpu.writeCr3(cpu.guestCr3, r.proc.pcid, false);
      else for (const gva of GVAS) cpu.invlpg(gva);
      return "";
    case "access": {
      const f = cpu.access(step.gva, step.kind, step.value);
      if (f === XLATE_FAULT) return `fault ${cpu.faultCode}`;
      if (f === XLATE_EMULATED) return "emulated";
      const read =
        step.kind === KIND_SUP_WRITE || step.kind === KIND_USER_WRITE ? "" : cpu.readValue;
      return `gfn ${r.gfnOf(f)} ${read}`;
    }
  }
}

/** Every user page-table entry of the process, A and D bits included. */
const finalTables = (r: Rig) => r.g.tables(r.proc);

/** The shadow checks the project runs (--check=full's) and the upper-entry invariant. */
function shadowProblem(r: Rig): string | null {
  if (r.sh === null || r.g.host === null) return null;
  return (
    r.sh.check(true, true) ??
    checkHostFrames(r.g.host.frames) ??
    upperShadowProblem(r.sh) ??
    (r.atFault.length > 0 ? r.atFault[0] : null)
  );
}

const SHADOW_CONFIGS: readonly [string, Partial<ShadowSpec>][] = [
  ["out-of-sync L1s", { unshadow: "none" }],
  ["no out-of-sync L1s", { unshadow: "none", outOfSync: false }],
  ["early unshadow, a tiny pool", { pool: 8 * 4096 }],
];

/**
 * Run `steps` natively and under each shadow configuration: the guest must observe the same at
 * every step and have the same tables after it, every check passing after it. Returns the
 * shadow rigs (for assertions on what was exercised) and the native observations.
 */
function differential(steps: Step[], configs = SHADOW_CONFIGS) {
  const native = rig(null);
  // The tables after each step too: an A bit set late (by a later fault) must not hide one
  // that the guest should have seen set at once.
  const tablesSeen: string[][] = [];
  const seen = steps.map((s) => {
    const out = run(native, s);
    tablesSeen.push(finalTables(native));
    return out;
  });
  const shadows: Rig[] = [];
  for (const [name, config] of configs) {
    const r = rig(config);
    steps.forEach((step, i) => {
      expect(run(r, step), `${name}: step ${i} ${JSON.stringify(step)}`).toBe(seen[i]);
      expect(finalTables(r), `${name}: tables after step ${i}`).toEqual(tablesSeen[i]);
      expect(shadowProblem(r), `${name}: after step ${i} ${JSON.stringify(step)}`).toBeNull();
    });
    shadows.push(r);
  }
  return { seen, shadows };
}

const poke = (base: number, level: number, change: "rw" | "us" | "nx" | "a" | "p" | "restore") =>
  ({ op: "poke", base, level, change }) as const;
const cr3 = { op: "flush", how: "cr3" } as const;
const invlpg = { op: "flush", how: "invlpg" } as const;
const acc = (gva: number, kind: number, value = 7) => ({ op: "access", gva, kind, value }) as const;
const FAULT_USER_READ_PROT = `fault ${PFEC_P | PFEC_U}`;
const FAULT_USER_WRITE_PROT = `fault ${PFEC_P | PFEC_W | PFEC_U}`;

describe("a guest's changes to its upper entries look the same as native", () => {
  test.each([2, 3, 4])("level %i: RW off, write faults; RW on again, the write lands", (level) => {
    const { seen } = differential([
      acc(HEAP0, KIND_USER_WRITE, 1),
      poke(HEAP0, level, "rw"),
      cr3,
      acc(HEAP0, KIND_USER_WRITE, 2),
      acc(HEAP0, KIND_USER_READ),
      poke(HEAP0, level, "rw"),
      invlpg,
      acc(HEAP0, KIND_USER_WRITE, 3),
      acc(HEAP0, KIND_USER_READ),
    ]);
    // The guest saw the protection fault and then the write (not an old or a stale view).
    expect(seen[3]).toBe(FAULT_USER_WRITE_PROT);
    expect(seen[8]).toMatch(/ 3$/);
  });

  test.each([2, 3, 4])("level %i: US off, user reads fault, the kernel's do not", (level) => {
    const { seen } = differential([
      acc(HEAP1, KIND_USER_READ),
      poke(HEAP1, level, "us"),
      invlpg,
      acc(HEAP1, KIND_USER_READ),
      acc(HEAP1, KIND_SUP_READ),
      poke(HEAP1, level, "us"),
      cr3,
      acc(HEAP1, KIND_USER_READ),
    ]);
    expect(seen[3]).toBe(FAULT_USER_READ_PROT);
    expect(seen[4]).toBe(seen[0]);
    expect(seen[7]).toBe(seen[0]);
  });

  test.each([2, 3, 4])("level %i: NX set and cleared, fetches follow", (level) => {
    differential([
      acc(CODE, KIND_USER_FETCH),
      poke(CODE, level, "nx"),
      cr3,
      acc(CODE, KIND_USER_FETCH),
      acc(CODE, KIND_USER_READ),
      poke(CODE, level, "nx"),
      cr3,
      acc(CODE, KIND_USER_FETCH),
    ]);
  });

  test.each([2, 3, 4])("level %i: A cleared, the next walk sets it again", (level) => {
    const { shadows } = differential([
      poke(HEAP0, level, "a"),
      cr3,
      acc(HEAP0, KIND_USER_READ),
      poke(HEAP0, level, "a"),
      invlpg,
      acc(HEAP1, KIND_USER_WRITE, 9),
      acc(HEAP1, KIND_USER_READ),
    ]);
    // The final tables (compared with native's) have A set again; each run faulted through
    // present upper shadow entries that matched (the handler's re-propagation ran on them).
    for (const r of shadows) expect(r.matchingUpper()).toBeGreaterThan(0);
  });

  test.each([2, 3, 4])("level %i: P cleared faults not-present, P set maps again", (level) => {
    const { seen } = differential([
      acc(STACK, KIND_USER_READ),
      poke(STACK, level, "p"),
      cr3,
      acc(STACK, KIND_USER_WRITE, 5),
      poke(STACK, level, "p"),
      cr3,
      acc(STACK, KIND_USER_WRITE, 6),
      acc(STACK, KIND_USER_READ),
    ]);
    expect(seen[3]).toBe(`fault ${PFEC_W | PFEC_U}`);
    expect(seen[7]).toMatch(/ 6$/);
  });

  test("a PDE pointed at another L1 table reaches that table's pages, and back", () => {
    const { seen } = differential([
      acc(HEAP0, KIND_USER_READ),
      acc(HEAP2M, KIND_USER_READ),
      { op: "retarget", base: HEAP0, level: 2, target: HEAP2M },
      cr3,
      acc(HEAP0, KIND_USER_READ),
      acc(HEAP0, KIND_USER_WRITE, 11),
      acc(HEAP2M, KIND_USER_READ),
      poke(HEAP0, 2, "restore"),
      invlpg,
      acc(HEAP0, KIND_USER_READ),
    ]);
    expect(seen[4]).toBe(seen[1]); // HEAP0 now reaches HEAP2M's frame
    expect(seen[6]).toMatch(/ 11$/); // and the write through it landed there
    expect(seen[9]).toBe(seen[0]);
  });

  test("PDPTE and PML4E pointed at another path's tables, with changed rights", () => {
    differential([
      { op: "retarget", base: HEAP0, level: 3, target: STACK },
      poke(HEAP0, 3, "rw"),
      cr3,
      acc(splice(HEAP0, STACK, 3), KIND_USER_READ),
      acc(splice(HEAP0, STACK, 3), KIND_USER_WRITE, 12),
      acc(HEAP0, KIND_USER_READ),
      { op: "retarget", base: STACK, level: 4, target: HEAP0 },
      cr3,
      acc(splice(STACK, HEAP0, 4), KIND_USER_READ),
      acc(splice(STACK, CODE, 4), KIND_USER_FETCH),
      poke(HEAP0, 3, "restore"),
      poke(STACK, 4, "restore"),
      cr3,
      acc(HEAP0, KIND_USER_WRITE, 13),
      acc(STACK, KIND_USER_READ),
    ]);
  });
});

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("poke" as const),
      base: fc.constantFrom(...BASES),
      level: fc.integer({ min: 2, max: 4 }),
      change: fc.constantFrom("rw", "us", "nx", "a", "p", "restore" as const),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("retarget" as const),
      base: fc.constantFrom(...BASES),
      level: fc.integer({ min: 2, max: 4 }),
      target: fc.constantFrom(...BASES),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant("access" as const),
      gva: fc.constantFrom(...GVAS),
      kind: fc.constantFrom(...KINDS),
      value: fc.integer({ min: 1, max: 0x7fffffff }),
    }),
  },
);

/** A step, and the guest's flush after it when it changed an entry (as a kernel must). */
const flushedArb: fc.Arbitrary<Step[]> = fc
  .tuple(stepArb, fc.constantFrom("cr3", "invlpg" as const))
  .map(([s, how]) => (s.op === "access" ? [s] : [s, { op: "flush", how }]));

test("random upper-entry changes and accesses: the same as native, in sync at every #PF", () => {
  let matching = 0;
  fc.assert(
    fc.property(fc.array(flushedArb, { minLength: 1, maxLength: 30 }), (chunks) => {
      const { shadows } = differential(chunks.flat());
      for (const r of shadows) matching += r.matchingUpper();
    }),
    { numRuns: 40, seed: 21 },
  );
  expect(matching).toBeGreaterThan(0);
});

// A guest toggles NX on its heap's PDE (its target unchanged). With setEntry's old order the
// revalidation freed the heap's L1 shadow under the PDE's shadow, and a second process's
// top-level shadow took its frame; back in the first process, a user read of its heap walked
// that shadow as an L1 and reached a shadow-pool frame (the second process's L3 shadow), which
// its user writes could rewrite.
test("an upper entry's rights change keeps the guest within its own frames", () => {
  const g = bootGuest(16, { mode: "shadow", shadow: { unshadow: "none" } });
  const sh = shadowOf(g.vmm);
  const image = { code: 4096, heap: 64 * 4096, hugeHeap: false };
  const p1 = g.kernel.spawn("p1", image)!;
  g.kernel.switchTo(p1);
  const own = userAccess(g.kernel, p1, HEAP0, KIND_USER_WRITE, 5);
  expect(g.host!.frames.owner[own]).toBe(OWNER_DOMAIN);
  const l2 = g.kernel.pt.tableFor(p1.l4Gfn, HEAP0, 2, false);
  const [lo, hi] = read(g, l2, tableIndex(HEAP0, 2));
  expect(g.cpu.store64(directMap(l2) + tableIndex(HEAP0, 2) * 8, lo, (hi ^ PTE_HI_NX) >>> 0)).toBe(
    0,
  );
  expect(upperShadowProblem(sh)).toBeNull();
  expect(sh.check(true, true)).toBeNull();
  const p2 = g.kernel.spawn("p2", image)!;
  g.kernel.switchTo(p2);
  userAccess(g.kernel, p2, HEAP0, KIND_USER_WRITE, 6);
  g.kernel.switchTo(p1);
  expect(g.cpu.access(HEAP0, KIND_USER_READ, 0)).toBe(own);
  expect(g.cpu.readValue).toBe(5);
  expect(checkIsolation(sh, g.cpu, g.host!.frames, g.vmm!.id)).toBeNull();
});
