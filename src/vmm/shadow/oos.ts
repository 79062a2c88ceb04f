/**
 * Out-of-sync L1 shadows (Xen's SHOPT_OUT_OF_SYNC, shipped on since Xen 3.3: G. Guida, "[PATCH
 * 0/4] Out-of-sync L1 shadows", xen-devel, June 2008; xen/arch/x86/mm/shadow/oos.c). A guest
 * L1 that takes a demand write fault is left writable and out of sync with its shadow, so that
 * the guest's later stores to it need no exit and no emulation; the shadow catches up (a
 * resync) when the guest could rely on it:
 * - a CR3 write resyncs every out-of-sync page of the vCPU (sh_update_cr3);
 * - INVLPG on an out-of-sync L1 clears only that address's shadow entry (sh_invlpg), and a
 *   fault may propagate one entry; neither resyncs;
 * - a page pushed out of the table (below) is resynced (shadow_unsync_evict);
 * - a page shadowed at another level is resynced first (shadow_promote);
 * - a new L4 or L3 shadow entry resyncs every page (shadow_resync_all), a new or changed L2
 *   shadow entry the L1 it links (shadow_set_l2e).
 *
 * Xen's rules kept here: only a page shadowed once, as an L1, goes out of sync (never L2..L4;
 * FL1 shadows are of guest superpages, not of tables); each vCPU holds at most SHADOW_OOS_PAGES
 * of them in a hash of 3 slots (mfn mod 3, or the next slot as a second chance; a page that
 * finds its home taken by a page at home pushes that one on, and whatever holds the slot it
 * needs is resynced and dropped); unsyncing copies the guest L1 into a snapshot page taken
 * from the shadow pool; a resync removes the page's writable mappings, flushes the TLB, walks
 * the present shadow entries and re-propagates those whose guest entry differs from the
 * snapshot (sh_resync_l1). The writable mappings of each page are remembered, two at most
 * (SHADOW_OOS_FIXUPS): a third takes the write right from the oldest (shadow_oos_fixup_evict).
 *
 * The invariant this keeps (check.ts): a present shadow entry of an out-of-sync L1 agrees with
 * the snapshot's entry (the guest's may have moved on); every other L1 shadow's with the guest's.
 * One vCPU per domain here, so one table (Xen keeps one per vCPU).
 */

import type { Gfn, Mfn } from "../../hw/addr.js";
import { isPresent, pteFrame } from "../../hw/pte.js";
import {
  C_SHADOW_OOS_FIXUP_ADD,
  C_SHADOW_OOS_FIXUP_EVICT,
  C_SHADOW_RESYNC,
  C_SHADOW_UNSYNC,
  C_SHADOW_UNSYNC_EVICT,
} from "../../metrics/counters.js";
import { SH_L1 } from "./page.js";
import { propagateLeaf } from "./propagate.js";
import type { ShadowPaging } from "./shadow.js";
import type { OosHooks } from "./tables.js";

/** Out-of-sync pages per vCPU: Xen's SHADOW_OOS_PAGES ("prime, please"), asm/mm.h. */
export const SHADOW_OOS_PAGES = 3;
/** resyncSlots(): every slot. */
export const ALL_SLOTS = (1 << SHADOW_OOS_PAGES) - 1;
/** Writable mappings remembered per out-of-sync page: Xen's SHADOW_OOS_FIXUPS. */
export const SHADOW_OOS_FIXUPS = 2;

export class OosTable implements OosHooks {
  /** Per slot: the guest frame out of sync, or -1. */
  readonly gfn = new Int32Array(SHADOW_OOS_PAGES).fill(-1);
  /** Per slot: its host frame (the hash key, as Xen's gmfn). */
  readonly mfn = new Int32Array(SHADOW_OOS_PAGES).fill(-1);
  /** Per slot: the pool frame holding the snapshot of the guest L1 (moves with its page). */
  readonly snapshot: Int32Array;
  /** Per slot, SHADOW_OOS_FIXUPS leaf locations (shadowMfn * 512 + index) mapping it writable. */
  private readonly fixup = new Float64Array(SHADOW_OOS_PAGES * SHADOW_OOS_FIXUPS).fill(-1);
  /** Per slot: the fixup to replace next. */
  private readonly fixupNext = new Uint8Array(SHADOW_OOS_PAGES);

  constructor(
    private readonly sh: ShadowPaging,
    snapshotFrames: readonly Mfn[],
  ) {
    if (snapshotFrames.length !== SHADOW_OOS_PAGES) {
      throw new RangeError(`out-of-sync shadows need ${SHADOW_OOS_PAGES} snapshot pages`);
    }
    this.snapshot = Int32Array.from(snapshotFrames);
  }

  /** The slot holding gfn, or -1. */
  slotOf(gfn: Gfn): number {
    for (let s = 0; s < SHADOW_OOS_PAGES; s++) if (this.gfn[s] === gfn) return s;
    return -1;
  }

  isOutOfSync(gfn: Gfn): boolean {
    return this.slotOf(gfn) >= 0;
  }

  /** The frame of gfn's snapshot, or -1 when gfn is in sync. */
  snapshotOf(gfn: Gfn): Mfn {
    const s = this.slotOf(gfn);
    return s < 0 ? -1 : this.snapshot[s];
  }

  /**
   * Let guest table gfn go out of sync after a demand write fault on it (sh_unsync), if it is
   * shadowed only once and as an L1 and paging is on. Returns whether it is out of sync now.
   */
  unsync(gfn: Gfn): boolean {
    if (this.slotOf(gfn) >= 0) return true;
    const shadows = this.sh.tables.shadowsOf(gfn);
    if (shadows.length !== 1 || shadows[0].type !== SH_L1 || !this.sh.cpu.paging) return false;
    const mfn = this.sh.p2m.lookup(gfn);
    if (mfn < 0) return false;
    this.add(gfn, mfn);
    this.sh.counters[C_SHADOW_UNSYNC]++;
    return true;
  }

  /** oos_hash_add: the home slot mfn mod 3 or, as a second chance, the next one. */
  private add(gfn: Gfn, mfn: Mfn): void {
    const home = mfn % SHADOW_OOS_PAGES;
    let slot = home;
    if (this.gfn[home] >= 0 && this.mfn[home] % SHADOW_OOS_PAGES === home) {
      // The occupant is at home: it moves on to the next slot, with its snapshot and fixups.
      slot = (home + 1) % SHADOW_OOS_PAGES;
    }
    if (this.gfn[slot] >= 0) {
      this.resyncSlots(1 << slot);
      this.sh.counters[C_SHADOW_UNSYNC_EVICT]++;
    }
    if (slot !== home) this.move(home, slot);
    this.gfn[home] = gfn;
    this.mfn[home] = mfn;
    this.clearFixups(home);
    const dcache = this.sh.cpu.dcache;
    dcache?.touchFrame(mfn);
    dcache?.touchFrame(this.snapshot[home]);
    this.sh.mem.copyFrame(this.snapshot[home], mfn);
  }

  /** Move slot `from` to the empty slot `to`, swapping snapshot frames. */
  private move(from: number, to: number): void {
    this.gfn[to] = this.gfn[from];
    this.mfn[to] = this.mfn[from];
    const snap = this.snapshot[to];
    this.snapshot[to] = this.snapshot[from];
    this.snapshot[from] = snap;
    for (let f = 0; f < SHADOW_OOS_FIXUPS; f++) {
      this.fixup[to * SHADOW_OOS_FIXUPS + f] = this.fixup[from * SHADOW_OOS_FIXUPS + f];
    }
    this.fixupNext[to] = this.fixupNext[from];
    this.gfn[from] = -1;
    this.mfn[from] = -1;
  }

  private clearFixups(slot: number): void {
    for (let f = 0; f < SHADOW_OOS_FIXUPS; f++) this.fixup[slot * SHADOW_OOS_FIXUPS + f] = -1;
    this.fixupNext[slot] = 0;
  }

  /**
   * A writable leaf at `loc` maps out-of-sync page gfn (oos_fixup_add): remember it; the
   * oldest of SHADOW_OOS_FIXUPS loses its write right to make room (no TLB flush: the page is
   * out of sync anyway, and every resync flushes).
   */
  fixupAdd(gfn: Gfn, loc: number): void {
    const s = this.slotOf(gfn);
    if (s < 0) return;
    this.sh.counters[C_SHADOW_OOS_FIXUP_ADD]++;
    const base = s * SHADOW_OOS_FIXUPS;
    for (let f = 0; f < SHADOW_OOS_FIXUPS; f++) if (this.fixup[base + f] === loc) return;
    const next = this.fixupNext[s];
    const old = this.fixup[base + next];
    if (old >= 0) {
      this.sh.tables.revokeWrite(old, this.mfn[s]);
      this.sh.counters[C_SHADOW_OOS_FIXUP_EVICT]++;
    }
    this.fixup[base + next] = loc;
    this.fixupNext[s] = (next + 1) % SHADOW_OOS_FIXUPS;
  }

  /** Record that shadow entry `index` of out-of-sync L1 gfn was propagated from (lo, hi). */
  snapshotSet(gfn: Gfn, index: number, lo: number, hi: number): void {
    const s = this.slotOf(gfn);
    if (s >= 0) this.sh.mem.write64(this.snapshot[s], index, lo, hi);
  }

  /** Bring gfn back into sync if it is out of sync (sh_resync). */
  resync(gfn: Gfn): void {
    const s = this.slotOf(gfn);
    if (s >= 0) this.resyncSlot(s);
  }

  /** Bring every out-of-sync page back into sync (sh_resync_all for this vCPU). */
  resyncAll(): void {
    this.resyncSlots(ALL_SLOTS);
  }

  /**
   * Resync the out-of-sync pages in the slots whose bits are set in `slots` (none for 0, every
   * one for ALL_SLOTS), in slot order. Every resync of a slot by number goes through here, the
   * eviction of unsync() included, so that the call is one with type feedback: the fault handler
   * calls this on every fault (0 unless it made a new L4 or L3 entry), and a resync reached there
   * for the first time in a fresh domain would otherwise deoptimize the handler.
   */
  resyncSlots(slots: number): void {
    for (let s = 0; s < SHADOW_OOS_PAGES; s++) {
      if (((slots >> s) & 1) !== 0 && this.gfn[s] >= 0) this.resyncSlot(s);
    }
  }

  /** gfn's L1 shadow is gone (oos_hash_remove): forget it without a resync. */
  forget(gfn: Gfn): void {
    const s = this.slotOf(gfn);
    if (s < 0) return;
    this.gfn[s] = -1;
    this.mfn[s] = -1;
  }

  /**
   * _sh_resync: take away the page's writable mappings (the remembered ones, then any other),
   * flush the TLB, and re-propagate the present shadow entries whose guest entry differs from
   * the snapshot.
   */
  private resyncSlot(s: number): void {
    const { tables, mem } = this.sh;
    const gfn = this.gfn[s];
    const mfn = this.mfn[s];
    const snap = this.snapshot[s];
    for (let f = 0; f < SHADOW_OOS_FIXUPS; f++) {
      const loc = this.fixup[s * SHADOW_OOS_FIXUPS + f];
      if (loc >= 0) tables.revokeWrite(loc, mfn);
    }
    this.gfn[s] = -1;
    this.mfn[s] = -1;
    tables.removeWriteAccess(gfn);
    tables.needFlush = true;
    this.sh.counters[C_SHADOW_RESYNC]++;
    const sp = tables.lookup(gfn, SH_L1);
    if (sp === null) return;
    const scratch = this.sh.scratch;
    for (let i = 0; i < 512; i++) {
      mem.read64(sp.mfn, i);
      if (!isPresent(mem.lo)) continue; // the next access faults and reads the guest's entry
      mem.read64(snap, i);
      const slo = mem.lo;
      const shi = mem.hi;
      mem.read64(mfn, i);
      const glo = mem.lo;
      const ghi = mem.hi;
      if (glo === slo && ghi === shi) continue;
      propagateLeaf(scratch, glo, ghi, 1, pteFrame(glo, ghi), this.sh, false);
      tables.setEntry(sp, i, scratch.lo, scratch.hi);
    }
  }

  /** The table's own consistency (for checks): each page shadowed once, as an L1, in its slot. */
  audit(): string | null {
    for (let s = 0; s < SHADOW_OOS_PAGES; s++) {
      const gfn = this.gfn[s];
      if (gfn < 0) continue;
      const mfn = this.mfn[s];
      if (this.sh.p2m.lookup(gfn) !== mfn) return `out-of-sync gfn ${gfn} is not at mfn ${mfn}`;
      const home = mfn % SHADOW_OOS_PAGES;
      if (s !== home && s !== (home + 1) % SHADOW_OOS_PAGES) {
        return `out-of-sync gfn ${gfn} (mfn ${mfn}) sits in slot ${s}`;
      }
      const shadows = this.sh.tables.shadowsOf(gfn);
      if (shadows.length !== 1 || shadows[0].type !== SH_L1) {
        return `out-of-sync gfn ${gfn} is not shadowed once, as an L1`;
      }
      if (this.slotOf(gfn) !== s) return `out-of-sync gfn ${gfn} is in two slots`;
    }
    return null;
  }
}
