/**
 * The shadow pages of one domain: the pool they come from, the hash that finds them by
 * (gfn, type), the references between them, the reverse map from guest frames to the shadow
 * entries that map them, and every write of a shadow entry. Keeping all entry writes here keeps
 * the bookkeeping (parent references, reverse map) in one place.
 *
 * Lifetime (as Xen's): a top-level (l4) shadow is pinned while its guest table may be loaded;
 * lower shadows live while a parent entry references them. Unreferenced, unpinned shadows that
 * are not some vCPU's root are freed at once, and their entries unhooked recursively.
 */

import type { WritableSearch } from "../../config/scenario.js";
import type { Gfn, Mfn } from "../../hw/addr.js";
import type { HostMemory } from "../../hw/memory.js";
import { isPresent, isWritable, PTE_HI_NX, PTE_RW, PTE_US, pteFrame } from "../../hw/pte.js";
import { NO_TRACE, type TraceSink } from "../../hw/step-trace.js";
import {
  C_SHADOW_ALLOC,
  C_SHADOW_FREE,
  C_SHADOW_HASH_LOOKUPS,
  C_SHADOW_HASH_MISS,
  C_SHADOW_PREALLOC_1,
  C_SHADOW_PREALLOC_2,
  C_SHADOW_WRITEABLE,
  C_SHADOW_WRITEABLE_BF,
} from "../../metrics/counters.js";
import { IntMap } from "./int-map.js";
import { isFl1, SH_FL1, SH_L1, SH_L4, SH_TYPE_NAMES, ShadowPage, shadowKey } from "./page.js";
import { ReverseMap } from "./rmap.js";

/** What the tables tell out-of-sync L1s (oos.ts) about. */
export interface OosHooks {
  isOutOfSync(gfn: Gfn): boolean;
  /** Bring gfn back into sync if it is out of sync. */
  resync(gfn: Gfn): void;
  /** gfn's L1 shadow is freed: drop it from the out-of-sync pages, no resync. */
  forget(gfn: Gfn): void;
}

/** Pool slots the reverse map can name in an int32 (slot * 512 + index). */
const MAX_POOL_SLOTS = 2 ** 22;

export class ShadowTables {
  private readonly hash = new Map<number, ShadowPage>();
  /**
   * Shadow pages by their frame, in the order they were made (the order the reclaim and the
   * brute-force search visit them). The fault path finds a page by its frame with pageAt.
   */
  readonly byMfn = new Map<Mfn, ShadowPage>();
  /** The pool's frames, by slot (a shadow's index in the pool). */
  private readonly poolMfn: Int32Array;
  /** The pool's slots, by frame (the inverse of poolMfn). */
  private readonly poolSlot: IntMap;
  /**
   * The pool's first frame when its frames are consecutive (as a pool taken at once from the
   * host's free frames is): a frame's slot is then mfn - poolBase, with no hash lookup. -1 when
   * they are not.
   */
  private readonly poolBase: number;
  /** The shadow page in each pool slot, or null. */
  private readonly bySlot: (ShadowPage | null)[];
  /**
   * The guest frames shadowed as page tables: gfn -> the bits (1 << type) of its shadow types
   * among L1..L4, never 0 (FL1 shadows are of guest pages, not tables). isShadowedTable asks it
   * on every write fault and every writable leaf propagated.
   */
  private readonly tableTypes = new IntMap();
  /** Slots of the pool frames not holding a shadow. */
  private readonly freeSlots: number[];
  /**
   * Reverse map: guest frame -> leaf shadow entries mapping it, sized by what the domain maps
   * (rmap.ts). It holds each entry as slot * 512 + index, an int32 (the pool has fewer than
   * 2^22 slots); mappingsOf gives them as shadowMfn * 512 + index.
   */
  private readonly rmap = new ReverseMap();
  /** Removals of a location the reverse map did not hold (a bookkeeping bug: the audit says). */
  private rmapStrays = 0;
  /** Pinned top-level shadows, most recently used first. */
  private lruHead: ShadowPage | null = null;
  private lruTail: ShadowPage | null = null;
  /** Highest number of shadow pages in use at once. */
  peak = 0;
  /**
   * Set when a present shadow entry was removed, re-pointed or lost rights (Xen's
   * SHADOW_SET_FLUSH), by an entry write, a write-protect or a reclaim: the TLB may cache it, so
   * the VMM flushes before it returns to the guest (ShadowPaging.flushIfNeeded).
   */
  needFlush = false;
  /** The guest frame behind a gfn, for write protection (the P2M's lookup). */
  frameOf: (gfn: Gfn) => Mfn = () => -1;
  /** Told of every guest page the VMM shadows as a page table (page sharing skips them). */
  seenTable: (gfn: Gfn) => void = () => {};
  /** Out-of-sync L1 shadows, or null when they are off. */
  oos: OosHooks | null = null;
  /** Where a traced step's events go (the domain's vCPU). */
  trace: TraceSink = NO_TRACE;

  constructor(
    readonly mem: HostMemory,
    poolFrames: Mfn[],
    readonly counters: Float64Array,
    readonly writableSearch: WritableSearch,
  ) {
    if (poolFrames.length > MAX_POOL_SLOTS) {
      throw new RangeError(
        `a shadow pool holds at most ${MAX_POOL_SLOTS} pages (16 GiB), got ${poolFrames.length}`,
      );
    }
    this.poolMfn = Int32Array.from(poolFrames);
    this.poolSlot = new IntMap(poolFrames.length);
    for (let slot = 0; slot < poolFrames.length; slot++)
      this.poolSlot.insert(poolFrames[slot], slot);
    this.bySlot = new Array<ShadowPage | null>(poolFrames.length).fill(null);
    let consecutive = poolFrames.length > 0;
    for (let slot = 1; slot < poolFrames.length && consecutive; slot++) {
      consecutive = poolFrames[slot] === poolFrames[0] + slot;
    }
    this.poolBase = consecutive ? poolFrames[0] : -1;
    this.freeSlots = [];
    for (let slot = poolFrames.length - 1; slot >= 0; slot--) this.freeSlots.push(slot);
  }

  get poolSize(): number {
    return this.freeSlots.length + this.byMfn.size;
  }

  get inUse(): number {
    return this.byMfn.size;
  }

  get free(): number {
    return this.freeSlots.length;
  }

  lookup(gfn: Gfn, type: number): ShadowPage | null {
    this.counters[C_SHADOW_HASH_LOOKUPS]++;
    const sp = this.hash.get(shadowKey(gfn, type));
    if (sp === undefined) {
      this.counters[C_SHADOW_HASH_MISS]++;
      return null;
    }
    return sp;
  }

  /** The shadow page held in frame `mfn`, or null when it holds none. */
  pageAt(mfn: Mfn): ShadowPage | null {
    const slot = this.poolBase >= 0 ? mfn - this.poolBase : this.poolSlot.get(mfn);
    return slot >= 0 && slot < this.bySlot.length ? this.bySlot[slot] : null;
  }

  /** Whether gfn is shadowed as a page table (so guest writes to it must be emulated). */
  isShadowedTable(gfn: Gfn): boolean {
    return this.tableTypes.find(gfn) >= 0;
  }

  /** Every shadow of gfn (as a page table of any level), L1 first. */
  shadowsOf(gfn: Gfn): ShadowPage[] {
    const out: ShadowPage[] = [];
    const types = this.tableTypes.get(gfn, 0);
    for (let type = SH_L1; type <= SH_L4; type++) {
      if (type === SH_FL1 || (types & (1 << type)) === 0) continue;
      const sp = this.hash.get(shadowKey(gfn, type));
      if (sp) out.push(sp);
    }
    return out;
  }

  /**
   * A new, empty shadow of (gfn, type). The caller has made room (prealloc). Shadowing a guest
   * page table write-protects it: every writable mapping of it is made read-only.
   */
  create(gfn: Gfn, type: number): ShadowPage {
    const slot = this.freeSlots.pop();
    if (slot === undefined) throw new Error("shadow pool: create() without prealloc()");
    const mfn = this.poolMfn[slot];
    // A page out of sync as an L1 that is shadowed at another level is resynced first
    // (Xen's shadow_promote): only pages shadowed once, as L1s, stay out of sync.
    if (this.oos !== null && !isFl1(type)) this.oos.resync(gfn);
    if (!isFl1(type)) this.seenTable(gfn);
    this.mem.zeroFrame(mfn);
    const sp = new ShadowPage(mfn, gfn, type, slot);
    this.hash.set(shadowKey(gfn, type), sp);
    this.byMfn.set(mfn, sp);
    this.bySlot[slot] = sp;
    if (!isFl1(type)) this.tableTypes.set(gfn, this.tableTypes.get(gfn, 0) | (1 << type));
    this.counters[C_SHADOW_ALLOC]++;
    if (this.byMfn.size > this.peak) this.peak = this.byMfn.size;
    if (type === SH_L4) this.pin(sp);
    const events = this.trace.events;
    events?.push({ kind: "shadow-new", gfn, mfn, level: sp.level, note: SH_TYPE_NAMES[type] });
    if (sp.shadowsTable) {
      const demoted = this.removeWriteAccess(gfn);
      events?.push({ kind: "write-protect", gfn, mfn: this.frameOf(gfn), count: demoted });
    }
    return sp;
  }

  /** Read shadow entry `index` of `sp` into mem.lo / mem.hi. */
  read(sp: ShadowPage, index: number): void {
    this.mem.read64(sp.mfn, index);
  }

  /**
   * Write shadow entry `index` of `sp`: the one place sptes change. Keeps parent references
   * (non-leaf entries point at shadow pages) and the reverse map (leaf entries point at guest
   * frames), and frees a child shadow that loses its last reference.
   */
  setEntry(sp: ShadowPage, index: number, lo: number, hi: number): void {
    this.mem.read64(sp.mfn, index);
    const oldLo = this.mem.lo;
    const oldHi = this.mem.hi;
    // The halves compared as 32 bits: the caller's may be int32 (Spte's) or uint32 (memory's).
    if (((oldLo ^ lo) | (oldHi ^ hi)) === 0) return;
    const leaf = sp.level === 1;
    // An L2 entry that links an out-of-sync L1 brings it into sync first (Xen's
    // shadow_set_l2e): the guest expects the new path to show its L1 as it is now.
    if (this.oos !== null && sp.level === 2 && isPresent(lo)) {
      const child = this.pageAt(pteFrame(lo, hi));
      if (child !== null && child.type === SH_L1) this.oos.resync(child.gfn);
    }
    this.mem.write64(sp.mfn, index, lo, hi);
    const loc = sp.mfn * 512 + index;
    if (isPresent(oldLo)) {
      const old = pteFrame(oldLo, oldHi);
      if (
        !isPresent(lo) ||
        pteFrame(lo, hi) !== old ||
        (oldLo & ~lo & (PTE_RW | PTE_US)) !== 0 ||
        (hi & ~oldHi & PTE_HI_NX) !== 0
      ) {
        this.needFlush = true;
      }
    }
    if (leaf) {
      // The reverse map: this entry leaves the old frame's mappings and joins the new one's.
      const rloc = sp.slot * 512 + index;
      if (isPresent(oldLo)) this.rmapRemove(pteFrame(oldLo, oldHi), rloc);
      if (isPresent(lo)) this.rmapAdd(pteFrame(lo, hi), rloc);
      return;
    }
    // The new child's reference is taken before the old child's is dropped, as Xen's
    // shadow_set_l2e/l3e/l4e take the new ref before putting the old. The other order frees a
    // child that an entry rewritten with other rights bits keeps pointing at (its only parent
    // dropped): the pool gives that frame to the next shadow, and the guest reads and writes
    // shadow entries through it, so any host frame.
    if (isPresent(lo)) this.pageAt(pteFrame(lo, hi))?.parents.push(loc);
    if (isPresent(oldLo)) {
      const child = this.pageAt(pteFrame(oldLo, oldHi));
      if (child !== null) this.dropParent(child, loc);
    }
  }

  /** Remove a parent reference; free the child when nothing keeps it. */
  private dropParent(child: ShadowPage, loc: number): void {
    const i = child.parents.indexOf(loc);
    if (i >= 0) child.parents.splice(i, 1);
    this.maybeFree(child);
  }

  /** Free sp if nothing references it, it is not pinned and no vCPU has it loaded. */
  maybeFree(sp: ShadowPage): void {
    if (sp.parents.length > 0 || sp.pinned || sp.inUse || !this.byMfn.has(sp.mfn)) return;
    if (sp.type === SH_L1) this.oos?.forget(sp.gfn);
    for (let i = 0; i < 512; i++) {
      this.mem.read64(sp.mfn, i);
      if (isPresent(this.mem.lo)) this.setEntry(sp, i, 0, 0);
    }
    this.hash.delete(shadowKey(sp.gfn, sp.type));
    this.byMfn.delete(sp.mfn);
    this.bySlot[sp.slot] = null;
    if (!isFl1(sp.type)) {
      const types = this.tableTypes.get(sp.gfn, 0) & ~(1 << sp.type);
      if (types === 0) this.tableTypes.delete(sp.gfn);
      else this.tableTypes.set(sp.gfn, types);
    }
    this.freeSlots.push(sp.slot);
    this.counters[C_SHADOW_FREE]++;
  }

  /** Remove sp whatever references it: clear the parent entries, unpin, free. */
  destroy(sp: ShadowPage): void {
    for (const loc of sp.parents.slice()) {
      const parent = this.pageAt(Math.floor(loc / 512));
      if (parent) this.setEntry(parent, loc % 512, 0, 0);
    }
    this.unpin(sp);
    if (sp.inUse) {
      // A loaded root survives as an empty table until the vCPU moves off it.
      for (let i = 0; i < 512; i++) this.setEntry(sp, i, 0, 0);
      return;
    }
    this.maybeFree(sp);
  }

  /** Pin a top-level shadow and make it the most recently used. */
  pin(sp: ShadowPage): void {
    if (sp.pinned) {
      this.lruUnlink(sp);
    }
    sp.pinned = true;
    sp.lruNext = this.lruHead;
    sp.lruPrev = null;
    if (this.lruHead) this.lruHead.lruPrev = sp;
    this.lruHead = sp;
    if (this.lruTail === null) this.lruTail = sp;
  }

  unpin(sp: ShadowPage): void {
    if (!sp.pinned) return;
    this.lruUnlink(sp);
    sp.pinned = false;
  }

  private lruUnlink(sp: ShadowPage): void {
    if (sp.lruPrev) sp.lruPrev.lruNext = sp.lruNext;
    else this.lruHead = sp.lruNext;
    if (sp.lruNext) sp.lruNext.lruPrev = sp.lruPrev;
    else this.lruTail = sp.lruPrev;
    sp.lruPrev = null;
    sp.lruNext = null;
  }

  /**
   * Make sure `count` pool pages are free (Xen's shadow_prealloc). Stage 1 unpins top-level
   * shadows from the LRU tail (never a loaded one), freeing what hung below them; stage 2
   * unhooks every entry of every top-level shadow, freeing all lower shadows. Returns false
   * when the pool cannot hold `count` pages at all.
   */
  prealloc(count: number): boolean {
    if (this.freeSlots.length >= count) return true;
    const before = this.freeSlots.length;
    let tail = this.lruTail;
    let stage1 = false;
    while (this.freeSlots.length < count && tail !== null) {
      const prev = tail.lruPrev;
      if (!tail.inUse) {
        stage1 = true;
        this.unpin(tail);
        this.maybeFree(tail);
      }
      tail = prev;
    }
    if (stage1) {
      this.counters[C_SHADOW_PREALLOC_1]++;
      this.needFlush = true;
    }
    const events = this.trace.events;
    if (this.freeSlots.length >= count) {
      events?.push({ kind: "shadow-reclaim", count: this.freeSlots.length - before, note: "1" });
      return true;
    }
    this.counters[C_SHADOW_PREALLOC_2]++;
    for (const sp of [...this.byMfn.values()]) {
      if (sp.type === SH_L4 && this.byMfn.has(sp.mfn)) {
        for (let i = 0; i < 512; i++) this.setEntry(sp, i, 0, 0);
      }
    }
    events?.push({ kind: "shadow-reclaim", count: this.freeSlots.length - before, note: "2" });
    this.needFlush = true;
    return this.freeSlots.length >= count;
  }

  /**
   * The bookkeeping's own consistency (for checks): the hash finds every page; each page's
   * parent list is exactly the present non-leaf entries pointing at it, one level up; nothing
   * unreferenced survives unless pinned or loaded; the reverse map holds exactly the present
   * leaf entries; the LRU holds exactly the pinned pages; the indexes by frame and by guest
   * table agree with the pages. Returns the first problem, or null.
   */
  audit(): string | null {
    const parentsSeen = new Map<ShadowPage, number[]>();
    let leaves = 0;
    let tablePages = 0;
    for (const sp of this.byMfn.values()) {
      if (this.hash.get(shadowKey(sp.gfn, sp.type)) !== sp) {
        return `shadow ${sp.mfn} (gfn ${sp.gfn}, type ${sp.type}) is not in the hash`;
      }
      if (this.pageAt(sp.mfn) !== sp) return `shadow ${sp.mfn} is not found by its frame`;
      if (sp.shadowsTable) {
        tablePages++;
        if ((this.tableTypes.get(sp.gfn, 0) & (1 << sp.type)) === 0) {
          return `shadow ${sp.mfn} (gfn ${sp.gfn}, type ${sp.type}) is not among the shadowed tables`;
        }
      }
      for (let i = 0; i < 512; i++) {
        this.mem.read64(sp.mfn, i);
        if (!isPresent(this.mem.lo)) continue;
        const target = pteFrame(this.mem.lo, this.mem.hi);
        const loc = sp.mfn * 512 + i;
        if (sp.level === 1) {
          leaves++;
          if (target < this.mem.frames && !this.mappingsOf(target).includes(loc)) {
            return `leaf ${sp.mfn}[${i}] -> mfn ${target} is missing from the reverse map`;
          }
          continue;
        }
        const child = this.byMfn.get(target);
        if (!child || child.level !== sp.level - 1) {
          return `entry ${sp.mfn}[${i}] points at mfn ${target}, not a shadow one level down`;
        }
        const list = parentsSeen.get(child) ?? [];
        list.push(loc);
        parentsSeen.set(child, list);
      }
    }
    for (const sp of this.byMfn.values()) {
      const seen = (parentsSeen.get(sp) ?? []).sort((a, b) => a - b);
      const kept = sp.parents.slice().sort((a, b) => a - b);
      if (seen.join() !== kept.join())
        return `shadow ${sp.mfn} counts parents ${kept}, has ${seen}`;
      if (kept.length === 0 && !sp.pinned && !sp.inUse) return `shadow ${sp.mfn} is unreferenced`;
    }
    let typeBits = 0;
    for (const [, types] of this.tableTypes.entries()) {
      for (let t = types; t !== 0; t &= t - 1) typeBits++;
    }
    if (typeBits !== tablePages) {
      return `the shadowed tables count ${typeBits} shadows, ${tablePages} exist`;
    }
    let slotted = 0;
    for (const sp of this.bySlot) if (sp !== null) slotted++;
    if (slotted !== this.byMfn.size) {
      return `${slotted} pool slots hold a shadow, ${this.byMfn.size} exist`;
    }
    if (this.rmapStrays > 0) {
      return `${this.rmapStrays} leaf entries were cleared that the reverse map did not hold`;
    }
    if (leaves !== this.rmap.size) {
      return `the reverse map holds ${this.rmap.size} locations for ${leaves} present leaves`;
    }
    let lru = 0;
    for (let sp = this.lruHead; sp !== null; sp = sp.lruNext) {
      if (!sp.pinned) return `shadow ${sp.mfn} is in the LRU but not pinned`;
      lru++;
    }
    let pinned = 0;
    for (const sp of this.byMfn.values()) if (sp.pinned) pinned++;
    if (lru !== pinned) return `the LRU holds ${lru} shadows, ${pinned} are pinned`;
    return null;
  }

  /** Every shadow page (for checks and brute-force searches). */
  pages(): IterableIterator<ShadowPage> {
    return this.byMfn.values();
  }

  /** Leaf shadow entries that map guest frame `mfn`. */
  mappingsOf(mfn: Mfn): readonly number[] {
    const out = this.rmap.mappingsOf(mfn);
    for (let i = 0; i < out.length; i++) out[i] = this.poolMfn[out[i] >>> 9] * 512 + (out[i] & 511);
    return out;
  }

  /** Clear every leaf shadow entry that maps `mfn` (a P2M change). Returns how many. */
  dropMappingsOf(mfn: Mfn): number {
    let n = 0;
    for (const loc of this.mappingsOf(mfn)) {
      const sp = this.pageAt(Math.floor(loc / 512));
      if (sp !== null) {
        this.setEntry(sp, loc % 512, 0, 0);
        n++;
      }
    }
    return n;
  }

  /**
   * Take the write right from the leaf at `loc` if it still maps `mfn` writable (Xen's
   * sh_rm_write_access_from_sl1p, for out-of-sync pages' remembered mappings). No TLB flush:
   * the caller decides.
   */
  revokeWrite(loc: number, mfn: Mfn): void {
    const sp = this.pageAt(Math.floor(loc / 512));
    if (sp === null || sp.level !== 1) return;
    this.mem.read64(sp.mfn, loc % 512);
    const lo = this.mem.lo;
    if (isPresent(lo) && isWritable(lo) && pteFrame(lo, this.mem.hi) === mfn) {
      this.mem.write64(sp.mfn, loc % 512, (lo & ~PTE_RW) >>> 0, this.mem.hi);
    }
  }

  /**
   * Make every mapping of gfn's frame read-only (sh_remove_write_access): by the reverse map,
   * or by scanning every L1 shadow as Xen's brute-force fallback does. Returns the mappings demoted.
   */
  removeWriteAccess(gfn: Gfn): number {
    const mfn = this.frameOf(gfn);
    if (mfn < 0) return 0;
    let demoted = 0;
    const demote = (loc: number): void => {
      const sp = this.pageAt(Math.floor(loc / 512));
      if (sp === null) return;
      this.mem.read64(sp.mfn, loc % 512);
      const lo = this.mem.lo;
      if (isPresent(lo) && isWritable(lo)) {
        this.mem.write64(sp.mfn, loc % 512, (lo & ~PTE_RW) >>> 0, this.mem.hi);
        demoted++;
      }
    };
    if (this.writableSearch === "rmap") {
      for (const loc of this.mappingsOf(mfn)) demote(loc);
      if (demoted > 0) this.counters[C_SHADOW_WRITEABLE]++;
    } else {
      for (const sp of this.byMfn.values()) {
        if (sp.type !== SH_L1 && !isFl1(sp.type)) continue;
        for (let i = 0; i < 512; i++) {
          this.mem.read64(sp.mfn, i);
          if (isPresent(this.mem.lo) && pteFrame(this.mem.lo, this.mem.hi) === mfn)
            demote(sp.mfn * 512 + i);
        }
      }
      if (demoted > 0) this.counters[C_SHADOW_WRITEABLE_BF]++;
    }
    if (demoted > 0) this.needFlush = true;
    return demoted;
  }

  /** Record leaf `entry` (slot * 512 + index) as mapping mfn. */
  private rmapAdd(mfn: Mfn, entry: number): void {
    if (mfn >= this.mem.frames) return; // not memory: nothing to find it by
    this.rmap.add(mfn, entry);
  }

  private rmapRemove(mfn: Mfn, entry: number): void {
    if (mfn >= this.mem.frames) return;
    if (!this.rmap.remove(mfn, entry)) this.rmapStrays++;
  }
}
