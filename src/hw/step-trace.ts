/**
 * What the step API records of one access: every walk the vCPU made (the levels it read and the
 * result) and every event of the hardware, the VMM and the guest kernel in order (exits, faults,
 * shadows, P2M changes, hypercalls). Cold: records are made only while Vcpu.trace and
 * Vcpu.events are set (by the step API), each behind one null check on a slow path (a walk, a
 * fault handler, a P2M change), never on the TLB-hit path.
 */

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

/**
 * What happened during a traced step, in order, as the component that did it recorded it (the
 * vCPU, the VMM's fault handlers, the P2M, the shadow tables, the hypercall handlers, the guest
 * kernel). The step API turns these into sentences (api/story.ts). Every field is a plain
 * number in its own space (gva, gfn, mfn) or a short note.
 */
export type TraceEventKind =
  /** The hardware walked a table tree: `index` is the walk's place in Vcpu.trace, `code` its result. */
  | "walk"
  /** A #PF left the guest for the VMM: `gva`, `code` (error code). */
  | "pf-exit"
  /** The VMM's software walk of the guest's tables: `walk`, `code` (its result). */
  | "guest-walk"
  /** The guest's own tables do not allow the access: the fault goes to the guest (`code`). */
  | "true-fault"
  /** The guest's tables allow the access: the VMM fixed the shadow (`gva`, `gfn`, `mfn`). */
  | "hidden-fault"
  /** A new shadow of guest table `gfn` at `level` (`note` "fl1" for a splintered superpage), in pool frame `mfn`. */
  | "shadow-new"
  /** Guest table `gfn` (frame `mfn`) write-protected: `count` writable mappings made read-only. */
  | "write-protect"
  /** A shadow entry written: table `mfn` entry `index` at `level` = lo/hi, for `gva`, from guest frame `gfn`. */
  | "shadow-entry"
  /** The P2M gave `gfn` a host frame `mfn` now; `note` its type before. */
  | "p2m-populate"
  /** A trapped guest write to table `gfn` (frame `mfn`) entry `index`: old and new values; `note` the operation. */
  | "emulate-write"
  /** Entries `index`..`count` of every shadow of `gfn` recomputed; `shadows` which. */
  | "revalidate"
  /** Every shadow of `gfn` removed; `note` why. */
  | "unshadow"
  /** Shadow pool reclaim: `count` pages freed; `note` the stage. */
  | "shadow-reclaim"
  /** A write to shared `gfn` (shared frame `mfn`): `note` "copy" (new frame `count`) or "last". */
  | "cow-break"
  /** Page sharing merged `gfn` into shared frame `mfn`. */
  | "share-merge"
  /** memory_op from the balloon driver: `note` the op, `count` pages done, `gfn` the first. */
  | "balloon"
  /** An EPT violation for `gfn`: `note` the access and the fix, `mfn` the frame mapped. */
  | "ept-violation"
  /** A PV hypercall: `note` its name and arguments, `code` the answer (0 or -errno). */
  | "hypercall"
  /** A CR3 write the VMM saw: `gfn` the guest's root, `mfn` the root loaded. */
  | "cr3"
  /** An INVLPG the VMM saw: `gva`, `count` 1 when a shadow leaf was dropped. */
  | "invlpg"
  /** A #PF bounced straight to the guest (PV), `gva`, `code`. */
  | "pf-bounce"
  /**
   * The guest kernel handled a #PF at `gva`: `note` how, `index` the process's PML4 gfn (the
   * step API reads the gfn mapped, with no side effect, and sets `gfn`).
   */
  | "guest-fault"
  /** The guest kernel ended process `count` (`note` its name): invisible to the VMM. */
  | "process-exit";

export interface TraceEvent {
  kind: TraceEventKind;
  gva?: number;
  gfn?: number;
  mfn?: number;
  level?: number;
  index?: number;
  code?: number;
  count?: number;
  lo?: number;
  hi?: number;
  oldLo?: number;
  oldHi?: number;
  note?: string;
  walk?: WalkTrace;
  /** Shadow pages touched (revalidate): their level and frame. */
  shadows?: { level: number; mfn: number }[];
}

/** Where components without a vCPU of their own (P2M, shadow tables) record: the vCPU. */
export interface TraceSink {
  /** Set by the step API while a step is traced; null otherwise (nothing is recorded). */
  events: TraceEvent[] | null;
}

/** A sink that never records, until a paging mode points a component at its vCPU. */
export const NO_TRACE: TraceSink = Object.freeze({ events: null });
