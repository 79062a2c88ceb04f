/**
 * The host's frame allocator: every machine frame has exactly one owner at any time, so that the
 * accounting balances (invariant 3) and a frame can be traced to whoever holds it. The m2p
 * table (machine to phys) gives the gfn a domain frame backs, as Xen's does.
 */

import type { Gfn, Mfn } from "../hw/addr.js";
import type { HostMemory } from "../hw/memory.js";

/** Who owns a frame. */
export const OWNER_FREE = 0;
/** A domain's RAM (backs one gfn of one domain). */
export const OWNER_DOMAIN = 1;
/** A page of a domain's shadow pool (free in the pool or holding a shadow). */
export const OWNER_SHADOW = 2;
/** VMM tables: the P2M's own pages, EPT tables. */
export const OWNER_VMM = 3;
/** A frame shared read-only by several domains (page sharing). */
export const OWNER_SHARED = 4;

export const OWNER_NAMES = ["free", "domain", "shadow", "vmm", "shared"] as const;

export class HostFrames {
  readonly frames: number;
  /** Owner kind of each frame (OWNER_*). */
  readonly owner: Uint8Array;
  /** The domain that owns a domain, shadow or VMM frame (-1 for none). */
  readonly ownerDomain: Int16Array;
  /** m2p: the gfn a domain frame backs, -1 otherwise. */
  readonly m2p: Int32Array;
  /** Frames per owner kind. */
  readonly byOwner = new Float64Array(OWNER_NAMES.length);
  private readonly freeList: Int32Array;
  private freeTop = 0;
  /** Highest number of frames in use at once. */
  peakUsed = 0;

  constructor(readonly mem: HostMemory) {
    this.frames = mem.frames;
    this.owner = new Uint8Array(this.frames);
    this.ownerDomain = new Int16Array(this.frames).fill(-1);
    this.m2p = new Int32Array(this.frames).fill(-1);
    this.freeList = new Int32Array(this.frames);
    // Low frames are handed out first.
    for (let mfn = this.frames - 1; mfn >= 0; mfn--) this.freeList[this.freeTop++] = mfn;
    this.byOwner[OWNER_FREE] = this.frames;
  }

  get free(): number {
    return this.freeTop;
  }

  get used(): number {
    return this.frames - this.freeTop;
  }

  /**
   * A zeroed frame for `owner` (domain `domain`, backing `gfn` for domain RAM), or -1 when the
   * host has none left. Frames are scrubbed before reuse, as Xen does, so no domain ever sees
   * another's data.
   */
  alloc(owner: number, domain: number, gfn: Gfn = -1): Mfn {
    if (this.freeTop === 0) return -1;
    const mfn = this.freeList[--this.freeTop];
    this.mem.zeroFrame(mfn);
    this.owner[mfn] = owner;
    this.ownerDomain[mfn] = domain;
    this.m2p[mfn] = gfn;
    this.byOwner[OWNER_FREE]--;
    this.byOwner[owner]++;
    if (this.used > this.peakUsed) this.peakUsed = this.used;
    return mfn;
  }

  /** Hand an allocated frame to another owner, keeping its content (page sharing). */
  transfer(mfn: Mfn, owner: number, domain: number, gfn: Gfn = -1): void {
    const from = this.owner[mfn];
    if (from === OWNER_FREE) throw new Error(`host frames: transfer of free mfn ${mfn}`);
    this.byOwner[from]--;
    this.byOwner[owner]++;
    this.owner[mfn] = owner;
    this.ownerDomain[mfn] = domain;
    this.m2p[mfn] = gfn;
  }

  /** Give a frame back. Freeing a free frame is a VMM bug and throws. */
  release(mfn: Mfn): void {
    const owner = this.owner[mfn];
    if (owner === OWNER_FREE) throw new Error(`host frames: double free of mfn ${mfn}`);
    this.byOwner[owner]--;
    this.byOwner[OWNER_FREE]++;
    this.owner[mfn] = OWNER_FREE;
    this.ownerDomain[mfn] = -1;
    this.m2p[mfn] = -1;
    this.freeList[this.freeTop++] = mfn;
  }

  /** Frames owned by `domain` with owner kind `owner` (walks every frame: checks and reports). */
  countOwned(owner: number, domain: number): number {
    let n = 0;
    for (let mfn = 0; mfn < this.frames; mfn++) {
      if (this.owner[mfn] === owner && this.ownerDomain[mfn] === domain) n++;
    }
    return n;
  }
}
