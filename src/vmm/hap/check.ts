/**
 * The EPT against the P2M, from outside (no side effect): every EPT leaf maps a gfn of the
 * domain's RAM to the very frame the P2M gives it, with no more rights than its type allows;
 * so, with the P2M check, every frame the hardware can reach through the EPT is the domain's
 * own, or a shared frame it can only read (isolation, invariant 2). The EPT's own frames are
 * the VMM's.
 */

import { checkEptCaches, checkPwc, forEachTlbFrame } from "../../hw/check.js";
import type { Vcpu } from "../../hw/cpu.js";
import { EPT_W } from "../../hw/ept.js";
import { type HostFrames, OWNER_DOMAIN, OWNER_SHARED, OWNER_VMM } from "../frames.js";
import { eptPermsOf } from "./ept.js";
import type { HapPaging } from "./hap.js";

export function checkEpt(hap: HapPaging, frames: HostFrames, domainId: number): string | null {
  const p2m = hap.p2m;
  for (const mfn of hap.ept.pages) {
    if (frames.owner[mfn] !== OWNER_VMM || frames.domainOf(mfn) !== domainId) {
      return `ept: table frame ${mfn} is not a VMM frame of this domain`;
    }
  }
  let problem: string | null = null;
  hap.ept.forEachLeaf((gfn, mfn, perms) => {
    if (problem !== null) return;
    if (gfn >= p2m.gfns) {
      problem = `ept: gfn ${gfn} is mapped but is beyond the domain's ${p2m.gfns} frames`;
    } else if (p2m.mfn[gfn] !== mfn) {
      problem = `ept: gfn ${gfn} maps mfn ${mfn} but the p2m says ${p2m.mfn[gfn]}`;
    } else if ((perms & ~eptPermsOf(p2m.type[gfn])) !== 0) {
      problem = `ept: gfn ${gfn} has rights 0x${perms.toString(16)}, more than its p2m type ${p2m.type[gfn]} allows`;
    } else if ((perms & EPT_W) !== 0 && frames.domainOf(mfn) !== domainId) {
      problem = `ept: gfn ${gfn} maps mfn ${mfn} writable, a frame of domain ${frames.domainOf(mfn)}`;
    }
  });
  return problem;
}

/**
 * Isolation under HAP (invariant 2), from the hardware's side: every valid TLB entry of the
 * domain's vCPU, whatever its tag, reaches only frames the domain owns, or shared frames it
 * cannot write. Holds even when the guest has written anything into its own page tables: the
 * 2D walk only ever ends in a frame the EPT maps.
 */
export function checkReach(cpu: Vcpu, frames: HostFrames, domainId: number): string | null {
  return forEachTlbFrame(cpu, (mfn, writable, where) => {
    const owner = frames.owner[mfn];
    const mine = owner === OWNER_DOMAIN && frames.domainOf(mfn) === domainId;
    if (mine || (owner === OWNER_SHARED && !writable)) return null;
    return `${where} reaches mfn ${mfn} (owner ${owner}, domain ${frames.domainOf(mfn)})${writable ? " writable" : ""}`;
  });
}

/**
 * The 2D walker's caches (invariant 2 for what the hardware caches besides the TLB): each
 * combined paging-structure entry names a guest table in a frame the domain owns (the one a
 * 2D walk reads, for the running address space), each EPT cache entry one of the domain's EPT
 * tables and the one the EPT links there, each nested TLB entry the frame the EPT maps, a
 * frame the domain owns or a shared one it cannot write.
 */
export function checkWalkCaches(
  hap: HapPaging,
  cpu: Vcpu,
  frames: HostFrames,
  domainId: number,
): string | null {
  const nested = cpu.nested;
  if (nested === null) return null;
  const p2m = hap.p2m;
  const root = p2m.lookup(cpu.rootMfn);
  const guestTable = (mfn: number): string | null =>
    frames.owner[mfn] === OWNER_DOMAIN && frames.domainOf(mfn) === domainId
      ? null
      : `owner ${frames.owner[mfn]}, domain ${frames.domainOf(mfn)}, not a frame of domain ${domainId}`;
  const eptTable = (mfn: number): string | null =>
    frames.owner[mfn] === OWNER_VMM && frames.domainOf(mfn) === domainId
      ? null
      : `not an EPT table of domain ${domainId}`;
  return (
    checkPwc(cpu, nested.pwc, root >= 0 ? root : cpu.mem.frames, guestTable, p2m.mfn) ??
    checkEptCaches(cpu, nested, eptTable, (mfn, writable) => {
      const owner = frames.owner[mfn];
      if (owner === OWNER_DOMAIN && frames.domainOf(mfn) === domainId) return null;
      if (owner === OWNER_SHARED && !writable) return null;
      return `owner ${owner}, domain ${frames.domainOf(mfn)}${writable ? ", writable" : ""}`;
    })
  );
}
