/**
 * The P2M of a domain: gfn -> (mfn, type). Every gfn of the domain's boot size starts as
 * populate-on-demand: the VMM gives it a host frame the first time the guest touches it (as the
 * article describes). Its own memory is accounted as Xen's p2m pages would be: a radix tree with
 * one 4 KiB page per 512 gfns in use, and one per 512 of those above.
 *
 * What a touch of a gfn without a frame does depends on its type (resolve): populate-on-demand
 * gets a zeroed frame; a ballooned-out gfn follows the domain's policy ("populate" as KVM, ESX
 * and Xen PoD do, or "mmio" as plain Xen HVM, where it is not RAM); a gfn the host swapped out
 * gets a frame and its content back from the domain's swap file.
 *
 * Any change of an entry that had a frame goes through `replace`, which tells the paging mode to
 * drop every translation of the old frame first.
 */

import type { BalloonTouchPolicy } from "../config/scenario.js";
import type { Gfn, Mfn } from "../hw/addr.js";
import { digestWord } from "../hw/memory.js";
import { NO_TRACE, type TraceSink } from "../hw/step-trace.js";
import {
  C_BALLOON_TOUCH_POPULATE,
  C_COW_BREAKS,
  C_HOST_SWAP_INS,
  C_HOST_SWAP_OUTS,
  C_P2M_POPULATE,
} from "../metrics/counters.js";
import { type HostFrames, OWNER_DOMAIN, OWNER_VMM } from "./frames.js";

/** p2m types (Xen's p2m_type_t, reduced). */
export const P2M_INVALID = 0;
export const P2M_RAM_RW = 1;
export const P2M_POPULATE_ON_DEMAND = 2;
export const P2M_RAM_SHARED = 3;
export const P2M_RAM_PAGED = 4;
export const P2M_RAM_LOGDIRTY = 5;

export const P2M_TYPE_NAMES = [
  "invalid",
  "ram_rw",
  "populate_on_demand",
  "ram_shared",
  "ram_paged",
  "ram_logdirty",
];

/** resolve() results below zero: why gfn has no frame. */
/** gfn is not RAM of this domain (outside its boot size). */
export const NO_FRAME_NOT_RAM = -1;
/** The host has no frame left, even after reclaiming. */
export const NO_FRAME_HOST_FULL = -2;
/** gfn was ballooned out and the domain's policy treats it as MMIO. */
export const NO_FRAME_BALLOONED = -3;

/** Whether a guest may write through a mapping of this type without an exit. */
export function p2mWritable(type: number): boolean {
  return type === P2M_RAM_RW;
}

/** What the P2M needs of page sharing: letting go of one reference to a shared frame. */
export interface SharedRefs {
  put(mfn: Mfn): void;
  /**
   * If gfn's shared frame has no other reference, hand it back to the domain as its own frame
   * (no copy needed) and return true.
   */
  takeBack(mfn: Mfn, domain: number, gfn: Gfn): boolean;
}

/** The paging mode's hook: remove every translation (shadow entries, TLB entries) of `mfn`. */
export type DropMappings = (gfn: Gfn, mfn: Mfn) => void;

export class P2m {
  readonly mfn: Int32Array;
  readonly type: Uint8Array;
  /** gfns with an mfn. */
  populated = 0;
  /** gfns ballooned out (type invalid). */
  ballooned = 0;
  /** Frames of the P2M's own radix tree, allocated as gfns come into use. */
  readonly tablePages: number[] = [];
  private readonly leafUsed: Uint8Array;
  private readonly midUsed: Uint8Array;
  dropMappings: DropMappings = () => {};
  /** The paging mode's veto on paging a gfn out (a shadowed page table cannot be). */
  pinned: (gfn: Gfn) => boolean = () => false;
  /** Asked for host memory when the host has none left: frees some if it can. */
  reclaim: (() => boolean) | null = null;
  touchPolicy: BalloonTouchPolicy = "populate";
  /** Page sharing's references, when the host shares pages (ram_shared entries). */
  sharedRefs: SharedRefs | null = null;
  /** Where a traced step's events go (the domain's vCPU, set by its paging mode). */
  trace: TraceSink = NO_TRACE;
  /** The domain's swap file: the content of each gfn the host swapped out. */
  readonly swapFile = new Map<Gfn, number | Uint32Array>();

  constructor(
    readonly domain: number,
    readonly gfns: number,
    private readonly host: HostFrames,
    readonly counters: Float64Array,
  ) {
    this.mfn = new Int32Array(gfns).fill(-1);
    this.type = new Uint8Array(gfns).fill(P2M_POPULATE_ON_DEMAND);
    this.wasTable = new Uint8Array(gfns);
    this.leafUsed = new Uint8Array(Math.ceil(gfns / 512));
    this.midUsed = new Uint8Array(Math.ceil(gfns / 262144));
  }

  /** The mfn behind gfn, or -1. */
  lookup(gfn: Gfn): Mfn {
    return gfn >= 0 && gfn < this.gfns ? this.mfn[gfn] : -1;
  }

  /** Outputs of peek64. */
  lo = 0;
  hi = 0;

  /**
   * Read entry `index` of guest frame gfn into lo/hi without side effects (for checkers): from
   * its frame, from the swap file when it is swapped out, zero when it has no content.
   */
  peek64(gfn: Gfn, index: number): void {
    const mfn = this.lookup(gfn);
    const mem = this.host.mem;
    if (mfn >= 0) {
      mem.read64(mfn, index);
      this.lo = mem.lo;
      this.hi = mem.hi;
      return;
    }
    const saved = this.type[gfn] === P2M_RAM_PAGED ? this.swapFile.get(gfn) : undefined;
    if (saved === undefined) {
      this.lo = 0;
      this.hi = 0;
    } else if (typeof saved === "number") {
      this.lo = digestWord(saved, index);
      this.hi = 0;
    } else {
      this.lo = saved[2 * index];
      this.hi = saved[2 * index + 1];
    }
  }

  /** gfns swapped out to the domain's swap file. */
  get swappedOut(): number {
    return this.swapFile.size;
  }

  /**
   * The frame behind gfn for a guest access, giving it one if its type says so (first touch,
   * swap-in, a touched balloon page under "populate"). Returns the mfn or a NO_FRAME_* reason.
   */
  resolve(gfn: Gfn): Mfn {
    if (gfn < 0 || gfn >= this.gfns) return NO_FRAME_NOT_RAM;
    const existing = this.mfn[gfn];
    if (existing >= 0) return existing;
    const type = this.type[gfn];
    if (type === P2M_INVALID && this.touchPolicy === "mmio") return NO_FRAME_BALLOONED;
    const mfn = this.allocFrame(gfn);
    if (mfn < 0) return NO_FRAME_HOST_FULL;
    if (type === P2M_RAM_PAGED) {
      const saved = this.swapFile.get(gfn);
      if (saved === undefined) throw new Error(`p2m: gfn ${gfn} is paged but not in the swap file`);
      this.host.mem.restoreFrame(mfn, saved);
      this.swapFile.delete(gfn);
      this.counters[C_HOST_SWAP_INS]++;
    } else {
      if (type === P2M_INVALID) {
        this.ballooned--;
        this.counters[C_BALLOON_TOUCH_POPULATE]++;
      }
      this.counters[C_P2M_POPULATE]++;
    }
    this.set(gfn, mfn, P2M_RAM_RW);
    this.trace.events?.push({ kind: "p2m-populate", gfn, mfn, note: P2M_TYPE_NAMES[type] });
    return mfn;
  }

  /**
   * The frame behind gfn for a write: resolve, then break the sharing of a shared page (copy on
   * write: a frame of its own with the same content). Returns the mfn or a NO_FRAME_* reason.
   */
  resolveForWrite(gfn: Gfn): Mfn {
    const mfn = this.resolve(gfn);
    if (mfn < 0 || this.type[gfn] !== P2M_RAM_SHARED) return mfn;
    // The last reference: the frame becomes the domain's own again, as Xen's unshare does.
    if (this.sharedRefs?.takeBack(mfn, this.domain, gfn)) {
      this.replace(gfn, mfn, P2M_RAM_RW);
      this.counters[C_COW_BREAKS]++;
      this.trace.events?.push({ kind: "cow-break", gfn, mfn, count: mfn, note: "last" });
      return mfn;
    }
    const own = this.allocFrame(gfn);
    if (own < 0) return NO_FRAME_HOST_FULL;
    this.host.mem.copyFrame(own, mfn);
    this.replace(gfn, own, P2M_RAM_RW);
    this.sharedRefs?.put(mfn);
    this.counters[C_COW_BREAKS]++;
    this.trace.events?.push({ kind: "cow-break", gfn, mfn, count: own, note: "copy" });
    return own;
  }

  /** Let go of a frame an entry of `type` held: back to the host, or one reference fewer. */
  private dropFrame(type: number, mfn: Mfn): void {
    if (type === P2M_RAM_SHARED) this.sharedRefs?.put(mfn);
    else this.host.release(mfn);
  }

  /** A zeroed host frame to back gfn, reclaiming host memory once if there is none. */
  allocFrame(gfn: Gfn): Mfn {
    if (!this.ensureTable(gfn)) return -1;
    return this.allocReclaiming(OWNER_DOMAIN, gfn);
  }

  /**
   * Back the 512 gfns from gfnBase (2 MiB-aligned, every one still populate-on-demand with no
   * frame) with one aligned block of host frames at once, as Xen populates a superpage. Returns
   * the first mfn, or -1 when the block is not whole or the host has no free aligned block.
   */
  populateBlock(gfnBase: Gfn): Mfn {
    if (gfnBase % 512 !== 0 || gfnBase + 512 > this.gfns) return -1;
    for (let g = gfnBase; g < gfnBase + 512; g++) {
      if (this.type[g] !== P2M_POPULATE_ON_DEMAND || this.mfn[g] >= 0) return -1;
    }
    if (!this.ensureTable(gfnBase)) return -1;
    const base = this.host.allocBlock(this.domain, gfnBase);
    if (base < 0) return -1;
    for (let i = 0; i < 512; i++) this.set(gfnBase + i, base + i, P2M_RAM_RW);
    this.counters[C_P2M_POPULATE] += 512;
    return base;
  }

  /** A zeroed frame for the VMM's tables of this domain (EPT pages), reclaiming if need be. */
  allocVmmPage(): Mfn {
    return this.allocReclaiming(OWNER_VMM, -1);
  }

  releaseVmmPage(mfn: Mfn): void {
    this.host.release(mfn);
  }

  /** A host frame for `owner`, reclaiming host memory once if there is none; -1 if still none. */
  private allocReclaiming(owner: number, gfn: Gfn): Mfn {
    const mfn = this.host.alloc(owner, this.domain, gfn);
    if (mfn >= 0 || !this.reclaim?.()) return mfn;
    return this.host.alloc(owner, this.domain, gfn);
  }

  /**
   * Changes of entries the guest may already have used (replace, balloon operations): checkers
   * compare it before and after a step to know whether translations must be checked again.
   */
  changes = 0;

  /** Point gfn at another frame (or none), dropping every translation of the old one first. */
  replace(gfn: Gfn, mfn: Mfn, type: number): void {
    const old = this.mfn[gfn];
    if (old >= 0) this.dropMappings(gfn, old);
    this.set(gfn, mfn, type);
    this.changes++;
    this.host.p2mChanges++;
  }

  private set(gfn: Gfn, mfn: Mfn, type: number): void {
    const old = this.mfn[gfn];
    if (old >= 0 && mfn < 0) this.populated--;
    if (old < 0 && mfn >= 0) this.populated++;
    if (this.type[gfn] === P2M_RAM_SHARED) this.sharedGfns--;
    if (type === P2M_RAM_SHARED) this.sharedGfns++;
    this.mfn[gfn] = mfn;
    this.type[gfn] = type;
  }

  /** gfns mapped to shared frames (counted in `populated`, but not frames of the domain's own). */
  sharedGfns = 0;

  /** 1 where the paging mode has used the gfn as a page table: never shared (sticky). */
  readonly wasTable: Uint8Array;

  /**
   * Take gfn's frame away (the balloon's decrease_reservation): its translations go, the frame
   * goes back to the host and the gfn becomes invalid (a page table's shadows go too, through
   * dropMappings). Returns false if gfn is not a RAM page of this domain.
   */
  removePage(gfn: Gfn): boolean {
    if (gfn < 0 || gfn >= this.gfns) return false;
    const type = this.type[gfn];
    if (type === P2M_INVALID) return false;
    const mfn = this.mfn[gfn];
    if (type === P2M_RAM_PAGED) this.swapFile.delete(gfn);
    this.replace(gfn, -1, P2M_INVALID);
    if (mfn >= 0) this.dropFrame(type, mfn);
    this.ballooned++;
    return true;
  }

  /**
   * Give a ballooned-out gfn back to the domain (populate_physmap). Like every gfn of the
   * domain's RAM it becomes populate-on-demand: its frame comes at the guest's first touch, as
   * with KVM's virtio-balloon. (Xen's populate_physmap allocates at once, which commits host
   * memory the guest may never touch and, under an automatic policy, makes every grow step
   * take host memory back at once.) Returns false for a gfn outside the domain's RAM.
   */
  addPage(gfn: Gfn): boolean {
    if (gfn < 0 || gfn >= this.gfns) return false;
    if (this.type[gfn] !== P2M_INVALID) return true; // touched meanwhile: already RAM again
    this.ballooned--;
    this.set(gfn, -1, P2M_POPULATE_ON_DEMAND);
    this.changes++;
    this.host.p2mChanges++;
    return true;
  }

  /**
   * Give every gfn its frame now (a domain built whole, as Xen builds PV domains): the domain
   * builder's work, before the guest runs, so not counted as p2m_populate. False when the
   * host runs out.
   */
  populateAll(): boolean {
    for (let gfn = 0; gfn < this.gfns; gfn++) {
      if (this.mfn[gfn] >= 0) continue;
      const mfn = this.allocFrame(gfn);
      if (mfn < 0) return false;
      this.set(gfn, mfn, P2M_RAM_RW);
    }
    return true;
  }

  /** Whether the host may swap gfn out now: plain RAM that the paging mode does not pin. */
  canPageOut(gfn: Gfn): boolean {
    return this.type[gfn] === P2M_RAM_RW && this.mfn[gfn] >= 0 && !this.pinned(gfn);
  }

  /** Swap gfn out to the domain's swap file and give its frame back to the host. */
  pageOut(gfn: Gfn): void {
    if (!this.canPageOut(gfn)) throw new Error(`p2m: gfn ${gfn} cannot be paged out`);
    const mfn = this.mfn[gfn];
    this.swapFile.set(gfn, this.host.mem.saveFrame(mfn));
    this.replace(gfn, -1, P2M_RAM_PAGED);
    this.host.release(mfn);
    this.counters[C_HOST_SWAP_OUTS]++;
  }

  /**
   * Give every frame back to the host (the domain is destroyed): RAM, the P2M's own pages; the
   * swap file is dropped. Nothing is mapped any more (the domain never runs again).
   */
  destroy(): void {
    for (let gfn = 0; gfn < this.gfns; gfn++) {
      const mfn = this.mfn[gfn];
      if (mfn >= 0) this.dropFrame(this.type[gfn], mfn);
      this.mfn[gfn] = -1;
      this.type[gfn] = P2M_INVALID;
    }
    this.populated = 0;
    this.ballooned = this.gfns;
    this.swapFile.clear();
    for (const mfn of this.tablePages) this.host.release(mfn);
    this.tablePages.length = 0;
  }

  /** Allocate the radix-tree pages that the entry of gfn lives in. */
  private ensureTable(gfn: Gfn): boolean {
    if (this.tablePages.length === 0 && !this.take()) return false; // the root
    const mid = Math.floor(gfn / 262144);
    if (this.midUsed[mid] === 0) {
      if (!this.take()) return false;
      this.midUsed[mid] = 1;
    }
    const leaf = Math.floor(gfn / 512);
    if (this.leafUsed[leaf] === 0) {
      if (!this.take()) return false;
      this.leafUsed[leaf] = 1;
    }
    return true;
  }

  private take(): boolean {
    const mfn = this.allocReclaiming(OWNER_VMM, -1);
    if (mfn < 0) return false;
    this.tablePages.push(mfn);
    return true;
  }
}
