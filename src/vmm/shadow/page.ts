/**
 * A shadow page: a host frame from the domain's shadow pool holding 512 shadow entries for one
 * guest page-table page (or, for FL1, for one guest 2 MiB page), keyed by (gfn, type) as in Xen.
 * Shadow entries are ordinary x86-64 entries holding mfns, so the hardware walks them.
 */

import type { Gfn, Mfn } from "../../hw/addr.js";

/** Shadow types for a 64-bit guest (Xen's SH_type_*). */
export const SH_L1 = 1;
/**
 * An L1 shadow splintering a guest 2 MiB page into 4 KiB entries, keyed by its first gfn: one
 * for guest 2 MiB entries whose D bit is clear (its leaves are never writable, so the first write
 * faults and sets D), one for those with D set. Two guest mappings of the same 2 MiB of frames
 * with different D bits so never share leaves.
 */
export const SH_FL1 = 2;
export const SH_FL1_DIRTY = 6;
export const SH_L2 = 3;
export const SH_L3 = 4;
export const SH_L4 = 5;

export const SH_TYPE_NAMES = ["", "l1", "fl1", "l2", "l3", "l4", "fl1_dirty"] as const;

/** Whether a shadow type splinters a guest 2 MiB page. */
export function isFl1(type: number): boolean {
  return type === SH_FL1 || type === SH_FL1_DIRTY;
}

/** The FL1 type for a guest 2 MiB entry with these low bits (by its D bit). */
export function fl1TypeFor(guestLo: number): number {
  return (guestLo & 0x40) !== 0 ? SH_FL1_DIRTY : SH_FL1;
}

/** The shadow type that shadows a guest table of paging level `level` (1..4). */
export function shadowTypeForLevel(level: number): number {
  return level === 1 ? SH_L1 : level === 2 ? SH_L2 : level === 3 ? SH_L3 : SH_L4;
}

/** The paging level a shadow type sits at (FL1 is level 1). */
export function levelOfType(type: number): number {
  return type === SH_L1 || isFl1(type) ? 1 : type === SH_L2 ? 2 : type === SH_L3 ? 3 : 4;
}

/** Hash key of (gfn, type). */
export function shadowKey(gfn: Gfn, type: number): number {
  return gfn * 8 + type;
}

export class ShadowPage {
  /** Parent shadow entries pointing at this page, as parentMfn * 512 + index. */
  readonly parents: number[] = [];
  /** Top-level shadows are pinned (kept while unreferenced) until reclaim or unshadow. */
  pinned = false;
  /** Whether some vCPU has it loaded as its root. */
  inUse = false;
  /** LRU list of pinned top-level shadows (most recent at the head). */
  lruPrev: ShadowPage | null = null;
  lruNext: ShadowPage | null = null;
  /** KVM-style write flooding: emulated writes since the page was last used by a fault. */
  floodCount = 0;
  /** The paging level it sits at (levelOfType), kept: every entry write asks. */
  readonly level: number;

  constructor(
    readonly mfn: Mfn,
    readonly gfn: Gfn,
    readonly type: number,
    /** Its frame's place in the domain's shadow pool (the reverse map names entries by it). */
    readonly slot = 0,
  ) {
    this.level = levelOfType(type);
  }

  /** Whether this shadows a guest page table (so the guest page is write-protected). */
  get shadowsTable(): boolean {
    return !isFl1(this.type);
  }
}
