/**
 * Page types and their counts for PV direct paging, after Xen's arch/x86/mm.c. Every frame a PV
 * guest can reach has a type: an L1..L4 page table, or a writable page (mapped writable
 * somewhere), or none; and a type count (the references that need that type: links from the
 * table above, writable mappings, pins, the loaded base pointer). The rules that make direct
 * paging safe:
 * - a frame changes type only when its type count is 0 (getPageType);
 * - on a page-table type's 0 -> 1 transition the whole page is validated: every present entry
 *   must be allowed (getEntry), and takes the references it needs; on 1 -> 0 they are given back;
 * - a writable L1 entry needs the writable type of its frame, so a frame typed as a page table
 *   is never mapped writable, and a frame mapped writable can never become a page table;
 * - an entry may point only at a frame the domain owns.
 *
 * Per-frame state is kept in typed arrays indexed by mfn, for the whole host (as Xen's
 * frame_table): see PvFrameTypes. One PvMm per PV domain applies the rules for that domain.
 */

import type { Mfn } from "../../hw/addr.js";
import { EBUSY, EINVAL, EPERM } from "../../hw/hypercall.js";
import type { HostMemory } from "../../hw/memory.js";
import {
  isLarge,
  isPresent,
  isWritable,
  PTE_HI_RESERVED,
  PTE_P,
  PTE_RW,
  pteFrame,
} from "../../hw/pte.js";
import {
  C_NEED_FLUSH_TLB_FLUSH,
  C_PV_PAGE_VALIDATIONS,
  C_PV_VALIDATION_FAILURES,
} from "../../metrics/counters.js";
import { type HostFrames, OWNER_DOMAIN } from "../frames.js";

/** Page types (Xen's PGT_*): 1..4 are the page-table levels. */
export const PGT_NONE = 0;
export const PGT_L1 = 1;
export const PGT_L2 = 2;
export const PGT_L3 = 3;
export const PGT_L4 = 4;
export const PGT_WRITABLE = 7;

export const PGT_NAMES = ["none", "l1", "l2", "l3", "l4", "", "", "writable"];

/** L4 slots Xen keeps for itself (0xffff800000000000 .. 0xffff87ffffffffff): not the guest's. */
export const XEN_L4_FIRST = 256;
export const XEN_L4_END = 272;

export function isXenL4Slot(index: number): boolean {
  return index >= XEN_L4_FIRST && index < XEN_L4_END;
}

/** The frame table of PV direct paging: per host frame, its type, counts and pin. */
export class PvFrameTypes {
  /** PGT_* of each frame (meaningful while the frame belongs to a PV domain). */
  readonly type: Uint8Array;
  /** Type count: references that need the frame's type. */
  readonly count: Int32Array;
  /**
   * General references: present entries of validated tables that point at the frame. A frame
   * with any is never taken from the domain (Xen keeps such a page until its last reference).
   */
  readonly refs: Int32Array;
  /** 1 when the guest pinned the frame as a page table (MMUEXT_PIN_Ln_TABLE). */
  readonly pinned: Uint8Array;
  /**
   * The owner's flush generation when the frame's last writable mapping went (Xen's
   * tlbflush_timestamp): a TLB may still hold it until the next full flush.
   */
  readonly stamp: Int32Array;

  constructor(frames: number) {
    this.type = new Uint8Array(frames);
    this.count = new Int32Array(frames);
    this.refs = new Int32Array(frames);
    this.pinned = new Uint8Array(frames);
    this.stamp = new Int32Array(frames).fill(-1);
  }

  /** Forget a frame that leaves its domain (its counts must already be 0). */
  reset(mfn: Mfn): void {
    this.type[mfn] = PGT_NONE;
    this.count[mfn] = 0;
    this.refs[mfn] = 0;
    this.pinned[mfn] = 0;
    this.stamp[mfn] = -1;
  }
}

/** The rules of PV page types for one domain. Results are 0 or a negative errno, as Xen's. */
export class PvMm {
  /**
   * Full TLB flushes of the domain's vCPU made by the VMM (Xen's tlbflush clock, per domain):
   * a frame whose stamp equals it may still be in a TLB.
   */
  flushGen = 0;
  /** Flush every TLB entry of the domain (set by the paging mode: its vCPU). */
  flushAll: () => void = () => {};

  constructor(
    readonly mem: HostMemory,
    readonly frames: HostFrames,
    readonly t: PvFrameTypes,
    readonly domain: number,
    readonly counters: Float64Array,
  ) {}

  /** Whether the domain owns mfn as its RAM. */
  owns(mfn: Mfn): boolean {
    return (
      mfn >= 0 &&
      mfn < this.frames.frames &&
      this.frames.owner[mfn] === OWNER_DOMAIN &&
      this.frames.domainOf(mfn) === this.domain
    );
  }

  /** Flush the domain's TLB and advance its flush clock. */
  flush(): void {
    this.flushGen++;
    this.flushAll();
  }

  /**
   * Take a reference of `type` on mfn (Xen's get_page_type). At count 0 the type may change;
   * a page-table type is validated on its 0 -> 1 transition. Type mismatch: -EINVAL.
   */
  getPageType(mfn: Mfn, type: number): number {
    const t = this.t;
    const count = t.count[mfn];
    if (count > 0) {
      if (t.type[mfn] !== type) return -EINVAL;
      t.count[mfn] = count + 1;
      return 0;
    }
    const old = t.type[mfn];
    if (old !== type) {
      // Before a frame changes type, no TLB or paging-structure cache may still hold what it
      // was: a writable mapping of a new table, or (with the caches) a table that is now data.
      // Xen's _get_page_type flushes likewise on any type change since the stamp.
      if (old !== PGT_NONE && t.stamp[mfn] === this.flushGen) {
        this.counters[C_NEED_FLUSH_TLB_FLUSH]++;
        this.flush();
      }
      t.type[mfn] = type;
    }
    t.count[mfn] = 1;
    if (type === PGT_WRITABLE) return 0;
    this.counters[C_PV_PAGE_VALIDATIONS]++;
    const rc = this.validate(mfn, type);
    if (rc < 0) t.count[mfn] = 0;
    return rc;
  }

  /** Drop a type reference (put_page_type); at 0 a page table gives back its entries' refs. */
  putPageType(mfn: Mfn): void {
    const t = this.t;
    const count = --t.count[mfn];
    if (count < 0) throw new Error(`pv: type count underflow on mfn ${mfn}`);
    if (count > 0) return;
    const type = t.type[mfn];
    // Stamped for every type (free_page_type does so for tables too): see getPageType.
    t.stamp[mfn] = this.flushGen;
    if (type >= PGT_L1 && type <= PGT_L4) this.devalidate(mfn, type);
  }

  /** Whether mfn is a page table in use (typed L1..L4 with a nonzero count). */
  isTable(mfn: Mfn): boolean {
    const type = this.t.type[mfn];
    return this.t.count[mfn] > 0 && type >= PGT_L1 && type <= PGT_L4;
  }

  /** Validate every entry of a new page table (alloc_lN_table); on failure undo what was taken. */
  private validate(mfn: Mfn, level: number): number {
    const mem = this.mem;
    for (let i = 0; i < 512; i++) {
      mem.read64(mfn, i);
      const lo = mem.lo;
      const hi = mem.hi;
      if (!isPresent(lo)) continue;
      const rc = level === PGT_L4 && isXenL4Slot(i) ? -EINVAL : this.getEntry(level, lo, hi);
      if (rc < 0) {
        for (let j = 0; j < i; j++) {
          mem.read64(mfn, j);
          this.putEntry(level, mem.lo, mem.hi);
        }
        return rc;
      }
    }
    return 0;
  }

  /** Give back the references of every entry (free_lN_table). */
  private devalidate(mfn: Mfn, level: number): void {
    const mem = this.mem;
    for (let i = 0; i < 512; i++) {
      mem.read64(mfn, i);
      this.putEntry(level, mem.lo, mem.hi);
    }
  }

  /**
   * The references a present entry at `level` needs (get_page_from_lNe): its frame must be the
   * domain's; an L1 entry that is writable takes the writable type, an L2..L4 entry the type of
   * the level below. Xen's answers: a frame beyond RAM in an L1 entry is I/O space (-EPERM),
   * someone else's or free frame in an L1 entry -EBUSY, in a higher entry -EINVAL; superpages
   * and reserved bits -EINVAL.
   */
  getEntry(level: number, lo: number, hi: number): number {
    if (!isPresent(lo)) return 0;
    if ((hi & PTE_HI_RESERVED) !== 0) return -EINVAL;
    const mfn = pteFrame(lo, hi);
    if (level === PGT_L1) {
      if (mfn >= this.frames.frames) return -EPERM;
      if (!this.owns(mfn)) return -EBUSY;
      if (isWritable(lo) && this.getPageType(mfn, PGT_WRITABLE) < 0) return -EBUSY;
      this.t.refs[mfn]++;
      return 0;
    }
    // No superpages for PV guests (PS in L2/L3, reserved in L4).
    if (isLarge(lo)) return -EINVAL;
    if (!this.owns(mfn)) return -EINVAL;
    const rc = this.getPageType(mfn, level - 1);
    if (rc < 0) return rc;
    this.t.refs[mfn]++;
    return 0;
  }

  /** Give back what getEntry took for this (present) entry (put_page_from_lNe). */
  putEntry(level: number, lo: number, hi: number): void {
    if (!isPresent(lo)) return;
    const mfn = pteFrame(lo, hi);
    this.t.refs[mfn]--;
    if (level > PGT_L1 || isWritable(lo)) this.putPageType(mfn);
  }

  /**
   * Change entry `index` of the validated table `tableMfn` of `level` (mod_lN_entry): the new
   * entry's references are taken before the old one's are given back, so an update that keeps
   * a frame mapped never drops its type in between. Refused: nothing changes.
   */
  modEntry(tableMfn: Mfn, index: number, level: number, lo: number, hi: number): number {
    if (level === PGT_L4 && isXenL4Slot(index)) return this.refuse(-EINVAL);
    const mem = this.mem;
    mem.read64(tableMfn, index);
    const oldLo = mem.lo;
    const oldHi = mem.hi;
    const keep = PTE_P | PTE_RW;
    if (
      isPresent(oldLo) &&
      isPresent(lo) &&
      pteFrame(oldLo, oldHi) === pteFrame(lo, hi) &&
      (oldLo & keep) === (lo & keep) &&
      isLarge(oldLo) === isLarge(lo) &&
      (hi & PTE_HI_RESERVED) === 0
    ) {
      // The same frame with the same rights (A/D, NX, caching bits change): no reference moves.
      mem.write64(tableMfn, index, lo, hi);
      return 0;
    }
    const rc = this.getEntry(level, lo, hi);
    if (rc < 0) return this.refuse(rc);
    mem.write64(tableMfn, index, lo, hi);
    this.putEntry(level, oldLo, oldHi);
    return 0;
  }

  /** Count a refusal by validation (one per refused update, pin or base pointer). */
  refuse(rc: number): number {
    this.counters[C_PV_VALIDATION_FAILURES]++;
    return rc;
  }
}
