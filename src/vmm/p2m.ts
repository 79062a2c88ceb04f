/**
 * The P2M of a domain: gfn -> (mfn, type), filled on demand the first time the guest touches a
 * gfn (as the article describes: the VMM allocates a host page when the guest first uses a
 * guest page). Its own memory is accounted as Xen's p2m pages would be: a radix tree with one
 * 4 KiB page per 512 gfns in use, and one per 512 of those above.
 *
 * Any change of an entry that was mapped (balloon, sharing, host swap) goes through `replace`,
 * which tells the paging mode to drop every translation of the old frame first.
 */

import type { Gfn, Mfn } from "../hw/addr.js";
import { C_P2M_POPULATE } from "../metrics/counters.js";
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

/** Whether a guest may write through a mapping of this type without an exit. */
export function p2mWritable(type: number): boolean {
  return type === P2M_RAM_RW;
}

/** The paging mode's hook: remove every translation (shadow entries, TLB entries) of `mfn`. */
export type DropMappings = (gfn: Gfn, mfn: Mfn) => void;

export class P2m {
  readonly mfn: Int32Array;
  readonly type: Uint8Array;
  /** gfns with an mfn. */
  populated = 0;
  /** Frames of the P2M's own radix tree, allocated as gfns come into use. */
  readonly tablePages: number[] = [];
  private readonly leafUsed: Uint8Array;
  private readonly midUsed: Uint8Array;
  dropMappings: DropMappings = () => {};

  constructor(
    readonly domain: number,
    readonly gfns: number,
    private readonly host: HostFrames,
    private readonly counters: Float64Array,
  ) {
    this.mfn = new Int32Array(gfns).fill(-1);
    this.type = new Uint8Array(gfns);
    this.leafUsed = new Uint8Array(Math.ceil(gfns / 512));
    this.midUsed = new Uint8Array(Math.ceil(gfns / 262144));
  }

  /** The mfn behind gfn, or -1. */
  lookup(gfn: Gfn): Mfn {
    return gfn >= 0 && gfn < this.gfns ? this.mfn[gfn] : -1;
  }

  /**
   * Give gfn a fresh zeroed host frame (first touch). Returns the mfn, or -1 when gfn is not
   * RAM of this domain or the host is out of memory.
   */
  populate(gfn: Gfn): Mfn {
    if (gfn < 0 || gfn >= this.gfns) return -1;
    const existing = this.mfn[gfn];
    if (existing >= 0) return existing;
    if (!this.ensureTable(gfn)) return -1;
    const mfn = this.host.alloc(OWNER_DOMAIN, this.domain, gfn);
    if (mfn < 0) return -1;
    this.mfn[gfn] = mfn;
    this.type[gfn] = P2M_RAM_RW;
    this.populated++;
    this.counters[C_P2M_POPULATE]++;
    return mfn;
  }

  /** Point gfn at another frame (or none), dropping every translation of the old one first. */
  replace(gfn: Gfn, mfn: Mfn, type: number): void {
    const old = this.mfn[gfn];
    if (old >= 0) this.dropMappings(gfn, old);
    if (old >= 0 && mfn < 0) this.populated--;
    if (old < 0 && mfn >= 0) this.populated++;
    this.mfn[gfn] = mfn;
    this.type[gfn] = type;
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
    const mfn = this.host.alloc(OWNER_VMM, this.domain);
    if (mfn < 0) return false;
    this.tablePages.push(mfn);
    return true;
  }
}
