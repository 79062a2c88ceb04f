/**
 * Access-permission matrix for the page walker and the vCPU's TLB path, after kvm-unit-tests
 * x86/access.c: every combination of entry flags, access kind and control bits is run through
 * the real Walker (and through Vcpu.translate) and compared with a small reference model of the
 * SDM rules written here, independently of src/hw/walker.ts.
 *
 * References (Intel SDM Vol. 3A): 4.5 (4-level paging, tables 4-14 to 4-20: entry formats and
 * reserved bits), 4.6 (access rights, without SMAP / SMEP / protection keys), 4.7 (#PF error
 * code), 4.8 (accessed and dirty flags), 4.10 (TLBs).
 *
 * Simulator choices the model follows (documented in walker.ts / tlb.ts):
 * - A and D are written only when the access is allowed (the SDM lets a CPU set A on a walk that
 *   then faults; the simulator does not).
 * - MAXPHYADDR is 43 (8 TiB, so that frame numbers are int32); CR4.PGE is always on (G is honoured); PKE is off, so bits 59..62 of a leaf
 *   are ignored.
 * - A TLB entry for a clean page (D = 0) is cached without write permission, so that the first
 *   write re-walks and sets D.
 */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  KIND_SUP_FETCH,
  KIND_SUP_READ,
  KIND_SUP_WRITE,
  KIND_USER_FETCH,
  KIND_USER_READ,
  KIND_USER_WRITE,
} from "../src/hw/access.js";
import { Vcpu } from "../src/hw/cpu.js";
import { HostMemory } from "../src/hw/memory.js";
import {
  MAXPHYADDR,
  PFEC_I,
  PFEC_P,
  PFEC_RSVD,
  PFEC_U,
  PFEC_W,
  PTE_1G_RESERVED_LO,
  PTE_2M_RESERVED_LO,
  PTE_A,
  PTE_D,
  PTE_G,
  PTE_HI_NX,
  PTE_HI_RESERVED,
  PTE_P,
  PTE_PS,
  PTE_RW,
  PTE_US,
} from "../src/hw/pte.js";
import { XLATE_FAULT } from "../src/hw/vcpu-interfaces.js";
import { WALK_OK, WALK_SLOW, Walker } from "../src/hw/walker.js";
import { C_TLB_L1_HITS, C_TLB_MISSES, C_WALKS, newCounters } from "../src/metrics/counters.js";

// ---------------------------------------------------------------------------------------------
// SDM encodings, written out here from the manual (the test checks pte.ts against them).

/** Entry flag bits (SDM tables 4-15 to 4-20). */
const P = 1 << 0;
const RW = 1 << 1;
const US = 1 << 2;
const PWT = 1 << 3;
const PCD = 1 << 4;
const A = 1 << 5;
const D = 1 << 6;
const PS = 1 << 7; // PAT in a 4 KiB PTE
const G = 1 << 8;
/** Bit 12 of a 2 MiB or 1 GiB leaf: PAT, not an address bit. */
const PAT_LARGE = 1 << 12;
/** Bit 63 (XD), as bit 31 of the high half. */
const HI_XD = 0x80000000;
/** Physical-address bits 32..42 (MAXPHYADDR = 43), in the high half. */
const HI_PHYS = 0x000007ff;
/** Bits 43..51: above MAXPHYADDR, reserved in every entry. */
const HI_ABOVE_MAXPHY = 0x000ff800;
/** Bits 13..20 of a 2 MiB leaf and 13..29 of a 1 GiB leaf: reserved. */
const LO_RSVD_2M = 0x001fe000;
const LO_RSVD_1G = 0x3fffe000;

/** #PF error code bits (SDM 4.7). */
const EC_P = 1 << 0;
const EC_W = 1 << 1;
const EC_U = 1 << 2;
const EC_RSVD = 1 << 3;
const EC_I = 1 << 4;

/** Access kinds: the numbering of src/hw/access.ts (kind = (user ? 3 : 0) + op). */
const OP_READ = 0;
const OP_WRITE = 1;
const OP_FETCH = 2;
const KIND_NAMES = ["sup-read", "sup-write", "sup-fetch", "user-read", "user-write", "user-fetch"];
const ALL_KINDS = [0, 1, 2, 3, 4, 5];

interface Ctl {
  wp: boolean;
  nxe: boolean;
  gbpages: boolean;
}

/** One 64-bit entry as two unsigned halves. */
interface Entry {
  lo: number;
  hi: number;
}

/** Entries indexed by level (1 = PT ... 4 = PML4); index 0 unused. */
type Entries = readonly Entry[];

type Outcome =
  | { ok: false; code: number; stopLevel: number }
  | {
      ok: true;
      stopLevel: number;
      frame: number;
      global: boolean;
      /** The entries after the walk (A on every level used, D on the leaf for a write). */
      after: Entry[];
      /** Kinds of access the translation allows, as a bit mask by kind. */
      allowed: number;
    };

// ---------------------------------------------------------------------------------------------
// The reference model.

/** Reserved bits of a present entry at `level` (SDM tables 4-15 to 4-20, 4.5.5 for PS). */
function reservedMask(level: number, ps: boolean, ctl: Ctl): Entry {
  // Every level: bits MAXPHYADDR..51; bit 63 unless EFER.NXE (table 4-14 note, 4.5.5).
  const hi = HI_ABOVE_MAXPHY | (ctl.nxe ? 0 : HI_XD);
  let lo = 0;
  if (level === 4) lo = PS; // PML4E bit 7 is reserved (table 4-15)
  if (level === 3 && ps) lo = ctl.gbpages ? LO_RSVD_1G : PS; // table 4-16; PS reserved w/o 1GB
  if (level === 2 && ps) lo = LO_RSVD_2M; // table 4-18
  return { lo, hi };
}

/** SDM 4.6.1 (no SMAP, no SMEP, no PKE), written as the manual states it. */
function accessAllowed(
  op: number,
  user: boolean,
  writableAll: boolean,
  userAll: boolean,
  xdAny: boolean,
  ctl: Ctl,
): boolean {
  if (user) {
    // User-mode accesses are allowed only to user-mode addresses (U/S = 1 at every level).
    if (!userAll) return false;
    if (op === OP_READ) return true;
    if (op === OP_WRITE) return writableAll; // regardless of CR0.WP
    return !(ctl.nxe && xdAny); // fetch
  }
  // Supervisor-mode: reads from any address; writes honour R/W only when CR0.WP = 1;
  // fetches honour XD only when IA32_EFER.NXE = 1 (SMEP off: user pages are executable).
  if (op === OP_WRITE) return !ctl.wp || writableAll;
  if (op === OP_FETCH) return !(ctl.nxe && xdAny);
  return true;
}

/** #PF error code (SDM 4.7): I/D only with EFER.NXE (SMEP is not modelled). */
function errorCode(kind: number, present: boolean, rsvd: boolean, ctl: Ctl): number {
  const op = kind % 3;
  let code = 0;
  if (present) code |= EC_P;
  if (op === OP_WRITE) code |= EC_W;
  if (kind >= 3) code |= EC_U;
  if (rsvd) code |= EC_RSVD;
  if (op === OP_FETCH && ctl.nxe) code |= EC_I;
  return code;
}

/** The outcome of an access of `kind` at `gva` through `entries`, by the SDM. */
function reference(entries: Entries, gva: number, kind: number, ctl: Ctl): Outcome {
  const op = kind % 3;
  const user = kind >= 3;
  let writableAll = true;
  let userAll = true;
  let xdAny = false;
  for (let level = 4; level >= 1; level--) {
    const { lo, hi } = entries[level];
    if ((lo & P) === 0)
      return { ok: false, code: errorCode(kind, false, false, ctl), stopLevel: level };
    const ps = level !== 1 && (lo & PS) !== 0;
    const rsvd = reservedMask(level, ps, ctl);
    if ((lo & rsvd.lo) !== 0 || (hi & rsvd.hi) !== 0) {
      return { ok: false, code: errorCode(kind, true, true, ctl), stopLevel: level };
    }
    writableAll &&= (lo & RW) !== 0;
    userAll &&= (lo & US) !== 0;
    xdAny ||= (hi & HI_XD) !== 0;
    if (level !== 1 && !ps) continue; // a pointer to the next table
    // The leaf: a 4 KiB page (level 1), 2 MiB (level 2, PS) or 1 GiB (level 3, PS).
    if (!accessAllowed(op, user, writableAll, userAll, xdAny, ctl)) {
      return { ok: false, code: errorCode(kind, true, false, ctl), stopLevel: level };
    }
    const pageSize = 2 ** (12 + 9 * (level - 1));
    const addrLo = level === 1 ? 0xfffff000 : level === 2 ? 0xffe00000 : 0xc0000000;
    const phys = (hi & HI_PHYS) * 2 ** 32 + ((lo & addrLo) >>> 0) + (gva % pageSize);
    const after = entries.map((e) => ({ ...e }));
    for (let l = 4; l >= level; l--) after[l].lo = (after[l].lo | A) >>> 0;
    if (op === OP_WRITE) after[level].lo = (after[level].lo | D) >>> 0;
    let allowed = 0;
    for (const k of ALL_KINDS) {
      if (accessAllowed(k % 3, k >= 3, writableAll, userAll, xdAny, ctl)) allowed |= 1 << k;
    }
    return {
      ok: true,
      stopLevel: level,
      frame: Math.floor(phys / 4096),
      global: (lo & G) !== 0,
      after,
      allowed,
    };
  }
  throw new Error("unreachable: level 1 is always a leaf");
}

// ---------------------------------------------------------------------------------------------
// Building and running cases.

/** Table frames: the PML4 (CR3), then the PDPT, PD and PT it points to. */
const TABLE_OF_LEVEL = [0, 4, 3, 2, 1];
const ROOT = TABLE_OF_LEVEL[4];
/** Leaf frames: above 4 GiB so the high half of the address is exercised; aligned to size. */
const FRAME_4K = 0x234567;
const BASE_2M = 0x3a5c00; // multiple of 512
const BASE_1G = 0x2c0000; // multiple of 262144
const LEAF_FRAME = [0, FRAME_4K, BASE_2M, BASE_1G];
/** The entry written under a large leaf's level (must never be read nor changed). */
const SENTINEL: Entry = { lo: (0x77 << 12) | P | RW | US, hi: 0 };

/** A gva with a different index at each level and a non-zero offset in every page size. */
const IDX = [0, 0x09, 0x1f7, 0x05, 0x1a3];
const OFFSET = 0x5a8;
const GVA = IDX[4] * 2 ** 39 + IDX[3] * 2 ** 30 + IDX[2] * 2 ** 21 + IDX[1] * 2 ** 12 + OFFSET;

function entry(frame: number, flags: number, xd: boolean, loExtra = 0, hiExtra = 0): Entry {
  const lo = ((frame % 0x100000) * 4096 + (flags & 0xfff)) | loExtra;
  const hi = Math.floor(frame / 0x100000) | (xd ? HI_XD : 0) | hiExtra;
  return { lo: lo >>> 0, hi: hi >>> 0 };
}

interface LevelSpec {
  flags: number;
  xd?: boolean;
  loExtra?: number;
  hiExtra?: number;
}

/**
 * Entries for a walk whose leaf is at `leafLevel` (PS is added to a 2 MiB or 1 GiB leaf). Levels
 * above point to the next table, levels below hold the sentinel; a level `spec` leaves out gets
 * `otherFlags`.
 */
function buildEntries(
  leafLevel: number,
  spec: Record<number, LevelSpec>,
  frame?: number,
  otherFlags = P | RW | US,
): Entry[] {
  const out: Entry[] = [{ lo: 0, hi: 0 }];
  for (let level = 1; level <= 4; level++) {
    const s = spec[level] ?? { flags: otherFlags };
    if (level < leafLevel) out.push({ ...SENTINEL });
    else if (level === leafLevel) {
      const ps = level === 1 ? 0 : PS;
      out.push(
        entry(frame ?? LEAF_FRAME[level], s.flags | ps, s.xd ?? false, s.loExtra, s.hiExtra),
      );
    } else {
      out.push(entry(TABLE_OF_LEVEL[level - 1], s.flags, s.xd ?? false, s.loExtra, s.hiExtra));
    }
  }
  return out;
}

interface Case {
  entries: Entries;
  gva: number;
  kind: number;
  ctl: Ctl;
}

const mem = new HostMemory(8);
const walker = new Walker();
const counters = newCounters();
const cpu = new Vcpu(mem, counters);
cpu.paging = true;
cpu.rootMfn = ROOT;

function indexAt(gva: number, level: number): number {
  return Math.floor(gva / 2 ** (12 + 9 * (level - 1))) % 512;
}

function writeEntries(c: Case): void {
  for (let level = 1; level <= 4; level++) {
    const e = c.entries[level];
    mem.write64(TABLE_OF_LEVEL[level], indexAt(c.gva, level), e.lo, e.hi);
  }
}

function readEntries(gva: number): Entry[] {
  const out: Entry[] = [{ lo: 0, hi: 0 }];
  for (let level = 1; level <= 4; level++) {
    mem.read64(TABLE_OF_LEVEL[level], indexAt(gva, level));
    out.push({ lo: mem.lo, hi: mem.hi });
  }
  return out;
}

function sameEntries(a: Entries, b: Entries): boolean {
  for (let level = 1; level <= 4; level++) {
    if (a[level].lo !== b[level].lo || a[level].hi !== b[level].hi) return false;
  }
  return true;
}

const hex = (n: number) => `0x${n.toString(16)}`;
const fmtEntries = (e: Entries) =>
  [4, 3, 2, 1].map((l) => `L${l}=${hex(e[l].hi)}:${hex(e[l].lo)}`).join(" ");

function describeCase(c: Case): string {
  const ctl = `wp=${+c.ctl.wp} nxe=${+c.ctl.nxe} gb=${+c.ctl.gbpages}`;
  return `${KIND_NAMES[c.kind]} ${ctl} gva=${hex(c.gva)} ${fmtEntries(c.entries)}`;
}

/** Cases walkFast() answered itself (the others it left to walk()). */
let fastWalks = 0;

/**
 * walkFast() on a case: it must answer as the reference does, or leave the walk to walk(), and
 * write nothing either way. A description of the first mismatch, or null.
 */
function checkWalkFast(c: Case, exp: Outcome): string | null {
  const f = walker.walkFast(mem, ROOT, c.gva, c.kind, c.ctl);
  if (!sameEntries(readEntries(c.gva), c.entries)) return "it wrote an entry";
  if (f === WALK_SLOW) return null;
  fastWalks++;
  if (!exp.ok || exp.stopLevel !== 1)
    return `answered ${hex(f)} for a walk that is not a 4 KiB hit`;
  if (!sameEntries(exp.after, c.entries)) return "answered a walk that sets A or D";
  if (f !== exp.frame || walker.frame !== exp.frame) return `frame ${hex(f)} != ${hex(exp.frame)}`;
  if (walker.level !== 1 || walker.refs !== 4) return `level ${walker.level} refs ${walker.refs}`;
  if (walker.global !== exp.global) return `global ${walker.global} != ${exp.global}`;
  if (walker.allowed !== exp.allowed)
    return `allowed ${hex(walker.allowed)} != ${hex(exp.allowed)}`;
  if (walker.dirty !== ((c.entries[1].lo & D) !== 0)) return `dirty ${walker.dirty}`;
  return null;
}

/** Run a case through the walker; a description of the first mismatch, or null. */
function checkWalker(c: Case, exp: Outcome): string | null {
  writeEntries(c);
  const fast = checkWalkFast(c, exp);
  if (fast !== null) return `walkFast: ${fast}`;
  const r = walker.walk(mem, ROOT, c.gva, c.kind, c.ctl);
  const after = readEntries(c.gva);
  if (walker.lastLevel !== exp.stopLevel)
    return `lastLevel ${walker.lastLevel} != ${exp.stopLevel}`;
  if (walker.refs !== 5 - exp.stopLevel) return `refs ${walker.refs} != ${5 - exp.stopLevel}`;
  if (!exp.ok) {
    if (r !== exp.code)
      return `walk returned ${r === WALK_OK ? "OK" : hex(r)}, want ${hex(exp.code)}`;
    if (!sameEntries(after, c.entries)) return `a faulting walk changed ${fmtEntries(after)}`;
    return null;
  }
  if (r !== WALK_OK) return `walk returned ${hex(r)}, want OK`;
  if (walker.frame !== exp.frame) return `frame ${hex(walker.frame)} != ${hex(exp.frame)}`;
  if (walker.level !== exp.stopLevel) return `level ${walker.level} != ${exp.stopLevel}`;
  if (walker.global !== exp.global) return `global ${walker.global} != ${exp.global}`;
  if (walker.allowed !== exp.allowed)
    return `allowed ${hex(walker.allowed)} != ${hex(exp.allowed)}`;
  const dirty = (exp.after[exp.stopLevel].lo & D) !== 0;
  if (walker.dirty !== dirty) return `dirty ${walker.dirty} != ${dirty}`;
  if (!sameEntries(after, exp.after)) {
    return `entries after ${fmtEntries(after)}, want ${fmtEntries(exp.after)}`;
  }
  return null;
}

function resetCpu(ctl: Ctl): void {
  cpu.ctl.wp = ctl.wp;
  cpu.ctl.nxe = ctl.nxe;
  cpu.ctl.gbpages = ctl.gbpages;
  cpu.flushTlbAll();
  counters.fill(0);
}

/** translate() result against an outcome; a mismatch description or null. */
function resultMismatch(r: number, exp: Outcome, what: string): string | null {
  if (exp.ok) return r === exp.frame ? null : `${what}: frame ${hex(r)} != ${hex(exp.frame)}`;
  if (r !== XLATE_FAULT) return `${what}: got frame ${hex(r)}, want #PF ${hex(exp.code)}`;
  if (cpu.faultCode !== exp.code) return `${what}: #PF ${hex(cpu.faultCode)} != ${hex(exp.code)}`;
  return null;
}

/**
 * Run a case through the vCPU: twice (the second from the TLB when it succeeded), then, after a
 * successful read or fetch, a write of the same privilege (which must re-walk on a clean page).
 */
function checkVcpu(c: Case, exp: Outcome): string | null {
  writeEntries(c);
  resetCpu(c.ctl);
  // Read through a function: TypeScript would narrow counters[C_X] across the calls below.
  const count = (index: number): number => counters[index];
  const r1 = cpu.translate(c.gva, c.kind);
  const m1 = resultMismatch(r1, exp, "first");
  if (m1) return m1;
  if (count(C_WALKS) !== 1 || count(C_TLB_MISSES) !== 1) return "first access did not walk";
  const r2 = cpu.translate(c.gva, c.kind);
  const m2 = resultMismatch(r2, exp, "second");
  if (m2) return m2;
  if (!exp.ok) {
    // A fault leaves nothing in the TLB: the retry walks again.
    return count(C_WALKS) === 2 ? null : `a faulting retry made ${count(C_WALKS)} walks`;
  }
  if (count(C_WALKS) !== 1 || count(C_TLB_L1_HITS) !== 1) {
    return `second access: walks ${count(C_WALKS)}, L1 hits ${count(C_TLB_L1_HITS)}`;
  }
  if (!sameEntries(readEntries(c.gva), exp.after)) return "entries changed by a TLB hit";
  if (c.kind % 3 === OP_WRITE) return null;
  // A write after the read or fetch.
  const wkind = c.kind - (c.kind % 3) + OP_WRITE;
  const wexp = reference(exp.after, c.gva, wkind, c.ctl);
  const cachedWrite = (exp.after[exp.stopLevel].lo & D) !== 0 && ((exp.allowed >> wkind) & 1) !== 0;
  const r3 = cpu.translate(c.gva, wkind);
  const m3 = resultMismatch(r3, wexp, "write after read");
  if (m3) return m3;
  const walks = cachedWrite ? 1 : 2;
  if (counters[C_WALKS] !== walks) {
    return `write after read: ${counters[C_WALKS]} walks, want ${walks}`;
  }
  const want = wexp.ok ? wexp.after : exp.after;
  const got = readEntries(c.gva);
  if (!sameEntries(got, want)) return `write after read: ${fmtEntries(got)} != ${fmtEntries(want)}`;
  if (wexp.ok) {
    const r4 = cpu.translate(c.gva, wkind);
    if (r4 !== wexp.frame || counters[C_WALKS] !== walks) return "second write was not a TLB hit";
  }
  return null;
}

/** Accumulates mismatches; the test asserts on the list (one expect per case is too slow). */
class Results {
  cases = 0;
  failures: string[] = [];
  failed = 0;

  run(c: Case, tlb = true): Outcome {
    this.cases++;
    const exp = reference(c.entries, c.gva, c.kind, c.ctl);
    const m = checkWalker(c, exp) ?? (tlb ? checkVcpu(c, exp) : null);
    if (m !== null) {
      this.failed++;
      if (this.failures.length < 10) this.failures.push(`${m}\n    in ${describeCase(c)}`);
    }
    return exp;
  }
}

const CTLS: Ctl[] = [];
for (const wp of [false, true]) {
  for (const nxe of [false, true]) CTLS.push({ wp, nxe, gbpages: true });
}

/** Leaf flag combinations: P, RW, US, XD, A, D (G alternates so both values are seen). */
function leafSpecs(): LevelSpec[] {
  const out: LevelSpec[] = [];
  for (let bits = 0; bits < 64; bits++) {
    const flags =
      (bits & 1 ? P : 0) |
      (bits & 2 ? RW : 0) |
      (bits & 4 ? US : 0) |
      (bits & 16 ? A : 0) |
      (bits & 32 ? D : 0) |
      ((bits ^ (bits >> 3)) & 1 ? G : 0);
    out.push({ flags, xd: (bits & 8) !== 0 });
  }
  return out;
}

/** Upper-level flag combinations: P, RW, US, XD, A. */
function upperSpecs(): LevelSpec[] {
  const out: LevelSpec[] = [];
  for (let bits = 0; bits < 32; bits++) {
    const flags =
      (bits & 1 ? P : 0) | (bits & 2 ? RW : 0) | (bits & 4 ? US : 0) | (bits & 16 ? A : 0);
    out.push({ flags, xd: (bits & 8) !== 0 });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

describe("the reference model", () => {
  it("uses the SDM encodings that pte.ts exports", () => {
    expect([PTE_P, PTE_RW, PTE_US, PTE_A, PTE_D, PTE_PS, PTE_G]).toEqual([P, RW, US, A, D, PS, G]);
    expect(PTE_HI_NX >>> 0).toBe(HI_XD);
    expect(MAXPHYADDR).toBe(43);
    expect(PTE_HI_RESERVED >>> 0).toBe(HI_ABOVE_MAXPHY);
    expect(PTE_2M_RESERVED_LO).toBe(LO_RSVD_2M);
    expect(PTE_1G_RESERVED_LO).toBe(LO_RSVD_1G);
    expect([PFEC_P, PFEC_W, PFEC_U, PFEC_RSVD, PFEC_I]).toEqual([EC_P, EC_W, EC_U, EC_RSVD, EC_I]);
    const sup = [KIND_SUP_READ, KIND_SUP_WRITE, KIND_SUP_FETCH];
    const user = [KIND_USER_READ, KIND_USER_WRITE, KIND_USER_FETCH];
    expect([...sup, ...user]).toEqual([OP_READ, OP_WRITE, OP_FETCH, 3, 3 + OP_WRITE, 3 + OP_FETCH]);
  });

  it("gives the hand-computed answers of the SDM on sample cases", () => {
    const ctl = (wp: boolean, nxe: boolean, gbpages = true): Ctl => ({ wp, nxe, gbpages });
    const code = (e: Entries, kind: number, c: Ctl) => {
      const o = reference(e, GVA, kind, c);
      return o.ok ? "ok" : o.code;
    };
    const ro = buildEntries(1, { 1: { flags: P | US } });
    expect(code(ro, 1, ctl(false, true))).toBe("ok"); // sup write, WP=0: allowed
    expect(code(ro, 1, ctl(true, true))).toBe(EC_P | EC_W); // sup write, WP=1
    expect(code(ro, 4, ctl(false, true))).toBe(EC_P | EC_W | EC_U); // user write ignores WP
    const sup = buildEntries(1, { 3: { flags: P | RW } });
    expect(code(sup, 3, ctl(true, true))).toBe(EC_P | EC_U); // U/S=0 at L3
    expect(code(sup, 2, ctl(true, true))).toBe("ok"); // sup fetch
    const xd = buildEntries(2, { 4: { flags: P | RW | US, xd: true } });
    expect(code(xd, 2, ctl(true, true))).toBe(EC_P | EC_I); // XD at L4
    expect(code(xd, 5, ctl(true, true))).toBe(EC_P | EC_U | EC_I);
    expect(code(xd, 0, ctl(true, false))).toBe(EC_P | EC_RSVD); // XD reserved without NXE
    expect(code(xd, 2, ctl(true, false))).toBe(EC_P | EC_RSVD); // no I without NXE
    const np = buildEntries(1, { 2: { flags: RW | US } });
    expect(code(np, 5, ctl(true, true))).toBe(EC_U | EC_I);
    expect(code(np, 5, ctl(true, false))).toBe(EC_U);
    const gb = buildEntries(3, {});
    expect(code(gb, 4, ctl(true, true, false))).toBe(EC_P | EC_RSVD | EC_W | EC_U);
    const ok = reference(gb, GVA, 4, ctl(true, true));
    expect(ok.ok && ok.frame).toBe(BASE_1G + IDX[2] * 512 + IDX[1]);
    expect(ok.ok && ok.after[3].lo & (A | D)).toBe(A | D);
  });
});

describe("walker and TLB against the reference model", () => {
  const leaves = leafSpecs();
  const uppers = upperSpecs();

  /** Every leaf combination x one upper level's combinations x kinds x controls. */
  function matrix(leafLevel: number, ctls: Ctl[], otherFlags = P | RW | US): Results {
    const res = new Results();
    for (let upper = leafLevel + 1; upper <= 4; upper++) {
      for (const up of uppers) {
        for (const leaf of leaves) {
          const spec = { [leafLevel]: leaf, [upper]: up };
          const entries = buildEntries(leafLevel, spec, undefined, otherFlags);
          for (const ctl of ctls) {
            for (const kind of ALL_KINDS) res.run({ entries, gva: GVA, kind, ctl });
          }
        }
      }
    }
    return res;
  }

  it("4 KiB pages: leaf x each upper level x kind x WP x NXE", () => {
    const res = matrix(1, CTLS);
    expect(res.failures).toEqual([]);
    expect(res.cases).toBe(64 * 32 * 3 * 6 * 4);
  });

  it("4 KiB pages with A set on the other levels: walkFast answers its cases itself", () => {
    const fastBefore = fastWalks;
    const res = matrix(1, CTLS, P | RW | US | A);
    expect(res.failures).toEqual([]);
    expect(fastWalks - fastBefore).toBeGreaterThan(1000);
  });

  it("2 MiB pages: leaf x each upper level x kind x WP x NXE", () => {
    const res = matrix(2, CTLS);
    expect(res.failures).toEqual([]);
    expect(res.cases).toBe(64 * 32 * 2 * 6 * 4);
  });

  it("1 GiB pages: leaf x L4 x kind x WP x NXE x gbpages", () => {
    const ctls = [...CTLS, ...CTLS.map((c) => ({ ...c, gbpages: false }))];
    const res = matrix(3, ctls);
    expect(res.failures).toEqual([]);
    expect(res.cases).toBe(64 * 32 * 6 * 8);
  });

  it("P = 0 at each level stops the walk there, with all other bits set", () => {
    const res = new Results();
    for (let leafLevel = 1; leafLevel <= 3; leafLevel++) {
      for (let np = leafLevel; np <= 4; np++) {
        // Everything else that could fault is set in the non-present entry: it must be ignored.
        const junk: LevelSpec = {
          flags: RW | US | A | D | PS | G,
          xd: true,
          loExtra: LO_RSVD_1G,
          hiExtra: HI_ABOVE_MAXPHY,
        };
        const entries = buildEntries(leafLevel, { [np]: junk });
        for (const ctl of CTLS) {
          for (const kind of ALL_KINDS) {
            const exp = res.run({ entries, gva: GVA, kind, ctl });
            expect(exp.ok || exp.code & (EC_P | EC_RSVD)).toBe(0);
            expect(exp.stopLevel).toBe(np);
          }
        }
      }
    }
    expect(res.failures).toEqual([]);
  });
});

describe("reserved bits", () => {
  /** Run `entries` for every kind and control; each must (or must not) be a RSVD fault. */
  function expectAll(res: Results, entries: Entries, ctls: Ctl[], rsvd: boolean, label: string) {
    for (const ctl of ctls) {
      for (const kind of ALL_KINDS) {
        const exp = res.run({ entries, gva: GVA, kind, ctl });
        const isRsvd = !exp.ok && (exp.code & EC_RSVD) !== 0;
        if (isRsvd !== rsvd) throw new Error(`model: ${label} ${KIND_NAMES[kind]} rsvd=${isRsvd}`);
        if (isRsvd && !exp.ok && (exp.code & EC_P) === 0)
          throw new Error(`${label}: RSVD without P`);
      }
    }
  }
  const nxeOff = CTLS.filter((c) => !c.nxe);
  const nxeOn = CTLS.filter((c) => c.nxe);

  it("XD (bit 63) is reserved at every level when EFER.NXE = 0, and only then", () => {
    const res = new Results();
    for (let leafLevel = 1; leafLevel <= 3; leafLevel++) {
      for (let level = leafLevel; level <= 4; level++) {
        const entries = buildEntries(leafLevel, { [level]: { flags: P | RW | US, xd: true } });
        expectAll(res, entries, nxeOff, true, `XD at L${level}`);
        expectAll(res, entries, nxeOn, false, `XD at L${level}`);
      }
    }
    expect(res.failures).toEqual([]);
  });

  it("bits MAXPHYADDR..51 are reserved at every level", () => {
    const res = new Results();
    for (let leafLevel = 1; leafLevel <= 3; leafLevel++) {
      for (let level = leafLevel; level <= 4; level++) {
        for (let bit = MAXPHYADDR; bit <= 51; bit++) {
          const spec = { flags: P | RW | US, hiExtra: 1 << (bit - 32) };
          expectAll(res, buildEntries(leafLevel, { [level]: spec }), CTLS, true, `bit ${bit}`);
        }
      }
    }
    expect(res.failures).toEqual([]);
  });

  it("PS in a PML4 entry is reserved", () => {
    const res = new Results();
    for (let leafLevel = 1; leafLevel <= 3; leafLevel++) {
      const entries = buildEntries(leafLevel, { 4: { flags: P | RW | US | PS } });
      expectAll(res, entries, CTLS, true, "PS in L4");
    }
    expect(res.failures).toEqual([]);
  });

  it("PS in a PDPT entry is reserved without 1 GiB page support", () => {
    const res = new Results();
    const entries = buildEntries(3, {});
    expectAll(
      res,
      entries,
      CTLS.map((c) => ({ ...c, gbpages: false })),
      true,
      "PS in L3",
    );
    expectAll(res, entries, CTLS, false, "PS in L3 with gbpages");
    expect(res.failures).toEqual([]);
  });

  it("bits 13..20 of a 2 MiB leaf are reserved; bits 21..29 are address", () => {
    const res = new Results();
    for (let bit = 13; bit <= 29; bit++) {
      const entries = buildEntries(2, { 2: { flags: P | RW | US, loExtra: 1 << bit } });
      expectAll(res, entries, CTLS, bit <= 20, `2M bit ${bit}`);
    }
    expect(res.failures).toEqual([]);
  });

  it("bits 13..29 of a 1 GiB leaf are reserved; bits 30..42 are address", () => {
    // (Bits 43..45 too, but frames of 2^31 and up are the subject of "physical addresses".)
    const res = new Results();
    for (let bit = 13; bit <= 42; bit++) {
      const lo = bit < 32 ? 1 << bit : 0;
      const hi = bit >= 32 ? 1 << (bit - 32) : 0;
      const entries = buildEntries(3, { 3: { flags: P | RW | US, loExtra: lo, hiExtra: hi } });
      expectAll(res, entries, CTLS, bit <= 29, `1G bit ${bit}`);
    }
    expect(res.failures).toEqual([]);
  });

  it("ignored bits are not reserved (9..11, 52..62, G/D/PAT where ignored, PWT/PCD)", () => {
    const res = new Results();
    const hiIgnored = [];
    for (let bit = 52; bit <= 62; bit++) hiIgnored.push(1 << (bit - 32));
    for (let leafLevel = 1; leafLevel <= 3; leafLevel++) {
      for (let level = leafLevel; level <= 4; level++) {
        const extras: LevelSpec[] = [
          { flags: P | RW | US | (0x7 << 9) },
          { flags: P | RW | US | PWT | PCD },
          ...hiIgnored.map((hi) => ({ flags: P | RW | US, hiExtra: hi })),
        ];
        if (level > leafLevel) extras.push({ flags: P | RW | US | G | D }); // ignored in pointers
        if (level === 1) extras.push({ flags: P | RW | US | PS }); // PAT in a PTE
        for (const spec of extras) {
          expectAll(res, buildEntries(leafLevel, { [level]: spec }), CTLS, false, "ignored");
        }
      }
    }
    expect(res.failures).toEqual([]);
  });

  it("a reserved bit beats a permission fault below it; P = 0 above beats a reserved bit", () => {
    const res = new Results();
    const rsvdL3 = { flags: P | RW | US, hiExtra: 1 << (MAXPHYADDR - 32) };
    const denyLeaf = { flags: P, xd: true };
    expectAll(res, buildEntries(1, { 3: rsvdL3, 1: denyLeaf }), nxeOn, true, "rsvd over perm");
    const both = buildEntries(1, {
      4: { flags: RW | US },
      2: { flags: P | RW | US | PS, loExtra: 1 << 13 },
    });
    expectAll(res, both, CTLS, false, "P=0 over rsvd");
    expect(res.failures).toEqual([]);
  });
});

describe("random flags at every level (fast-check)", () => {
  const arbLevel = fc.record({
    present: fc.integer({ min: 0, max: 7 }).map((x) => x !== 0),
    flags: fc.integer({ min: 0, max: 0xfff }),
    ps: fc.integer({ min: 0, max: 3 }).map((x) => x === 0),
    xd: fc.boolean(),
    hiExtra: fc.oneof(
      { arbitrary: fc.constant(0), weight: 8 },
      { arbitrary: fc.integer({ min: MAXPHYADDR, max: 62 }).map((b) => 1 << (b - 32)), weight: 2 },
    ),
    loExtra: fc.oneof(
      { arbitrary: fc.constant(0), weight: 6 },
      { arbitrary: fc.integer({ min: 13, max: 29 }).map((b) => 1 << b), weight: 2 },
    ),
  });
  const arbCase = fc.record({
    levels: fc.tuple(arbLevel, arbLevel, arbLevel, arbLevel),
    idx: fc.tuple(fc.nat(511), fc.nat(511), fc.nat(511), fc.nat(511)),
    offset: fc.nat(4095),
    // Every frame below 2^31 (8 TiB, MAXPHYADDR = 43).
    frame4k: fc.nat(2 ** 31 - 1),
    frame2m: fc.nat(2 ** 22 - 1).map((n) => n * 512),
    frame1g: fc.nat(2 ** 13 - 1).map((n) => n * 262144),
    kind: fc.nat(5),
    wp: fc.boolean(),
    nxe: fc.boolean(),
    gbpages: fc.boolean(),
  });
  type Drawn = typeof arbCase extends fc.Arbitrary<infer T> ? T : never;

  function toCase(d: Drawn): Case {
    const entries: Entry[] = [{ lo: 0, hi: 0 }];
    for (let level = 1; level <= 4; level++) {
      const l = d.levels[level - 1];
      let flags = l.flags & ~(P | PS | PAT_LARGE);
      if (l.present) flags |= P;
      const large = level !== 1 && l.ps; // PS in L4 too (reserved)
      if (large) flags |= PS;
      else if (level === 1 && l.ps) flags |= PS; // PAT in a PTE
      let frame: number;
      let loExtra = 0;
      if (level === 1) frame = d.frame4k;
      else if (large && level === 2) [frame, loExtra] = [d.frame2m, l.loExtra];
      else if (large && level === 3) [frame, loExtra] = [d.frame1g, l.loExtra];
      else frame = TABLE_OF_LEVEL[level - 1];
      entries.push(entry(frame, flags, l.xd, loExtra, l.hiExtra));
    }
    const [i1, i2, i3, i4] = d.idx;
    const gva = i4 * 2 ** 39 + i3 * 2 ** 30 + i2 * 2 ** 21 + i1 * 2 ** 12 + d.offset;
    return { entries, gva, kind: d.kind, ctl: { wp: d.wp, nxe: d.nxe, gbpages: d.gbpages } };
  }

  it("agrees with the reference model on walks, A/D, frames, TLB hits and write-after-read", () => {
    const res = new Results();
    fc.assert(
      fc.property(arbCase, (d) => {
        const c = toCase(d);
        // A look-ahead walk (peek) answers the same and writes nothing.
        writeEntries(c);
        const exp = reference(c.entries, c.gva, c.kind, c.ctl);
        const r = walker.peek(mem, ROOT, c.gva, c.kind, c.ctl);
        expect(r).toBe(exp.ok ? WALK_OK : exp.code);
        expect(sameEntries(readEntries(c.gva), c.entries)).toBe(true);
        if (exp.ok) expect(walker.dirty).toBe((c.entries[exp.stopLevel].lo & D) !== 0);
        const before = res.failed;
        res.run(c);
        return res.failed === before;
      }),
      { numRuns: 20000, seed: 0x5eed },
    );
    expect(res.failures).toEqual([]);
  });
});

describe("physical addresses", () => {
  /** Each address bit from `fromBit` to `toBit` alone, then all of a page size's bits. */
  function addressBits(fromBit: number, toBit: number): Results {
    const res = new Results();
    for (let leafLevel = 1; leafLevel <= 3; leafLevel++) {
      const lowBit = 12 + 9 * (leafLevel - 1);
      for (let bit = Math.max(lowBit, fromBit); bit <= toBit; bit++) {
        const entries = buildEntries(leafLevel, {}, 2 ** (bit - 12));
        for (const kind of ALL_KINDS) res.run({ entries, gva: GVA, kind, ctl: CTLS[3] });
      }
      // All address bits up to toBit at once.
      const top = 2 ** (toBit + 1 - 12) - 2 ** (lowBit - 12);
      res.run({ entries: buildEntries(leafLevel, {}, top), gva: GVA, kind: 0, ctl: CTLS[3] });
    }
    return res;
  }

  it("every address bit up to 42 reaches the frame, for each page size", () => {
    expect(addressBits(12, 42).failures).toEqual([]);
  });
});

describe("large leaves", () => {
  // SDM tables 4-17 and 4-19: bit 12 of a 2 MiB / 1 GiB leaf is PAT; the page address is bits
  // 51:21 / 51:30, so PAT = 1 must not move the page.
  it("PAT (bit 12) of a large leaf is not an address bit", () => {
    const res = new Results();
    for (const leafLevel of [2, 3]) {
      const entries = buildEntries(leafLevel, {
        [leafLevel]: { flags: P | RW | US, loExtra: PAT_LARGE },
      });
      for (const kind of ALL_KINDS) res.run({ entries, gva: GVA, kind, ctl: CTLS[3] });
    }
    expect(res.failures).toEqual([]);
  });
});
