/**
 * A PV guest's memory as checkers read it: through the P2M, with the frame of each present
 * entry turned back from an mfn into the gfn the guest kernel thinks in (the m2p), as the
 * guest's own reads do. This is the one documented difference between a PV guest's tables and
 * a native guest's: the frame numbers.
 */

import type { Gfn } from "../../hw/addr.js";
import type { GuestMemoryPeek } from "../../hw/peek.js";
import { isPresent, PTE_HI_ADDR_MASK, pteFrame } from "../../hw/pte.js";
import type { P2m } from "../p2m.js";

export class PvGuestPeek implements GuestMemoryPeek {
  lo = 0;
  hi = 0;

  constructor(
    private readonly p2m: P2m,
    /** HostFrames.m2pTable: mfn -> gfn + 1 (0: none). */
    private readonly m2p: Int32Array,
  ) {}

  peek64(gfn: Gfn, index: number): void {
    const p2m = this.p2m;
    p2m.peek64(gfn, index);
    const lo = p2m.lo;
    const hi = p2m.hi;
    if (!isPresent(lo)) {
      this.lo = lo;
      this.hi = hi;
      return;
    }
    const mfn = pteFrame(lo, hi);
    const frame = mfn < this.m2p.length ? this.m2p[mfn] - 1 : -1;
    this.lo = ((lo & 0xfff) | ((frame % 0x100000) << 12)) >>> 0;
    this.hi = ((hi & ~PTE_HI_ADDR_MASK) | Math.floor(frame / 0x100000)) >>> 0;
  }
}
