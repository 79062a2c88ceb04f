/**
 * The EPT against the P2M, from outside (no side effect): every EPT leaf maps a gfn of the
 * domain's RAM to the very frame the P2M gives it, with no more rights than its type allows;
 * so, with the P2M check, every frame the hardware can reach through the EPT is the domain's
 * own, or a shared frame it can only read (isolation, invariant 2). The EPT's own frames are
 * the VMM's.
 */

import { forEachTlbFrame } from "../../hw/check.js";
import type { Vcpu } from "../../hw/cpu.js";
import { EPT_W } from "../../hw/ept.js";
import { type HostFrames, OWNER_DOMAIN, OWNER_SHARED, OWNER_VMM } from "../frames.js";
import { eptPermsOf } from "./ept.js";
import type { HapPaging } from "./hap.js";

export function checkEpt(hap: HapPaging, frames: HostFrames, domainId: number): string | null {
  const p2m = hap.p2m;
  for (const mfn of hap.ept.pages) {
    if (frames.owner[mfn] !== OWNER_VMM || frames.ownerDomain[mfn] !== domainId) {
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
    } else if ((perms & EPT_W) !== 0 && frames.ownerDomain[mfn] !== domainId) {
      problem = `ept: gfn ${gfn} maps mfn ${mfn} writable, a frame of domain ${frames.ownerDomain[mfn]}`;
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
    const mine = owner === OWNER_DOMAIN && frames.ownerDomain[mfn] === domainId;
    if (mine || (owner === OWNER_SHARED && !writable)) return null;
    return `${where} reaches mfn ${mfn} (owner ${owner}, domain ${frames.ownerDomain[mfn]})${writable ? " writable" : ""}`;
  });
}
