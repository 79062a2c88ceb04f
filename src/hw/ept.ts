/**
 * Extended page tables (Intel SDM Vol. 3C 29.3): the second dimension of hardware-assisted
 * paging. A 4-level tree in host memory translates guest-physical frames (gfns) to host frames,
 * entries kept as two unsigned 32-bit halves like guest entries (pte.ts):
 *
 *   63..52  51......32 | 31.......12 11..10 9 8 7  6  5..3  2 1 0
 *   ignored  addr hi   |  addr lo    ign.   D A PS IPAT MT  X W R
 *
 * An entry is present when any of R, W, X is set. PS in an L2 (L3) entry maps 2 MiB (1 GiB) of
 * guest-physical space. The accessed and dirty flags of EPT (bits 8 and 9, an option of the
 * hardware) are not modelled: the VMM here never reads them.
 */

import { pteFrame } from "./pte.js";

export const EPT_R = 0x1;
export const EPT_W = 0x2;
export const EPT_X = 0x4;
export const EPT_RWX = EPT_R | EPT_W | EPT_X;
/** Memory type write-back (6) in bits 3..5, as Xen sets for RAM. */
export const EPT_MT_WB = 6 << 3;
export const EPT_PS = 0x80;

/** Whether an EPT entry maps anything (any of R, W, X). */
export function eptPresent(lo: number): boolean {
  return (lo & EPT_RWX) !== 0;
}

/** PS: an L2 (L3) EPT entry maps 2 MiB (1 GiB) of guest-physical space, not a table. */
export function eptLarge(lo: number): boolean {
  return (lo & EPT_PS) !== 0;
}

/** The frame an EPT entry points at (the next table, or the first frame of a leaf). */
export function eptFrame(lo: number, hi: number): number {
  return pteFrame(lo, hi);
}

/**
 * The access kinds (see access.ts) an EPT permission set allows: reads need R, writes W,
 * fetches X, at either privilege level (EPT does not know the guest's CPL).
 */
export function eptKindMask(perms: number): number {
  let mask = 0;
  if ((perms & EPT_R) !== 0) mask |= (1 << 0) | (1 << 3);
  if ((perms & EPT_W) !== 0) mask |= (1 << 1) | (1 << 4);
  if ((perms & EPT_X) !== 0) mask |= (1 << 2) | (1 << 5);
  return mask;
}

/** The EPT permission an access of `kind` needs. */
export function eptNeed(kind: number): number {
  const op = kind % 3;
  return op === 0 ? EPT_R : op === 1 ? EPT_W : EPT_X;
}

/** One-line description of an EPT entry, e.g. "R W X PS -> 0x200". */
export function describeEpte(lo: number, hi: number): string {
  const flags: string[] = [];
  if (lo & EPT_R) flags.push("R");
  if (lo & EPT_W) flags.push("W");
  if (lo & EPT_X) flags.push("X");
  if (eptLarge(lo)) flags.push("PS");
  return `${flags.join(" ") || "-"} -> 0x${eptFrame(lo, hi).toString(16)}`;
}
