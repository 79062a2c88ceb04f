/**
 * A vCPU's TLB tags: each (VPID, PCID) address space and each VPID's global pages gets a small
 * dense number, the tag part of a TLB key (tlb.ts has MAX_TAGS of them). Numbers are handed out
 * on CR3 writes and VM entries (a Map lookup, never on the access path). Running out forgets
 * them all: bumping every tag's generation empties the TLB, as a full flush would.
 */

import { MAX_TAGS, type Tlb } from "./tlb.js";

/** The key of an address space, and of a VPID's global pages (never equal to the first). */
const spaceKey = (vpid: number, pcid: number): number => vpid * 4096 + pcid;
const globalKey = (vpid: number): number => -1 - vpid;

export class TlbTags {
  private readonly ids = new Map<number, number>();
  private next = 0;
  /** Outputs of select: the address space's tag and its VPID's global tag. */
  tag = 0;
  globalTag = 0;

  constructor(private readonly tlb: Tlb) {}

  /** Tags handed out since the last time they ran out. */
  get used(): number {
    return this.next;
  }

  /** The tags of (vpid, pcid) into tag and globalTag. */
  select(vpid: number, pcid: number): void {
    // Make room for both tags first: a reset between the two would orphan the first.
    if (this.next + 2 > MAX_TAGS) this.forgetAll();
    this.tag = this.tagFor(spaceKey(vpid, pcid));
    this.globalTag = this.tagFor(globalKey(vpid));
  }

  /** Flush every tag of `vpid`: all its address spaces and its global pages. */
  flushVpid(vpid: number): void {
    for (const [key, tag] of this.ids) {
      if (key === globalKey(vpid) || Math.floor(key / 4096) === vpid) this.tlb.flushTag(tag);
    }
  }

  private tagFor(key: number): number {
    let tag = this.ids.get(key);
    if (tag === undefined) {
      tag = this.next++;
      this.tlb.haveTags(this.next);
      this.ids.set(key, tag);
    }
    return tag;
  }

  private forgetAll(): void {
    // Tags never handed out hold no entry: flushing those with room is flushing them all.
    for (let t = 0; t < this.tlb.tagCapacity; t++) this.tlb.flushTag(t);
    this.ids.clear();
    this.next = 0;
  }
}
