/**
 * The shared frames by content hash (KSM's stable tree, ESX's table of shared frames): where a
 * scanner looks for a frame to merge a page into. Several frames may sit under one hash when
 * hashes collide; a full compare decides. A frame leaves when its last reference goes.
 */

import type { Mfn } from "../../hw/addr.js";
import type { HostMemory } from "../../hw/memory.js";
import type { SharedFrames } from "./shared.js";

export class SharedTable {
  private readonly byHash = new Map<number, Mfn[]>();
  private readonly hashOf = new Map<Mfn, number>();

  constructor(
    private readonly mem: HostMemory,
    private readonly shared: SharedFrames,
  ) {
    shared.onFree = (mfn) => this.remove(mfn);
  }

  /** A shared frame under `hash` with the same content as frame `mfn`, or -1. */
  find(hash: number, mfn: Mfn): Mfn {
    const list = this.byHash.get(hash);
    if (list === undefined) return -1;
    for (const shared of list) if (this.mem.sameContent(shared, mfn)) return shared;
    return -1;
  }

  add(hash: number, mfn: Mfn): void {
    const list = this.byHash.get(hash);
    if (list === undefined) this.byHash.set(hash, [mfn]);
    else list.push(mfn);
    this.hashOf.set(mfn, hash);
  }

  private remove(mfn: Mfn): void {
    const hash = this.hashOf.get(mfn);
    if (hash === undefined) return;
    this.hashOf.delete(mfn);
    const list = this.byHash.get(hash);
    if (list === undefined) return;
    const i = list.indexOf(mfn);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byHash.delete(hash);
  }

  /** References beyond the first to shared frames whose content is all zeroes. */
  zeroPagesSharing(): number {
    let n = 0;
    for (const mfn of this.hashOf.keys()) {
      if (this.mem.contentDigest(mfn) === 0) n += this.shared.refs[mfn] - 1;
    }
    return n;
  }
}
