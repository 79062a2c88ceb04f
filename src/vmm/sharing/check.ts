/**
 * Page sharing's bookkeeping, checked from outside: every shared frame is owned as shared and
 * its reference count is the number of gfns (of every domain) that map it; the totals agree;
 * and a domain's translations (shadow leaves, TLB entries) reach only the shared frames its own
 * P2M references (isolation: a shared frame is not a key to every other domain's pages).
 */

import { PTE_P, pteFrame } from "../../hw/pte.js";
import { PAGES_PER_SIZE } from "../../hw/tlb.js";
import { OWNER_SHARED } from "../frames.js";
import type { Host, VmmDomain } from "../host.js";
import { P2M_RAM_SHARED } from "../p2m.js";
import { isFl1, SH_L1 } from "../shadow/page.js";

export function checkSharing(host: Host): string | null {
  const sharing = host.sharing;
  if (sharing === null) return null;
  const seen = new Int32Array(host.frames.frames);
  for (const d of host.domains) {
    const p2m = d.p2m;
    for (let gfn = 0; gfn < p2m.gfns; gfn++) {
      if (p2m.type[gfn] !== P2M_RAM_SHARED) continue;
      const mfn = p2m.mfn[gfn];
      if (host.frames.owner[mfn] !== OWNER_SHARED) {
        return `sharing: domain ${d.id} gfn ${gfn} is shared but mfn ${mfn} is not a shared frame`;
      }
      seen[mfn]++;
    }
  }
  for (const d of host.domains) {
    const problem = reachesOnlyItsShared(host, d);
    if (problem !== null) return problem;
  }
  let shared = 0;
  let extra = 0;
  for (let mfn = 0; mfn < seen.length; mfn++) {
    const owned = host.frames.owner[mfn] === OWNER_SHARED;
    if (seen[mfn] !== sharing.refs[mfn]) {
      return `sharing: mfn ${mfn} has ${sharing.refs[mfn]} references but ${seen[mfn]} gfns map it`;
    }
    if (owned !== sharing.refs[mfn] > 0) {
      return `sharing: mfn ${mfn} is ${owned ? "" : "not "}a shared frame with ${sharing.refs[mfn]} references`;
    }
    if (owned !== (sharing.isShared[mfn] === 1)) {
      return `sharing: mfn ${mfn} is marked ${sharing.isShared[mfn] ? "shared" : "private"} for walks`;
    }
    if (owned) {
      shared++;
      extra += sharing.refs[mfn] - 1;
    }
  }
  if (shared !== sharing.pagesShared || extra !== sharing.pagesSharing) {
    return `sharing: ${shared} shared frames with ${extra} extra references, counted ${sharing.pagesShared} and ${sharing.pagesSharing}`;
  }
  return null;
}

/** Whether domain d's shadow leaves and TLB entries reach only shared frames it references. */
function reachesOnlyItsShared(host: Host, d: VmmDomain): string | null {
  if (d.destroyed) return null;
  const referenced = new Set<number>();
  const p2m = d.p2m;
  for (let gfn = 0; gfn < p2m.gfns; gfn++) {
    if (p2m.type[gfn] === P2M_RAM_SHARED) referenced.add(p2m.mfn[gfn]);
  }
  const frames = host.frames;
  const foreign = (mfn: number) => frames.owner[mfn] === OWNER_SHARED && !referenced.has(mfn);
  const mem = host.mem;
  for (const sp of d.shadow?.tables.pages() ?? []) {
    if (sp.type !== SH_L1 && !isFl1(sp.type)) continue;
    for (let i = 0; i < 512; i++) {
      mem.read64(sp.mfn, i);
      if ((mem.lo & PTE_P) === 0) continue;
      const mfn = pteFrame(mem.lo, mem.hi);
      if (foreign(mfn)) {
        return `sharing: domain ${d.id}'s shadow ${sp.mfn}[${i}] maps shared mfn ${mfn}, which its P2M does not reference`;
      }
    }
  }
  const tlb = d.cpu.tlb;
  for (const level of [tlb.l1, tlb.l2, tlb.l1Large, tlb.l2Large]) {
    for (let s = 0; s < level.entries; s++) {
      if (!level.isValid(s, tlb.tagGens)) continue;
      const first = level.frameOf(s);
      const pages = PAGES_PER_SIZE[level.decode(s).sizeCode];
      for (let q = 0; q < pages; q++) {
        if (foreign(first + q)) {
          return `sharing: domain ${d.id}'s TLB slot ${s} reaches shared mfn ${first + q}, which its P2M does not reference`;
        }
      }
    }
  }
  return null;
}
