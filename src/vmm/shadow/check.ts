/**
 * The invariants of a shadow-paged domain (README, "Invariant checks"), checked from outside
 * (no counter, A/D bit or TLB entry changes):
 * 1. every valid TLB entry of the running address space maps p2m(guest walk(gva)), with
 *    permissions no wider than the guest's, and never writes a shadowed page table;
 *    every present shadow leaf in an l1 shadow agrees with its guest entry in the same way (an
 *    out-of-sync L1's with its snapshot, and its writable mappings are allowed: oos.ts);
 * 2. every leaf shadow entry maps a frame this domain owns (isolation);
 * 3. the host's frame accounting balances (vmm/frames-check.ts).
 */

import { KIND_SUP_READ, MASK_WRITES } from "../../hw/access.js";
import { checkPwc, forEachTlbFrame } from "../../hw/check.js";
import type { Vcpu } from "../../hw/cpu.js";
import { isAccessed, isDirty, isPresent, isWritable, pteFrame } from "../../hw/pte.js";
import { PAGES_PER_SIZE } from "../../hw/tlb.js";
import { WALK_OK, Walker } from "../../hw/walker.js";
import { type HostFrames, OWNER_DOMAIN, OWNER_SHARED } from "../frames.js";
import { isFl1, SH_L1, type ShadowPage } from "./page.js";
import type { ShadowPaging } from "./shadow.js";

export function checkShadow(
  sh: ShadowPaging,
  cpu: Vcpu,
  frames: HostFrames,
  domainId: number,
): string | null {
  return (
    checkIsolation(sh, cpu, frames, domainId) ??
    checkShadowPwc(sh, cpu) ??
    checkConsistency(sh, cpu)
  );
}

/**
 * The paging-structure caches over the shadows: every valid entry names a live shadow of the
 * level below (a freed shadow, or one reused at another level, would let the guest's data or a
 * fake table be walked), and those of the running address space the shadow a walk reads.
 */
export function checkShadowPwc(sh: ShadowPaging, cpu: Vcpu): string | null {
  return checkPwc(cpu, cpu.pwc, cpu.rootMfn, (mfn, level) => {
    const sp = sh.tables.byMfn.get(mfn);
    if (sp === undefined) return "not a shadow of the domain";
    return sp.level === level ? null : `a level-${sp.level} shadow, not level ${level}`;
  });
}

/** Whether a domain may reach mfn: its own RAM, or a frame shared read-only. */
export function reachable(frames: HostFrames, mfn: number, domainId: number): boolean {
  const owner = frames.owner[mfn];
  return (owner === OWNER_DOMAIN && frames.domainOf(mfn) === domainId) || owner === OWNER_SHARED;
}

/**
 * Invariant 2 alone: every translation the domain's vCPU can use (a valid TLB entry of its VPID,
 * a present shadow leaf: with `leaves` false, the TLB's only) reaches only frames it owns. This
 * holds even for a hostile guest that rewrites its tables without flushing, where the stricter
 * consistency check cannot.
 */
export function checkIsolation(
  sh: ShadowPaging,
  cpu: Vcpu,
  frames: HostFrames,
  domainId: number,
  leaves = true,
): string | null {
  if (cpu.paging && (sh.root === null || cpu.rootMfn !== sh.root.mfn)) {
    return `the vCPU walks root mfn ${cpu.rootMfn}, not the domain's shadow root`;
  }
  const visit = (mfn: number, writable: boolean, where: string): string | null => {
    if (!reachable(frames, mfn, domainId)) {
      return `${where} reaches mfn ${mfn}, which domain ${domainId} does not own`;
    }
    if (writable && frames.owner[mfn] === OWNER_SHARED) {
      return `${where} lets domain ${domainId} write shared mfn ${mfn}`;
    }
    return null;
  };
  return leaves ? forEachReach(sh, cpu, visit) : forEachTlbFrame(cpu, visit);
}

/**
 * Every frame the domain's vCPU can reach: each 4 KiB frame of each valid TLB entry, and the
 * frame of each present leaf of its l1 and FL1 shadows, with whether it is writable there and
 * where it was found. `visit` returns a problem to stop with, or null.
 */
export function forEachReach(
  sh: ShadowPaging,
  cpu: Vcpu,
  visit: (mfn: number, writable: boolean, where: string) => string | null,
): string | null {
  const problem = forEachTlbFrame(cpu, visit);
  if (problem !== null) return problem;
  for (const sp of sh.tables.pages()) {
    if (sp.type !== SH_L1 && !isFl1(sp.type)) continue;
    for (let i = 0; i < 512; i++) {
      sh.mem.read64(sp.mfn, i);
      const lo = sh.mem.lo;
      if (!isPresent(lo)) continue;
      const problem = visit(pteFrame(lo, sh.mem.hi), isWritable(lo), `shadow ${sp.mfn}[${i}]`);
      if (problem !== null) return problem;
    }
  }
  return null;
}

/** Whether the guest may not write gfn: a shadowed page table that is not out of sync. */
function writeProtected(sh: ShadowPaging, gfn: number): boolean {
  return sh.tables.isShadowedTable(gfn) && !(sh.oos?.isOutOfSync(gfn) ?? false);
}

/** The shadow pages' bookkeeping, and that only the loaded root is marked in use. */
export function checkBookkeeping(sh: ShadowPaging): string | null {
  const problem = sh.tables.audit() ?? sh.oos?.audit() ?? null;
  if (problem !== null) return problem;
  for (const sp of sh.tables.pages()) {
    if (sp.inUse && sp !== sh.root) return `shadow ${sp.mfn} is marked loaded but is not the root`;
  }
  return null;
}

/** Invariant 1: TLB entries and shadow leaves agree with the guest's tables and the P2M. */
function checkConsistency(sh: ShadowPaging, cpu: Vcpu): string | null {
  const problem = checkTlbAgainstGuest(sh, cpu);
  if (problem !== null) return problem;
  for (const sp of sh.tables.pages()) {
    if (sp.type !== SH_L1 && !isFl1(sp.type)) continue;
    const found = checkLeafPage(sh, sp);
    if (found !== null) return found;
  }
  return null;
}

/** Every valid TLB entry of the running address space against the guest's tables and the P2M. */
export function checkTlbAgainstGuest(sh: ShadowPaging, cpu: Vcpu): string | null {
  const walker = new Walker();
  const rootGfn = Math.floor(cpu.guestCr3 / 4096);
  const rootMfn = sh.p2m.lookup(rootGfn);
  if (!cpu.paging || rootMfn < 0) return null;
  for (const level of [cpu.tlb.l1, cpu.tlb.l2, cpu.tlb.l1Large, cpu.tlb.l2Large]) {
    for (let s = 0; s < level.entries; s++) {
      if (!level.isValid(s, cpu.tlb.tagGens)) continue;
      const { tag, sizeCode, pageNumber } = level.decode(s);
      if (tag !== cpu.tag && tag !== cpu.globalTag) continue;
      const gva = pageNumber * PAGES_PER_SIZE[sizeCode] * 4096;
      const where = `TLB slot ${s} (gva 0x${gva.toString(16)})`;
      const r = walker.peek(sh.mem, rootMfn, gva, KIND_SUP_READ, cpu.ctl, sh.p2m.mfn);
      if (r !== WALK_OK) return `${where} is valid but the guest tables do not map it`;
      const mfn = sh.p2m.lookup(walker.frame);
      if (mfn !== level.frameOf(s)) {
        return `${where} maps mfn ${level.frameOf(s)} but p2m(guest walk) is ${mfn}`;
      }
      const perms = level.permsOf(s);
      if ((perms & ~walker.allowed) !== 0) return `${where} allows more than the guest's tables`;
      if ((perms & MASK_WRITES) !== 0 && writeProtected(sh, walker.frame)) {
        return `${where} lets the guest write its page table gfn ${walker.frame}`;
      }
    }
  }
  return null;
}

/**
 * Every present entry of one l1 or FL1 shadow against its guest entry and the P2M: the frame
 * p2m(guest frame), writable only where the guest entry is writable and dirty, never onto a
 * shadowed page table.
 */
export function checkLeafPage(sh: ShadowPaging, sp: ShadowPage): string | null {
  const mem = sh.mem;
  // An out-of-sync L1's shadow follows its snapshot, not the guest's table (see oos.ts).
  const snapshot = sp.type === SH_L1 && sh.oos !== null ? sh.oos.snapshotOf(sp.gfn) : -1;
  const gl1 = sp.type === SH_L1 ? (snapshot >= 0 ? snapshot : sh.p2m.lookup(sp.gfn)) : -1;
  for (let i = 0; i < 512; i++) {
    mem.read64(sp.mfn, i);
    const lo = mem.lo;
    const hi = mem.hi;
    if (!isPresent(lo)) continue;
    const mfn = pteFrame(lo, hi);
    let gfn: number;
    if (sp.type === SH_L1) {
      mem.read64(gl1, i);
      const glo = mem.lo;
      if (!isPresent(glo) || !isAccessed(glo)) {
        return `shadow l1 of gfn ${sp.gfn}[${i}] is present but the guest entry is not present and accessed`;
      }
      gfn = pteFrame(glo, mem.hi);
      if (isWritable(lo) && (!isWritable(glo) || !isDirty(glo))) {
        return `shadow l1 of gfn ${sp.gfn}[${i}] is writable but the guest entry is not writable and dirty`;
      }
    } else {
      gfn = sp.gfn + i;
    }
    if (sh.p2m.lookup(gfn) !== mfn) {
      return `shadow ${sp.mfn}[${i}] maps mfn ${mfn} but p2m(gfn ${gfn}) is ${sh.p2m.lookup(gfn)}`;
    }
    if (isWritable(lo) && writeProtected(sh, gfn)) {
      return `shadow ${sp.mfn}[${i}] maps page table gfn ${gfn} writable`;
    }
  }
  return null;
}

/** Invariant 2 for one l1 or FL1 shadow: each present entry reaches a frame the domain may. */
export function checkLeafReach(
  sh: ShadowPaging,
  sp: ShadowPage,
  frames: HostFrames,
  domainId: number,
): string | null {
  const mem = sh.mem;
  for (let i = 0; i < 512; i++) {
    mem.read64(sp.mfn, i);
    const lo = mem.lo;
    if (!isPresent(lo)) continue;
    const mfn = pteFrame(lo, mem.hi);
    if (!reachable(frames, mfn, domainId)) {
      return `shadow ${sp.mfn}[${i}] reaches mfn ${mfn}, which domain ${domainId} does not own`;
    }
    if (isWritable(lo) && frames.owner[mfn] === OWNER_SHARED) {
      return `shadow ${sp.mfn}[${i}] lets domain ${domainId} write shared mfn ${mfn}`;
    }
  }
  return null;
}
