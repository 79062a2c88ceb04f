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
  /**
   * The domain that owns a domain, shadow or VMM frame, plus one (0 for none; domainOf reads
   * it). Plus one, as m2pTable's entries: an untouched frame's entry is zero, so these arrays
   * cost memory only for frames that have been handed out, not for every frame of the host
   * (a zeroed array's pages are mapped at their first write; one filled with -1 costs its
   * whole size at once: 96 MB of a 64 GiB host).
   */
  private readonly ownerPlusOne: Int16Array;
  /**
   * m2p: the gfn a domain frame backs plus one, 0 otherwise (gfnOf reads it). A PV guest reads
   * it as Xen's read-only machine-to-phys table.
   */
  readonly m2pTable: Int32Array;
  /** Frames per owner kind. */
  readonly byOwner = new Float64Array(OWNER_NAMES.length);
  /**
   * A stack of free frames. Frames taken by allocBlock stay in it until popped (then skipped:
   * their owner is no longer free), so it may hold stale copies; it is compacted when full.
   * Slot i holds its frame XOR (frames - 1 - i): the stack starts as every frame, the lowest on
   * top, which is all zeroes, so the array costs memory only where it has been written (the
   * system maps a zeroed array's pages at their first write), not for frames never handed out.
   */
  private readonly freeList: Int32Array;
  private freeTop = 0;
  private freeCount = 0;
  /** Free frames in each aligned block of 512 (for 2 MiB allocations). */
  private readonly blockFree: Int16Array;
  /** Highest number of frames in use at once. */
  peakUsed = 0;
  /**
   * The sum of every P2M's `changes` on this host (each P2M adds its own here too): what
   * Host.p2mChanges answers without reading every domain's, at each safe point of each domain.
   */
  p2mChanges = 0;

  constructor(readonly mem: HostMemory) {
    this.frames = mem.frames;
    this.owner = new Uint8Array(this.frames);
    this.ownerPlusOne = new Int16Array(this.frames);
    this.m2pTable = new Int32Array(this.frames);
    this.freeList = new Int32Array(this.frames);
    this.blockFree = new Int16Array(Math.ceil(this.frames / 512));
    // Low frames are handed out first: slot i holds frames - 1 - i (encoded as 0).
    this.freeTop = this.frames;
    for (let b = 0; b < this.blockFree.length; b++) {
      this.blockFree[b] = Math.min(512, this.frames - b * 512);
    }
    this.freeCount = this.frames;
    this.byOwner[OWNER_FREE] = this.frames;
  }

  /** The domain that owns frame mfn (a domain, shadow or VMM frame), -1 for none. */
  domainOf(mfn: Mfn): number {
    return this.ownerPlusOne[mfn] - 1;
  }

  /** m2p: the gfn domain frame mfn backs, -1 for none. */
  gfnOf(mfn: Mfn): Gfn {
    return this.m2pTable[mfn] - 1;
  }

  get free(): number {
    return this.freeCount;
  }

  get used(): number {
    return this.frames - this.freeCount;
  }

  /**
   * A zeroed frame for `owner` (domain `domain`, backing `gfn` for domain RAM), or -1 when the
   * host has none left. Frames are scrubbed before reuse, as Xen does, so no domain ever sees
   * another's data.
   */
  alloc(owner: number, domain: number, gfn: Gfn = -1): Mfn {
    if (this.freeCount === 0) return -1;
    let mfn = this.popFree();
    while (this.owner[mfn] !== OWNER_FREE) mfn = this.popFree();
    this.take(mfn, owner, domain, gfn);
    return mfn;
  }

  private take(mfn: Mfn, owner: number, domain: number, gfn: Gfn): void {
    this.mem.zeroFrame(mfn);
    this.owner[mfn] = owner;
    this.ownerPlusOne[mfn] = domain + 1;
    this.m2pTable[mfn] = gfn + 1;
    this.byOwner[OWNER_FREE]--;
    this.byOwner[owner]++;
    this.freeCount--;
    this.blockFree[mfn >>> 9]--;
    if (this.used > this.peakUsed) this.peakUsed = this.used;
  }

  /**
   * 512 zeroed frames, contiguous and 2 MiB-aligned, for domain RAM backing gfns gfnBase ..
   * gfnBase + 511 (a superpage); the first mfn, or -1 when no whole block is free.
   */
  allocBlock(domain: number, gfnBase: Gfn): Mfn {
    const blocks = Math.floor(this.frames / 512);
    for (let b = 0; b < blocks; b++) {
      if (this.blockFree[b] !== 512) continue;
      const base = b * 512;
      for (let i = 0; i < 512; i++) this.take(base + i, OWNER_DOMAIN, domain, gfnBase + i);
      return base;
    }
    return -1;
  }

  /** Hand an allocated frame to another owner, keeping its content (page sharing). */
  transfer(mfn: Mfn, owner: number, domain: number, gfn: Gfn = -1): void {
    const from = this.owner[mfn];
    if (from === OWNER_FREE) throw new Error(`host frames: transfer of free mfn ${mfn}`);
    this.byOwner[from]--;
    this.byOwner[owner]++;
    this.owner[mfn] = owner;
    this.ownerPlusOne[mfn] = domain + 1;
    this.m2pTable[mfn] = gfn + 1;
  }

  /** Give a frame back. Freeing a free frame is a VMM bug and throws. */
  release(mfn: Mfn): void {
    const owner = this.owner[mfn];
    if (owner === OWNER_FREE) throw new Error(`host frames: double free of mfn ${mfn}`);
    this.byOwner[owner]--;
    this.byOwner[OWNER_FREE]++;
    this.owner[mfn] = OWNER_FREE;
    this.ownerPlusOne[mfn] = 0;
    this.m2pTable[mfn] = 0;
    this.freeCount++;
    this.blockFree[mfn >>> 9]++;
    if (this.freeTop === this.freeList.length) this.compact();
    this.pushFree(mfn);
  }

  private popFree(): Mfn {
    const i = --this.freeTop;
    return this.freeList[i] ^ (this.frames - 1 - i);
  }

  private pushFree(mfn: Mfn): void {
    const i = this.freeTop++;
    this.freeList[i] = mfn ^ (this.frames - 1 - i);
  }

  /**
   * Drop the stale and repeated entries of the free stack (frames allocBlock took, some freed
   * again since), keeping the order of the rest.
   */
  private compact(): void {
    const seen = new Uint8Array(this.frames);
    let top = 0;
    const last = this.frames - 1;
    for (let i = 0; i < this.freeTop; i++) {
      const mfn = this.freeList[i] ^ (last - i);
      if (this.owner[mfn] !== OWNER_FREE || seen[mfn] === 1) continue;
      seen[mfn] = 1;
      this.freeList[top] = mfn ^ (last - top);
      top++;
    }
    this.freeTop = top;
  }

  /** Frames owned by `domain` with owner kind `owner` (walks every frame: checks and reports). */
  countOwned(owner: number, domain: number): number {
    let n = 0;
    for (let mfn = 0; mfn < this.frames; mfn++) {
      if (this.owner[mfn] === owner && this.ownerPlusOne[mfn] === domain + 1) n++;
    }
    return n;
  }
}
