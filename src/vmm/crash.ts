/**
 * A domain crash: what the VMM does to a guest that breaks the rules of its virtual hardware
 * (maps memory it does not have, exhausts what the host can give it). Only that domain stops.
 */

import type { Gfn, Mfn } from "../hw/addr.js";
import { NO_FRAME_BALLOONED, NO_FRAME_NOT_RAM, type P2m } from "./p2m.js";

export class DomainCrash extends Error {
  constructor(readonly reason: string) {
    super(`domain crashed: ${reason}`);
  }
}

/**
 * The host frame behind gfn for the guest (P2m.resolve, or resolveForWrite for a write, which
 * copies a shared page first); a gfn that cannot have one crashes the domain, whatever the
 * paging mode.
 */
export function frameOrCrash(p2m: P2m, gfn: Gfn, write: boolean): Mfn {
  const mfn = write ? p2m.resolveForWrite(gfn) : p2m.resolve(gfn);
  if (mfn >= 0) return mfn;
  if (mfn === NO_FRAME_NOT_RAM) {
    throw new DomainCrash(`guest frame ${gfn} is outside its ${p2m.gfns} frames of RAM`);
  }
  if (mfn === NO_FRAME_BALLOONED) {
    throw new DomainCrash(
      `the guest touched gfn ${gfn}, which it ballooned out (policy "mmio": not RAM any more)`,
    );
  }
  throw new DomainCrash(
    `the host has no memory left for gfn ${gfn} (no free frame, and nothing to swap out)`,
  );
}
