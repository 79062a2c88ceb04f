/**
 * The guest kernel's page-table operations on Xen PV (after Linux's arch/x86/xen/mmu_pv.c).
 * The kernel keeps thinking in gfns; this layer alone knows that its tables hold mfns:
 * - an entry is converted gfn -> mfn on the way in (the guest's own p2m list) and mfn -> gfn on
 *   the way out (the m2p table Xen maps read-only into every PV guest);
 * - entries are written by mmu_update (queued between enterLazy and leaveLazy and sent in
 *   batches, as Linux's lazy MMU mode does around fork, zap and mprotect loops), or, with
 *   `writablePageTables`, L1 entries by a plain store that traps and is emulated (ptwr);
 * - a new page table is made read-only in the direct map (update_va_mapping) and pinned
 *   (MMUEXT_PIN_Ln_TABLE); a freed one unpinned and made writable again;
 * - CR3 writes become MMUEXT_NEW_BASEPTR, INVLPG MMUEXT_INVLPG_LOCAL, a full flush
 *   MMUEXT_TLB_FLUSH_ALL;
 * - early boot (paging off) is the domain builder's: the tables are written with mfns, the
 *   direct-map entries of the tables made read-only, then the L4 pinned (which validates the
 *   whole tree) before the first NEW_BASEPTR.
 * The p2m list is read from the VMM's P2M: a PV domain's P2M changes only at the guest's own
 * request (the balloon), so it is what the guest would keep.
 */

import { type Gfn, type Gpa, type Gva, type Mfn, tableIndex } from "../hw/addr.js";
import {
  MMUEXT_INVLPG_LOCAL,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_TLB_FLUSH_ALL,
  MMUEXT_UNPIN_TABLE,
  MmuBatch,
  UVMF_NONE,
} from "../hw/hypercall.js";
import { isPresent, PTE_HI_ADDR_MASK, PTE_RW, pteFrame, pteHi, pteLo } from "../hw/pte.js";
import { type GuestCpu, XLATE_FAULT } from "../hw/vcpu-interfaces.js";
import { DIRECT_MAP_LEAF } from "./kernel.js";
import { directMap } from "./layout.js";
import type { PagingOps } from "./paging-ops.js";

/** Requests in one mmu_update batch (Linux's multicall batch holds 32). */
const BATCH = 32;

export interface PvPagingOptions {
  /** Write L1 entries by plain stores that Xen traps and emulates (older PV kernels did). */
  writablePageTables?: boolean;
}

export class PvPagingOps implements PagingOps {
  readonly largePages = false;
  lo = 0;
  hi = 0;
  private readonly batch = new MmuBatch(BATCH);
  private lazy = false;
  /** Level of each gfn while it is a page table (for the ptwr choice). */
  private readonly level: Int8Array;
  /** Tables written during early boot (the builder's), to be made read-only before the pin. */
  private readonly bootTables: Gfn[] = [];
  private readonly isBootTable: Uint8Array;
  private booted = false;
  private readonly ptwr: boolean;

  constructor(
    private readonly cpu: GuestCpu,
    /** The guest's p2m list: gfn -> mfn (-1: none). Read-only here. */
    private readonly p2mList: Int32Array,
    /** The machine-to-phys table: mfn -> gfn + 1 (0: none). Read-only here. */
    private readonly m2p: Int32Array,
    options: PvPagingOptions = {},
  ) {
    this.level = new Int8Array(p2mList.length);
    this.isBootTable = new Uint8Array(p2mList.length);
    this.ptwr = options.writablePageTables ?? false;
  }

  /** The machine frame of gfn; a gfn without one is a guest kernel bug. */
  private mfnOf(gfn: Gfn): Mfn {
    const mfn = gfn >= 0 && gfn < this.p2mList.length ? this.p2mList[gfn] : -1;
    if (mfn < 0) throw new Error(`guest kernel (PV): gfn ${gfn} has no machine frame`);
    return mfn;
  }

  /** An entry with its frame replaced by `frame` (flags and NX kept). */
  private withFrame(lo: number, hi: number, frame: number): void {
    this.lo = ((lo & 0xfff) | ((frame % 0x100000) << 12)) >>> 0;
    this.hi = ((hi & ~PTE_HI_ADDR_MASK) | Math.floor(frame / 0x100000)) >>> 0;
  }

  /** Convert a present entry to machine form into lo/hi. */
  private toMachine(lo: number, hi: number): void {
    if (!isPresent(lo)) {
      this.lo = lo;
      this.hi = hi;
      return;
    }
    this.withFrame(lo, hi, this.mfnOf(pteFrame(lo, hi)));
  }

  /** Convert a present entry to the guest's form (frames as gfns) into lo/hi. */
  private toPhys(lo: number, hi: number): void {
    if (!isPresent(lo)) {
      this.lo = lo;
      this.hi = hi;
      return;
    }
    const mfn = pteFrame(lo, hi);
    this.withFrame(lo, hi, mfn < this.m2p.length ? this.m2p[mfn] - 1 : -1);
  }

  setPteEarly(tableGfn: Gfn, index: number, lo: number, hi: number): void {
    if (this.isBootTable[tableGfn] === 0) {
      this.isBootTable[tableGfn] = 1;
      this.bootTables.push(tableGfn);
    }
    this.toMachine(lo, hi);
    this.cpu.storePhys64(tableGfn * 4096 + index * 8, this.lo, this.hi);
  }

  readPte(tableGfn: Gfn, index: number): void {
    // A queued update of this entry is what the kernel wrote last.
    const ptr = this.mfnOf(tableGfn) * 4096 + index * 8;
    const b = this.batch;
    for (let i = b.count - 1; i >= 0; i--) {
      if (b.ptr[i] === ptr) {
        this.toPhys(b.lo[i], b.hi[i]);
        return;
      }
    }
    if (this.cpu.load64(directMap(tableGfn) + index * 8) === XLATE_FAULT) {
      throw new Error(`guest kernel: fault reading page table gfn ${tableGfn} via the direct map`);
    }
    this.toPhys(this.cpu.lo, this.cpu.hi);
  }

  setPte(tableGfn: Gfn, index: number, lo: number, hi: number): void {
    this.toMachine(lo, hi);
    if (this.ptwr && !this.lazy && this.level[tableGfn] === 1) {
      const gva = directMap(tableGfn) + index * 8;
      if (this.cpu.store64(gva, this.lo, this.hi) === XLATE_FAULT) {
        throw new Error(`guest kernel (PV): Xen refused a write to L1 table gfn ${tableGfn}`);
      }
      return;
    }
    this.batch.push(this.mfnOf(tableGfn), index, this.lo, this.hi);
    if (!this.lazy || this.batch.count === BATCH) this.flush();
  }

  /** Send the queued updates (one mmu_update). A refusal is a guest kernel bug (Linux BUGs). */
  private flush(): void {
    const b = this.batch;
    if (b.count === 0) return;
    const count = b.count;
    b.count = 0;
    const rc = this.cpu.mmuUpdate(b, count);
    if (rc < 0) {
      throw new Error(`guest kernel (PV): mmu_update refused update ${b.done} (errno ${-rc})`);
    }
  }

  private mmuext(cmd: number, mfn: Mfn, gva: Gva): void {
    this.flush();
    const rc = this.cpu.mmuextOp(cmd, mfn, gva);
    if (rc < 0) throw new Error(`guest kernel (PV): mmuext_op ${cmd} refused (errno ${-rc})`);
  }

  /** Point the direct-map entry of gfn at its frame, writable or not. */
  private remap(gfn: Gfn, writable: boolean): void {
    this.flush();
    const mfn = this.mfnOf(gfn);
    const flags = writable ? DIRECT_MAP_LEAF : DIRECT_MAP_LEAF & ~PTE_RW;
    const rc = this.cpu.updateVaMapping(directMap(gfn), pteLo(mfn, flags), pteHi(mfn, true), 0);
    if (rc < 0) throw new Error(`guest kernel (PV): update_va_mapping of gfn ${gfn}: ${-rc}`);
  }

  /**
   * A new table (zeroed through its still writable mapping): read-only in the direct map, then
   * pinned at its level. Xen flushes the TLB on the type change if the writable mapping may
   * still be cached (need_flush_tlb_flush), as for Linux's make_lowmem_page_readonly.
   */
  allocPt(gfn: Gfn, level: number): void {
    this.remap(gfn, false);
    this.mmuext(MMUEXT_PIN_L1_TABLE + level - 1, this.mfnOf(gfn), 0);
    this.level[gfn] = level;
  }

  releasePt(gfn: Gfn, _level: number): void {
    this.mmuext(MMUEXT_UNPIN_TABLE, this.mfnOf(gfn), 0);
    this.remap(gfn, true);
    this.level[gfn] = 0;
  }

  writeCr3(gpa: Gpa, _pcid: number, _noFlush: boolean): void {
    const gfn = Math.floor(gpa / 4096);
    if (!this.booted) this.finishBoot(gfn);
    this.mmuext(MMUEXT_NEW_BASEPTR, this.mfnOf(gfn), 0);
  }

  flushTlbOne(gva: Gva): void {
    this.mmuext(MMUEXT_INVLPG_LOCAL, 0, gva);
  }

  flushTlbAll(): void {
    this.mmuext(MMUEXT_TLB_FLUSH_ALL, 0, 0);
  }

  enterLazy(): void {
    this.lazy = true;
  }

  leaveLazy(): void {
    this.flush();
    this.lazy = false;
  }

  /** Before the balloon gives gfns away: no direct-map entry may keep their frames. */
  releaseReservation(gfns: Int32Array, count: number): void {
    this.flush();
    for (let i = 0; i < count; i++) {
      const rc = this.cpu.updateVaMapping(directMap(gfns[i]), 0, 0, UVMF_NONE);
      if (rc < 0) throw new Error(`guest kernel (PV): unmapping gfn ${gfns[i]}: ${-rc}`);
    }
    this.mmuext(MMUEXT_TLB_FLUSH_ALL, 0, 0);
  }

  /** The balloon got gfns back (with new frames): map them in the direct map again. */
  restoreReservation(gfns: Int32Array, count: number): void {
    for (let i = 0; i < count; i++) this.remap(gfns[i], true);
  }

  /**
   * The builder's last steps before the first base pointer: the direct-map entries of the boot
   * tables become read-only (written with machine stores, the tables not typed yet), then the
   * L4 is pinned, which validates every table under it.
   */
  private finishBoot(l4: Gfn): void {
    const cpu = this.cpu;
    for (const table of this.bootTables) {
      const gva = directMap(table);
      let gfn = l4;
      for (let level = 4; level > 1; level--) {
        cpu.loadPhys64(gfn * 4096 + tableIndex(gva, level) * 8);
        gfn = this.m2p[pteFrame(cpu.lo, cpu.hi)] - 1;
      }
      const slot = gfn * 4096 + tableIndex(gva, 1) * 8;
      cpu.loadPhys64(slot);
      cpu.storePhys64(slot, (cpu.lo & ~PTE_RW) >>> 0, cpu.hi);
    }
    for (const table of this.bootTables) this.isBootTable[table] = 0;
    this.bootTables.length = 0;
    this.mmuext(MMUEXT_PIN_L1_TABLE + 3, this.mfnOf(l4), 0);
    this.booted = true;
  }
}
