/**
 * The P2M's own consistency, checked from outside (no side effect): every gfn with a frame is
 * RAM whose frame this domain owns and whose m2p entry points back; every gfn without one is
 * not; swapped-out gfns are exactly those in the swap file; the counters agree with the arrays.
 * With the guest's balloon (its gfns marked 1): every ballooned-out gfn is one the guest gave.
 */

import { type HostFrames, OWNER_DOMAIN, OWNER_SHARED } from "../frames.js";
import { P2M_INVALID, P2M_RAM_PAGED, P2M_RAM_RW, P2M_RAM_SHARED, type P2m } from "../p2m.js";

export function checkP2m(
  p2m: P2m,
  frames: HostFrames,
  domainId: number,
  inBalloon: Uint8Array | null,
): string | null {
  let populated = 0;
  let invalid = 0;
  let paged = 0;
  for (let gfn = 0; gfn < p2m.gfns; gfn++) {
    const mfn = p2m.mfn[gfn];
    const type = p2m.type[gfn];
    const ram = type === P2M_RAM_RW || type === P2M_RAM_SHARED;
    if (mfn >= 0) {
      populated++;
      if (!ram) return `p2m: gfn ${gfn} has frame ${mfn} but type ${type}`;
      if (
        type === P2M_RAM_RW &&
        (frames.owner[mfn] !== OWNER_DOMAIN ||
          frames.domainOf(mfn) !== domainId ||
          frames.gfnOf(mfn) !== gfn)
      ) {
        return `p2m: gfn ${gfn} maps mfn ${mfn}, which is not this domain's frame for it (owner ${frames.owner[mfn]}, domain ${frames.domainOf(mfn)}, m2p ${frames.gfnOf(mfn)})`;
      }
      if (type === P2M_RAM_SHARED && frames.owner[mfn] !== OWNER_SHARED) {
        return `p2m: gfn ${gfn} is shared but mfn ${mfn} is not a shared frame`;
      }
    } else if (ram) {
      return `p2m: gfn ${gfn} is RAM (type ${type}) without a frame`;
    }
    if (type === P2M_RAM_PAGED) {
      paged++;
      if (!p2m.swapFile.has(gfn)) return `p2m: gfn ${gfn} is paged out but not in the swap file`;
    }
    if (type === P2M_INVALID) {
      invalid++;
      if (inBalloon !== null && inBalloon[gfn] !== 1) {
        return `p2m: gfn ${gfn} is ballooned out but the guest's balloon does not hold it`;
      }
    }
  }
  if (populated !== p2m.populated) {
    return `p2m: ${populated} gfns have frames but it counts ${p2m.populated}`;
  }
  if (invalid !== p2m.ballooned) {
    return `p2m: ${invalid} gfns are ballooned out but it counts ${p2m.ballooned}`;
  }
  if (paged !== p2m.swapFile.size) {
    return `p2m: ${paged} gfns are paged out but the swap file holds ${p2m.swapFile.size}`;
  }
  return null;
}
