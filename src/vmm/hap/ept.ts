/**
 * The EPT of one domain (Xen's p2m-ept.c): a 4-level tree in host frames mapping gfn -> mfn,
 * the hardware's copy of the P2M. It is filled lazily, one entry per EPT violation, from the
 * P2M, with permissions from the P2M type; an entry goes whenever the P2M changes it (balloon,
 * host swap, sharing). A 2 MiB leaf maps 512 gfns backed by 512 contiguous, aligned frames;
 * changing one gfn under it splits it into an L1 table first, as Xen's p2m_set_entry does.
 */

import type { Gfn, Mfn } from "../../hw/addr.js";
import {
  EPT_MT_WB,
  EPT_PS,
  EPT_R,
  EPT_RWX,
  EPT_X,
  eptFrame,
  eptLarge,
  eptPresent,
} from "../../hw/ept.js";
import type { HostMemory } from "../../hw/memory.js";
import { pteHi, pteLo } from "../../hw/pte.js";
import { C_EPT_SPLITS } from "../../metrics/counters.js";
import { P2M_RAM_RW, P2M_RAM_SHARED } from "../p2m.js";

/** The EPT permissions of a P2M type (Xen's ept_p2m_type_to_flags): none for no RAM. */
export function eptPermsOf(type: number): number {
  if (type === P2M_RAM_RW) return EPT_RWX;
  if (type === P2M_RAM_SHARED) return EPT_R | EPT_X;
  return 0;
}

/** Non-leaf entries allow everything: permissions are decided at the leaf. */
const TABLE_BITS = EPT_RWX;

export class EptTables {
  /** The top-level table (the EPTP's frame). */
  readonly root: Mfn;
  /** Every frame of the tree, the root included. */
  readonly pages: Mfn[] = [];
  /** Outputs of lookup: the leaf's permissions and level. */
  perms = 0;
  level = 0;
  /** Set by map: the 2 MiB leaf it wrote replaced an L1 table (the caller must INVEPT). */
  replacedTable = false;
  /**
   * Called after every write to an entry above L1 and every table given back: what the vCPU's
   * walker keeps of the upper levels (NestedWalker.eptTablesChanged) must go. L1 entries are
   * read afresh by every walk, so their writes need no call.
   */
  onTablesChanged: () => void = () => {};

  constructor(
    private readonly mem: HostMemory,
    /** A zeroed VMM frame, or -1 when the host has none. */
    private readonly allocPage: () => Mfn,
    private readonly releasePage: (mfn: Mfn) => void,
    private readonly counters: Float64Array,
  ) {
    const root = this.newTable();
    if (root < 0) throw new RangeError("the host has no memory for an EPT root");
    this.root = root;
  }

  private newTable(): Mfn {
    const mfn = this.allocPage();
    if (mfn >= 0) this.pages.push(mfn);
    return mfn;
  }

  /**
   * Map gfn (level 1) or the 2 MiB block starting at gfn (level 2) to mfn with `perms`.
   * Returns false when the host has no frame for a missing table.
   */
  map(gfn: Gfn, mfn: Mfn, perms: number, level: 1 | 2): boolean {
    let table = this.root;
    for (let l = 4; l > level; l--) {
      const idx = indexOf(gfn, l);
      this.mem.read64(table, idx);
      if (!eptPresent(this.mem.lo)) {
        const child = this.newTable();
        if (child < 0) return false;
        this.writeUpper(table, idx, pteLo(child, TABLE_BITS), pteHi(child, false));
        table = child;
      } else if (eptLarge(this.mem.lo)) {
        if (!this.split(table, idx)) return false;
        this.mem.read64(table, idx);
        table = eptFrame(this.mem.lo, this.mem.hi);
      } else table = eptFrame(this.mem.lo, this.mem.hi);
    }
    this.replacedTable = false;
    if (level === 2) {
      // A block split before and whole again: its L1 table goes (nothing else names it).
      this.mem.read64(table, indexOf(gfn, 2));
      if (eptPresent(this.mem.lo) && !eptLarge(this.mem.lo)) {
        const child = eptFrame(this.mem.lo, this.mem.hi);
        this.pages.splice(this.pages.indexOf(child), 1);
        this.releasePage(child);
        this.replacedTable = true;
      }
    }
    const leaf = perms | EPT_MT_WB | (level === 2 ? EPT_PS : 0);
    if (level === 2) this.writeUpper(table, indexOf(gfn, 2), pteLo(mfn, leaf), pteHi(mfn, false));
    else this.mem.write64(table, indexOf(gfn, 1), pteLo(mfn, leaf), pteHi(mfn, false));
    return true;
  }

  /**
   * Remove gfn's mapping (the hardware must then be told: INVEPT). A 2 MiB leaf over it is
   * split first so that the other 511 gfns stay mapped.
   */
  unmap(gfn: Gfn): void {
    let table = this.root;
    for (let l = 4; l >= 1; l--) {
      const idx = indexOf(gfn, l);
      this.mem.read64(table, idx);
      if (!eptPresent(this.mem.lo)) return;
      if (l === 1) {
        this.mem.write64(table, idx, 0, 0);
        return;
      }
      if (eptLarge(this.mem.lo)) {
        // No frame for the split: drop the whole block; its gfns refault one by one.
        if (!this.split(table, idx)) {
          this.writeUpper(table, idx, 0, 0);
          return;
        }
        this.mem.read64(table, idx);
      }
      table = eptFrame(this.mem.lo, this.mem.hi);
    }
  }

  /** Replace the 2 MiB leaf at entry idx of `table` by an L1 table of 512 equal 4 KiB leaves. */
  private split(table: Mfn, idx: number): boolean {
    this.mem.read64(table, idx);
    const lo = this.mem.lo;
    const base = eptFrame(lo & ~0x1ff000, this.mem.hi);
    const l1 = this.newTable();
    if (l1 < 0) return false;
    const bits = lo & 0xfff & ~EPT_PS;
    for (let i = 0; i < 512; i++)
      this.mem.write64(l1, i, pteLo(base + i, bits), pteHi(base + i, false));
    this.writeUpper(table, idx, pteLo(l1, TABLE_BITS), pteHi(l1, false));
    this.counters[C_EPT_SPLITS]++;
    return true;
  }

  /** The mfn gfn maps to (setting perms and level), or -1. No side effects (checkers). */
  lookup(gfn: Gfn): Mfn {
    let table = this.root;
    for (let l = 4; l >= 1; l--) {
      this.mem.read64(table, indexOf(gfn, l));
      const lo = this.mem.lo;
      if (!eptPresent(lo)) return -1;
      if (l === 1 || (l === 2 && eptLarge(lo))) {
        this.perms = lo & EPT_RWX;
        this.level = l;
        const frame = eptFrame(l === 2 ? lo & ~0x1ff000 : lo, this.mem.hi);
        return l === 2 ? frame + (gfn % 512) : frame;
      }
      table = eptFrame(lo, this.mem.hi);
    }
    return -1;
  }

  /** Every leaf, as (gfn, mfn, perms), for checkers: 4 KiB granularity. */
  forEachLeaf(visit: (gfn: Gfn, mfn: Mfn, perms: number) => void): void {
    const walk = (table: Mfn, level: number, gfnBase: number): void => {
      for (let i = 0; i < 512; i++) {
        this.mem.read64(table, i);
        const lo = this.mem.lo;
        const hi = this.mem.hi;
        if (!eptPresent(lo)) continue;
        const gfn = gfnBase + i * 512 ** (level - 1);
        if (level === 1) visit(gfn, eptFrame(lo, hi), lo & EPT_RWX);
        else if (level === 2 && eptLarge(lo)) {
          const base = eptFrame(lo & ~0x1ff000, hi);
          for (let j = 0; j < 512; j++) visit(gfn + j, base + j, lo & EPT_RWX);
        } else walk(eptFrame(lo, hi), level - 1, gfn);
      }
    };
    walk(this.root, 4, 0);
  }

  /** Give every frame back (the domain is destroyed). */
  destroy(): void {
    for (const mfn of this.pages) this.releasePage(mfn);
    this.pages.length = 0;
    this.onTablesChanged();
  }

  /** Write an entry above L1 (a table link or a 2 MiB leaf), and say so. */
  private writeUpper(table: Mfn, idx: number, lo: number, hi: number): void {
    this.mem.write64(table, idx, lo, hi);
    this.onTablesChanged();
  }
}

/** The index of gfn's entry in a table of `level` (a gfn is below 2^31: shifts are exact). */
function indexOf(gfn: Gfn, level: number): number {
  return (gfn >>> (9 * level - 9)) & 511;
}
