/**
 * The hardware's translation invariant (README, "Invariant checks"): every valid TLB entry of
 * the running address space (its tag and its VPID's global tag) agrees with a fresh walk of the
 * tables it came from: the same frame, and permissions no wider. A violation is a missing
 * INVLPG or flush somewhere.
 * Reads tables without setting A/D and without touching counters: checking changes nothing.
 */

import { KIND_SUP_READ, MASK_WRITES } from "./access.js";
import type { Vcpu } from "./cpu.js";
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
