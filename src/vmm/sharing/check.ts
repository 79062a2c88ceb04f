/**
 * Page sharing's bookkeeping, checked from outside: every shared frame is owned as shared and
 * its reference count is the number of gfns (of every domain) that map it; the totals agree;
 * and a domain's translations (TLB entries, shadow, EPT or PV table leaves) reach only the
 * shared frames its own P2M references (isolation: a shared frame is not a key to every other
 * domain's pages).
 */

import { OWNER_SHARED } from "../frames.js";
import type { Host, VmmDomain } from "../host.js";
import { P2M_RAM_SHARED } from "../p2m.js";

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

/** Whether what domain d's mode lets its vCPU reach holds only shared frames it references. */
function reachesOnlyItsShared(host: Host, d: VmmDomain): string | null {
  if (d.destroyed) return null;
  const referenced = new Set<number>();
  const p2m = d.p2m;
  for (let gfn = 0; gfn < p2m.gfns; gfn++) {
    if (p2m.type[gfn] === P2M_RAM_SHARED) referenced.add(p2m.mfn[gfn]);
  }
  const owner = host.frames.owner;
  return d.paging.forEachReach((mfn, _writable, where) =>
    owner[mfn] === OWNER_SHARED && !referenced.has(mfn)
      ? `sharing: domain ${d.id}'s ${where} reaches shared mfn ${mfn}, which its P2M does not reference`
      : null,
  );
}
