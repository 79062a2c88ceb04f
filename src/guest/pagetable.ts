/**
 * The guest kernel's page-table primitives over a 4-level tree in guest memory. Every entry is
 * read and written through PagingOps (so through the vCPU natively); the kernel's own
 * bookkeeping per page-table page (its level and its count of present entries, as Linux keeps
 * in struct page) lives here, in kernel data, not in the tables.
 */

import type { Gfn, Gva } from "../hw/addr.js";
import {
  isLarge,
  isPresent,
  PTE_A,
  PTE_D,
  PTE_P,
  PTE_RW,
  PTE_US,
  pteFrame,
  pteHi,
  pteLo,
} from "../hw/pte.js";
import { C_PT_PAGES_ALLOC, C_PT_PAGES_FREE } from "../metrics/counters.js";
import type { FrameAllocator } from "./frame-alloc.js";
import type { PagingOps } from "./paging-ops.js";

/** Flags of an entry pointing at a lower table (Linux _PAGE_TABLE). */
export const TABLE_FLAGS = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;

export class PageTables {
  /** Level of each gfn while it is a page table (0 otherwise). */
  readonly level: Int8Array;
  /** Present entries in each page-table page. */
  readonly used: Int16Array;
  /** Page-table pages in use. */
  pages = 0;

  constructor(
    readonly ops: PagingOps,
    readonly frames: FrameAllocator,
    frameCount: number,
    private readonly zero: (gfn: Gfn) => void,
    private readonly counters: Float64Array,
  ) {
    this.level = new Int8Array(frameCount);
    this.used = new Int16Array(frameCount);
  }

  /** A new, zeroed page-table page of `level`, or -1 when memory is exhausted. */
  allocTable(level: number): Gfn {
    const gfn = this.frames.alloc();
    if (gfn < 0) return -1;
    this.zero(gfn);
    this.level[gfn] = level;
    this.used[gfn] = 0;
    this.frames.refcount[gfn] = 1;
    this.pages++;
    this.counters[C_PT_PAGES_ALLOC]++;
    this.ops.allocPt(gfn, level);
    return gfn;
  }

  freeTable(gfn: Gfn): void {
    this.ops.releasePt(gfn, this.level[gfn]);
    this.level[gfn] = 0;
    this.used[gfn] = 0;
    this.pages--;
    this.counters[C_PT_PAGES_FREE]++;
    this.frames.release(gfn);
  }

  /** Write an entry, keeping the table's present count. */
  set(tableGfn: Gfn, index: number, lo: number, hi: number, wasPresent: boolean): void {
    this.ops.setPte(tableGfn, index, lo, hi);
    const nowPresent = isPresent(lo);
    if (nowPresent && !wasPresent) this.used[tableGfn]++;
    else if (!nowPresent && wasPresent) this.used[tableGfn]--;
  }

  read(tableGfn: Gfn, index: number): void {
    this.ops.readPte(tableGfn, index);
  }

  get lo(): number {
    return this.ops.lo;
  }

  get hi(): number {
    return this.ops.hi;
  }

  /**
   * The table of `level` whose entry covers gva, walking down from the PML4 `l4`, creating the
   * missing intermediate tables when `create`. Returns -1 when a table is missing and not created
   * (or memory ran out), -2 when a huge-page leaf stands in the way at level 2.
   */
  tableFor(l4: Gfn, gva: Gva, level: number, create: boolean): Gfn {
    let table = l4;
    for (let l = 4; l > level; l--) {
      const idx = entryIndex(gva, l);
      this.read(table, idx);
      const lo = this.lo;
      if (!isPresent(lo)) {
        if (!create) return -1;
        const child = this.allocTable(l - 1);
        if (child < 0) return -1;
        this.set(table, idx, pteLo(child, TABLE_FLAGS), pteHi(child, false), false);
        table = child;
        continue;
      }
      if (l === 2 && isLarge(lo)) return -2;
      table = pteFrame(lo, this.hi);
    }
    return table;
  }
}

/**
 * hw/addr.ts's tableIndex (the index of gva's entry in its table of `level`, 1..4) in integer
 * operations, for the kernel's fault path: there tableIndex's floating-point remainder was a
 * library call per level. For addresses as stored (integers 0 .. 2^48 - 1): bits 12..29 are in
 * the low 32 bits (>>> reads those), bits 30..47 are gva / 2^30, an integer below 2^18.
 */
export function entryIndex(gva: Gva, level: number): number {
  if (level <= 2) return (gva >>> (level === 1 ? 12 : 21)) & 511;
  return ((gva / (level === 3 ? 1073741824 : 549755813888)) | 0) & 511;
}

/** Flags for a user leaf mapping with VMA permissions `prot` (see process.ts). */
export function leafFlags(writable: boolean, dirty: boolean): number {
  let flags = PTE_P | PTE_US;
  if (writable) flags |= PTE_RW;
  if (dirty) flags |= PTE_D;
  return flags;
}
