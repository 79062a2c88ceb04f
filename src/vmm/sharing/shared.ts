/**
 * Shared frames: host frames that back gfns of several domains (or several gfns of one) with
 * the same content, read-only, with a reference count (Xen's mem_sharing, KSM's stable pages).
 * A merge points a gfn at a shared frame and frees its own; the first merge of a content turns
 * one of the duplicates' frames into the shared frame. A write breaks the sharing (the P2M's
 * resolveForWrite); when the last reference goes, the shared frame is freed.
 *
 * pages_shared counts shared frames; pages_sharing the references beyond the first of each,
 * which is the memory saved (KSM's definitions).
 */

import type { Gfn, Mfn } from "../../hw/addr.js";
import { C_PAGES_MERGED } from "../../metrics/counters.js";
import { type HostFrames, OWNER_DOMAIN, OWNER_SHARED } from "../frames.js";
import { P2M_RAM_SHARED, type P2m, type SharedRefs } from "../p2m.js";

export class SharedFrames implements SharedRefs {
  /** References to each shared frame (0: not shared). */
  readonly refs: Int32Array;
  /** 1 for a shared frame: what a software walk of guest tables may not write (Walker.readOnly). */
  readonly isShared: Uint8Array;
  /** Shared frames now. */
  pagesShared = 0;
  /** References beyond the first of each shared frame: frames saved. */
  pagesSharing = 0;
  /** Told when a shared frame is freed (the scanner forgets it). */
  onFree: (mfn: Mfn) => void = () => {};

  constructor(private readonly frames: HostFrames) {
    this.refs = new Int32Array(frames.frames);
    this.isShared = new Uint8Array(frames.frames);
  }

  /**
   * Whether gfn may be merged: plain RAM with a frame of its own that the paging mode has never
   * used as a page table (a guest table the VMM has seen is never shared).
   */
  static candidate(p2m: P2m, gfn: Gfn): boolean {
    // What the host could swap out (plain RAM of its own, not pinned), less former tables.
    return p2m.wasTable[gfn] === 0 && p2m.canPageOut(gfn);
  }

  /**
   * Turn gfn's own frame into a shared frame with one reference: its mappings go (they may be
   * writable), so that it is mapped read-only from now on. Returns the frame.
   */
  promote(p2m: P2m, gfn: Gfn): Mfn {
    const mfn = p2m.mfn[gfn];
    if (!SharedFrames.candidate(p2m, gfn)) throw new Error(`sharing: gfn ${gfn} cannot be shared`);
    p2m.replace(gfn, mfn, P2M_RAM_SHARED);
    this.frames.transfer(mfn, OWNER_SHARED, -1);
    this.refs[mfn] = 1;
    this.isShared[mfn] = 1;
    this.pagesShared++;
    p2m.counters[C_PAGES_MERGED]++;
    p2m.trace.events?.push({ kind: "share-merge", gfn, mfn, note: "first" });
    return mfn;
  }

  /** Point gfn at shared frame `shared` (same content, checked by the caller); free its frame. */
  join(p2m: P2m, gfn: Gfn, shared: Mfn): void {
    if (this.refs[shared] === 0) throw new Error(`sharing: mfn ${shared} is not shared`);
    if (!SharedFrames.candidate(p2m, gfn)) throw new Error(`sharing: gfn ${gfn} cannot be shared`);
    const own = p2m.mfn[gfn];
    p2m.replace(gfn, shared, P2M_RAM_SHARED);
    this.frames.release(own);
    this.refs[shared]++;
    this.pagesSharing++;
    p2m.counters[C_PAGES_MERGED]++;
    p2m.trace.events?.push({ kind: "share-merge", gfn, mfn: shared, count: own, note: "join" });
  }

  takeBack(mfn: Mfn, domain: number, gfn: Gfn): boolean {
    if (this.refs[mfn] !== 1) return false;
    this.refs[mfn] = 0;
    this.isShared[mfn] = 0;
    this.pagesShared--;
    this.onFree(mfn);
    this.frames.transfer(mfn, OWNER_DOMAIN, domain, gfn);
    return true;
  }

  /** One reference fewer (a COW break, a ballooned or destroyed gfn); free the frame at none. */
  put(mfn: Mfn): void {
    const n = --this.refs[mfn];
    if (n < 0) throw new Error(`sharing: mfn ${mfn} has no reference to drop`);
    if (n > 0) {
      this.pagesSharing--;
      return;
    }
    this.pagesShared--;
    this.isShared[mfn] = 0;
    this.onFree(mfn);
    this.frames.release(mfn);
  }

  /** Whether mfn is a shared frame (for checks). */
  owns(mfn: Mfn): boolean {
    return this.frames.owner[mfn] === OWNER_SHARED && this.refs[mfn] > 0;
  }
}
