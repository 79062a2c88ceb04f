/**
 * A side-effect-free reader of 64-bit table entries by guest frame, for checkers and the step
 * API: natively the host memory itself (gfn = mfn), under a VMM the P2M (which also reads pages
 * the host swapped out), under PV a view that turns the mfns in entries back into gfns.
 */

import type { Gfn } from "./addr.js";

export interface GuestMemoryPeek {
  /** Read entry `index` of guest frame `gfn` into lo and hi; no counter, A/D bit or TLB changes. */
  peek64(gfn: Gfn, index: number): void;
  lo: number;
  hi: number;
}
