/**
 * What the step API records of one access: every walk the vCPU made (the levels it read and the
 * result) and every exit to a VMM (why, and what the VMM did). Cold: records are made only while
 * Vcpu.trace and Vcpu.exitTrace are set, never on the measured paths.
 */

import type { Gva } from "./addr.js";
import type { NestedRef } from "./nested.js";

/** One walk: the root, each level read, the result. */
export interface WalkTrace {
  /** The root frame (under a VMM's software walk: the guest's root gfn). */
  root: number;
  levels: { level: number; tableMfn: number; index: number; lo: number; hi: number }[];
  /** WALK_OK, the #PF error code, or EPT_VIOLATION (2D walks, nested.ts). */
  result: number;
  /** A 2D walk's every reference, EPT reads included, in order (hardware-assisted paging). */
  nested?: NestedRef[];
}

/** One exit to a VMM: why, and what the VMM did. */
export interface ExitTrace {
  reason: "PF" | "CR3" | "INVLPG" | "EPT_VIOLATION";
  gva: Gva;
  /** "fixed", "injected #PF 0x..", "emulated", "loaded root mfn ..", "dropped" ... */
  outcome: string;
  /** For a #PF under shadow paging: the VMM's software walk of the guest's tables. */
  guestWalk?: WalkTrace;
}

/** What a walker (1D or 2D) keeps of the levels its last walk read. */
export interface WalkLevels {
  firstLevel: number;
  lastLevel: number;
  readonly tableMfn: Float64Array;
  readonly tableIdx: Int32Array;
  readonly entryLo: Uint32Array;
  readonly entryHi: Uint32Array;
}

/** The levels the last walk read, top down. */
export function walkLevels(w: WalkLevels): WalkTrace["levels"] {
  const levels: WalkTrace["levels"] = [];
  for (let level = w.firstLevel; level >= w.lastLevel; level--) {
    levels.push({
      level,
      tableMfn: w.tableMfn[level],
      index: w.tableIdx[level],
      lo: w.entryLo[level],
      hi: w.entryHi[level],
    });
  }
  return levels;
}
