/**
 * The hardware's translation invariant (README, "Invariant checks"): every valid TLB entry of
 * the running address space (its tag and its VPID's global tag) agrees with a fresh walk of the
 * tables it came from: the same frame, and permissions no wider. A violation is a missing
 * INVLPG or flush somewhere.
 * Reads tables without setting A/D and without touching counters: checking changes nothing.
 */

import { KIND_SUP_READ, MASK_WRITES } from "./access.js";
import type { Vcpu } from "./cpu.js";
import { EPT_PS, EPT_RWX, EPT_W } from "./ept.js";
import type { HostMemory } from "./memory.js";
import type { NestedWalker } from "./nested.js";
import { PTE_HI_NX, PTE_RW, PTE_US, pteFrame } from "./pte.js";
import type { PrefixCache } from "./pwc.js";
import { PAGES_PER_SIZE } from "./tlb.js";
import { WALK_OK, Walker } from "./walker.js";

/**
 * Under hardware-assisted paging the TLB caches gva -> host frame through two tables: the
 * check walks the guest's tables through the P2M (entries hold gfns) and maps the gfn found.
 */
export interface NestedView {
  /** gfn -> mfn (-1: none). */
  mfnOf: Int32Array;
  /** The access kinds the second dimension allows for gfn (the EPT's rights from its type). */
  kindMaskOf(gfn: number): number;
}

/** Returns a description of the first disagreement, or null. */
export function checkTlb(cpu: Vcpu, maxFrame: number, nested?: NestedView): string | null {
  if (!cpu.paging) return null;
  const walker = new Walker();
  // Under HAP the guest's root may have no frame (the host swapped it out): then no entry of
  // the address space may be valid, and a walk from beyond memory (all zeroes) says so.
  const nestedRoot = nested ? (nested.mfnOf[cpu.rootMfn] ?? -1) : 0;
  const root = nested ? (nestedRoot >= 0 ? nestedRoot : cpu.mem.frames) : cpu.rootMfn;
  for (const [name, level] of cpu.tlb.named()) {
    for (let s = 0; s < level.entries; s++) {
      if (!level.isValid(s, cpu.tlb.tagGens)) continue;
      const { tag, sizeCode, pageNumber } = level.decode(s);
      if (tag !== cpu.tag && tag !== cpu.globalTag) continue;
      // A global entry (the kernel's half, the same in every address space) may have been
      // filled under another root while this one is swapped out: nothing to walk it against.
      if (nested && nestedRoot < 0 && tag === cpu.globalTag) continue;
      const gva = pageNumber * PAGES_PER_SIZE[sizeCode] * 4096;
      const where = `TLB ${name} slot ${s} (gva 0x${gva.toString(16)})`;
      const frame = level.frameOf(s);
      if (frame >= maxFrame) return `${where} maps frame ${frame}, beyond the domain's ${maxFrame}`;
      const r = walker.peek(cpu.mem, root, gva, KIND_SUP_READ, cpu.ctl, nested?.mfnOf);
      if (r !== WALK_OK)
        return `${where} is valid but the tables no longer map it (fault 0x${r.toString(16)})`;
      // Natively the entry is the walk's page; under HAP it may be smaller (the EPT's page).
      if (nested ? walker.level - 1 < sizeCode : walker.level - 1 !== sizeCode) {
        return `${where} has page size code ${sizeCode} but the tables map level ${walker.level}`;
      }
      const mapped = nested ? nested.mfnOf[walker.frame] : walker.frame;
      if (mapped !== frame) {
        return `${where} maps frame ${frame} but the tables map ${mapped}`;
      }
      const allowed = nested ? walker.allowed & nested.kindMaskOf(walker.frame) : walker.allowed;
      const perms = level.permsOf(s);
      if ((perms & ~allowed) !== 0) {
        return `${where} allows kinds 0x${perms.toString(16)}, the tables only 0x${allowed.toString(16)}`;
      }
      if (tag === cpu.globalTag && !walker.global) return `${where} is global but the leaf is not`;
    }
  }
  return null;
}

/**
 * Every 4 KiB frame each valid TLB entry of the vCPU reaches, whatever its tag, with whether the
 * entry allows writes and where it is: the hardware's side of the isolation checks of every
 * virtualized mode. `visit` returns a problem to stop with, or null.
 */
export function forEachTlbFrame(
  cpu: Vcpu,
  visit: (mfn: number, writable: boolean, where: string) => string | null,
): string | null {
  const tlb = cpu.tlb;
  for (const [name, level] of tlb.named()) {
    for (let s = 0; s < level.entries; s++) {
      if (!level.isValid(s, tlb.tagGens)) continue;
      const first = level.frameOf(s);
      const pages = PAGES_PER_SIZE[level.decode(s).sizeCode];
      const writable = (level.permsOf(s) & MASK_WRITES) !== 0;
      for (let p = 0; p < pages; p++) {
        const problem = visit(first + p, writable, `TLB ${name} slot ${s}`);
        if (problem !== null) return problem;
      }
    }
  }
  return null;
}

/** Pages one paging-structure cache entry of each level covers (index 2..4): its prefix. */
const PREFIX_PAGES = [0, 1, 512, 512 ** 2, 512 ** 3];

/**
 * What a mode lets a cached table pointer name: null, or why `mfn` may not be a table of
 * `level` for this domain (a frame it does not own, a freed or retyped table).
 */
export type TableRule = (mfn: number, level: number) => string | null;

/**
 * The paging-structure caches (index 2..4, SDM Vol. 3A 4.10.3; a 2D walk's combined ones the
 * same): every valid entry, whatever its tag, names a table `tableOk` allows (isolation: a
 * stale entry is a way into a frame that is no longer a table of the domain); an entry of the
 * running address space names the very table a fresh walk from `root` reads below that
 * level, with permissions no wider than the walk's (with `p2m`, the walk is of a guest's
 * tables, through it). Reads tables without setting A/D.
 */
export function checkPwc(
  cpu: Vcpu,
  caches: PrefixCache[] | null,
  root: number,
  tableOk: TableRule,
  p2m?: Int32Array,
): string | null {
  if (caches === null) return null;
  const walker = new Walker();
  const gens = cpu.tlb.tagGens;
  for (let level = 2; level <= 4; level++) {
    const problem = caches[level].forEachEntry((tag, gen, key, frame, bits, bits2, slot) => {
      if (gen !== gens[tag]) return null; // flushed with its tag
      const gva = key * PREFIX_PAGES[level] * 4096;
      const where = `paging-structure cache L${level} slot ${slot} (gva 0x${gva.toString(16)}, tag ${tag})`;
      const bad = tableOk(frame, level - 1);
      if (bad !== null) return `${where} names mfn ${frame}: ${bad}`;
      if (tag !== cpu.tag || !cpu.paging) return null;
      walker.peek(cpu.mem, root, gva, KIND_SUP_READ, cpu.ctl, p2m);
      if (walker.lastLevel > level - 1 || walker.tableMfn[level - 1] !== frame) {
        return `${where} names mfn ${frame} but the tables no longer link it there`;
      }
      const wider = bits & ~walker.andLoAt[level] & (PTE_RW | PTE_US);
      if (wider !== 0 || (walker.orHiAt[level] & ~bits2 & PTE_HI_NX) !== 0) {
        return `${where} allows more than the entries above the table`;
      }
      return null;
    });
    if (problem !== null) return problem;
  }
  return null;
}

/** Outputs of eptPeek: the rights of the entries read, AND-ed, and the level it ended at. */
interface EptPeek {
  perms: number;
  level: number;
}

/**
 * The EPT rooted at `eptRoot` read for gfn without side effects, down to `level` (2..4: the
 * table that level's entry names, -1 if the walk stops or ends in a leaf first) or to the leaf
 * (`level` 0: gfn's frame, -1 if none).
 */
function eptPeek(
  mem: HostMemory,
  eptRoot: number,
  gfn: number,
  level: number,
  out: EptPeek,
): number {
  let table = eptRoot;
  let perms = EPT_RWX;
  for (let l = 4; l >= level; l--) {
    if (table >= mem.frames) return -1;
    mem.read64(table, (gfn >>> (9 * l - 9)) & 511);
    const lo = mem.lo;
    perms &= lo & EPT_RWX;
    if ((lo & EPT_RWX) === 0) return -1;
    const next = pteFrame(lo, mem.hi);
    out.perms = perms;
    out.level = l;
    if (l === 1 || (l <= 3 && (lo & EPT_PS) !== 0)) {
      const span = l === 1 ? 1 : l === 2 ? 512 : 262144;
      return level === 0 ? next - (next % span) + (gfn % span) : -1;
    }
    if (l === level) return next;
    table = next;
  }
  return -1;
}

/**
 * The EPT's upper-level caches and the nested TLB of a 2D walker: each valid entry names what
 * the EPT says now (a table of the level below, a gfn's frame with rights no wider and the
 * same page size), and `tableOk` / `frameOk` allow it (the domain's EPT tables; a frame it
 * owns, or a shared one it cannot write).
 */
export function checkEptCaches(
  cpu: Vcpu,
  nested: NestedWalker,
  tableOk: TableRule,
  frameOk: (mfn: number, writable: boolean) => string | null,
): string | null {
  const mem = cpu.mem;
  const pwc = nested.eptPwc;
  const walk: EptPeek = { perms: 0, level: 0 };
  for (let level = 2; level <= 4 && pwc !== null; level++) {
    const problem = pwc[level].forEachEntry((_tag, _gen, key, frame, bits, _bits2, slot) => {
      const gfn = key * 512 ** (level - 1);
      const where = `EPT paging-structure cache L${level} slot ${slot} (gfn ${gfn})`;
      const bad = tableOk(frame, level - 1);
      if (bad !== null) return `${where} names mfn ${frame}: ${bad}`;
      if (eptPeek(mem, cpu.eptRoot, gfn, level, walk) !== frame) {
        return `${where} names mfn ${frame} but the EPT no longer links it there`;
      }
      if ((bits & ~walk.perms) !== 0) return `${where} allows more than the EPT's entries`;
      return null;
    });
    if (problem !== null) return problem;
  }
  return (
    nested.ntlb?.forEachEntry((_tag, _gen, gfn, frame, bits, size, slot) => {
      const where = `nested TLB slot ${slot} (gfn ${gfn})`;
      const bad = frameOk(frame, (bits & EPT_W) !== 0);
      if (bad !== null) return `${where} maps mfn ${frame}: ${bad}`;
      if (eptPeek(mem, cpu.eptRoot, gfn, 0, walk) !== frame || walk.level !== size) {
        return `${where} maps mfn ${frame} but the EPT maps gfn ${gfn} elsewhere now`;
      }
      if ((bits & ~walk.perms) !== 0) return `${where} allows more than the EPT`;
      return null;
    }) ?? null
  );
}
