/**
 * The guest kernel's page-table operations, in one small interface as Linux's pv_ops (pv_mmu_ops):
 * every read and write of a page-table entry, every CR3 write and TLB flush goes through here.
 * The native implementation writes guest memory through the vCPU at direct-map addresses and
 * executes CR3 writes and INVLPG, so that a shadow-paging VMM sees exactly the writes a real
 * kernel makes; a PV implementation turns them into hypercalls. Nothing else in the kernel knows
 * which one it runs on.
 */

import type { Gfn, Gpa, Gva } from "../hw/addr.js";
import { type GuestCpu, XLATE_FAULT } from "../hw/cpu.js";
import { directMap } from "./layout.js";

export interface PagingOps {
  /** Read entry `index` of the page-table page `tableGfn` into this.lo / this.hi. */
  readPte(tableGfn: Gfn, index: number): void;
  /** Write entry `index` of the page-table page `tableGfn` (set_pte). */
  setPte(tableGfn: Gfn, index: number, lo: number, hi: number): void;
  /** A page becomes a page table of `level` (1..4) (alloc_pte and friends; PV pins here). */
  allocPt(gfn: Gfn, level: number): void;
  /** A page stops being a page table (release_pte). */
  releasePt(gfn: Gfn, level: number): void;
  writeCr3(gpa: Gpa, pcid: number, noFlush: boolean): void;
  flushTlbOne(gva: Gva): void;
  flushTlbAll(): void;
  lo: number;
  hi: number;
}

/** Bare-metal page-table operations: plain stores through the direct map. */
export class NativePagingOps implements PagingOps {
  lo = 0;
  hi = 0;
  constructor(private readonly cpu: GuestCpu) {}

  readPte(tableGfn: Gfn, index: number): void {
    if (this.cpu.load64(directMap(tableGfn) + index * 8) === XLATE_FAULT) {
      throw new Error(`guest kernel: fault reading page table gfn ${tableGfn} via the direct map`);
    }
    this.lo = this.cpu.lo;
    this.hi = this.cpu.hi;
  }

  setPte(tableGfn: Gfn, index: number, lo: number, hi: number): void {
    if (this.cpu.store64(directMap(tableGfn) + index * 8, lo, hi) === XLATE_FAULT) {
      throw new Error(`guest kernel: fault writing page table gfn ${tableGfn} via the direct map`);
    }
  }

  allocPt(_gfn: Gfn, _level: number): void {}

  releasePt(_gfn: Gfn, _level: number): void {}

  writeCr3(gpa: Gpa, pcid: number, noFlush: boolean): void {
    this.cpu.writeCr3(gpa, pcid, noFlush);
  }

  flushTlbOne(gva: Gva): void {
    this.cpu.invlpg(gva);
  }

  flushTlbAll(): void {
    this.cpu.flushTlbAll();
  }
}
