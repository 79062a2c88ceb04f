/**
 * The guest kernel's page-table operations, in one small interface as Linux's pv_ops (pv_mmu_ops):
 * every read and write of a page-table entry, every CR3 write and TLB flush goes through here.
 * The native implementation writes guest memory through the vCPU at direct-map addresses and
 * executes CR3 writes and INVLPG, so that a shadow-paging VMM sees exactly the writes a real
 * kernel makes; a PV implementation turns them into hypercalls. Nothing else in the kernel knows
 * which one it runs on.
 */

import type { Gfn, Gpa, Gva } from "../hw/addr.js";
import { type GuestCpu, XLATE_FAULT } from "../hw/vcpu-interfaces.js";
import { directMapHi, directMapLo } from "./layout.js";

export interface PagingOps {
  /**
   * Whether the kernel may map 2 MiB pages (the CPU offers PSE): its direct map and transparent
   * huge pages use them. A Xen PV guest has no PSE (Linux clears it), so it maps 4 KiB pages.
   */
  readonly largePages: boolean;
  /** Write an entry during early boot, paging off (natively a physical store). */
  setPteEarly(tableGfn: Gfn, index: number, lo: number, hi: number): void;
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
  /**
   * Linux's arch_enter/leave_lazy_mmu_mode: between the two, entry writes may be queued and
   * applied in one batch (a PV guest's mmu_update); natively nothing. Reads still see them.
   */
  enterLazy(): void;
  leaveLazy(): void;
  /**
   * The balloon is about to give these gfns away / has got them back (Linux's
   * xenmem_reservation_va_mapping_reset and _update): a PV guest removes or restores their
   * direct-map entries; natively (and under HVM) nothing.
   */
  releaseReservation(gfns: Int32Array, count: number): void;
  restoreReservation(gfns: Int32Array, count: number): void;
  lo: number;
  hi: number;
}

/** Bare-metal page-table operations: plain stores through the direct map. */
export class NativePagingOps implements PagingOps {
  readonly largePages = true;
  lo = 0;
  hi = 0;
  constructor(private readonly cpu: GuestCpu) {}

  setPteEarly(tableGfn: Gfn, index: number, lo: number, hi: number): void {
    this.cpu.storePhys64(tableGfn * 4096 + index * 8, lo, hi);
  }

  readPte(tableGfn: Gfn, index: number): void {
    const lo = directMapLo(tableGfn, index * 8);
    if (this.cpu.load64Halves(lo, directMapHi(tableGfn)) === XLATE_FAULT) {
      throw new Error(`guest kernel: fault reading page table gfn ${tableGfn} via the direct map`);
    }
    this.lo = this.cpu.lo;
    this.hi = this.cpu.hi;
  }

  setPte(tableGfn: Gfn, index: number, lo: number, hi: number): void {
    const at = directMapLo(tableGfn, index * 8);
    if (this.cpu.store64Halves(at, directMapHi(tableGfn), lo, hi) === XLATE_FAULT) {
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

  enterLazy(): void {}

  leaveLazy(): void {}

  releaseReservation(_gfns: Int32Array, _count: number): void {}

  restoreReservation(_gfns: Int32Array, _count: number): void {}
}
