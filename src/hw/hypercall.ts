/**
 * The PV MMU hypercall interface (Xen's public/xen.h), as the guest calls it through its vCPU:
 * mmu_update (a batch of entry writes, each named by the machine address of the entry),
 * update_va_mapping (one L1 entry, named by the virtual address it maps, with a TLB flush) and
 * mmuext_op (pin/unpin, new base pointer, TLB flushes). Only a PV domain's VMM serves them;
 * natively, and under HVM modes, they return -ENOSYS as memoryOp does.
 */

import type { Gva, Mfn } from "./addr.js";

/** mmu_update request kinds (the low 2 bits of the request's ptr). */
export const MMU_NORMAL_PT_UPDATE = 0;
export const MMU_MACHPHYS_UPDATE = 1;

/** update_va_mapping flags (UVMF_*): which TLB flush follows the update (UVMF_LOCAL: this vCPU). */
export const UVMF_NONE = 0;
export const UVMF_TLB_FLUSH = 1;
export const UVMF_INVLPG = 2;

/** mmuext_op commands (MMUEXT_*), Xen's numbering. */
export const MMUEXT_PIN_L1_TABLE = 0;
export const MMUEXT_PIN_L2_TABLE = 1;
export const MMUEXT_PIN_L3_TABLE = 2;
export const MMUEXT_PIN_L4_TABLE = 3;
export const MMUEXT_UNPIN_TABLE = 4;
export const MMUEXT_NEW_BASEPTR = 5;
export const MMUEXT_TLB_FLUSH_LOCAL = 6;
export const MMUEXT_INVLPG_LOCAL = 7;
export const MMUEXT_TLB_FLUSH_ALL = 8;

/** Errno values Xen's mm.c returns (negated), Linux's numbering. */
export const EPERM = 1;
export const EINVAL = 22;
export const EBUSY = 16;
export const ENOSYS = 38;

/**
 * One mmu_update batch, as struct-of-arrays: request i writes (lo[i], hi[i]) at machine address
 * ptr[i] (mfn * 4096 + index * 8, plus the request kind in the low bits). `done` is the number
 * of requests applied by the last call (Xen's pdone).
 */
export class MmuBatch {
  readonly ptr: Float64Array;
  readonly lo: Uint32Array;
  readonly hi: Uint32Array;
  count = 0;
  done = 0;

  constructor(readonly capacity: number) {
    this.ptr = new Float64Array(capacity);
    this.lo = new Uint32Array(capacity);
    this.hi = new Uint32Array(capacity);
  }

  /** Queue a normal page-table update of entry `index` of table `tableMfn`. */
  push(tableMfn: Mfn, index: number, lo: number, hi: number): void {
    const i = this.count++;
    this.ptr[i] = tableMfn * 4096 + index * 8 + MMU_NORMAL_PT_UPDATE;
    this.lo[i] = lo;
    this.hi[i] = hi;
  }
}

/** The PV MMU hypercalls a VMM serves (vmm/pv/). Each call is an exit. */
export interface PvMmuHypercalls {
  /** Apply batch requests 0..count-1 in order, stopping at the first error: 0 or -errno. */
  mmuUpdate(batch: MmuBatch, count: number): number;
  /** Write the L1 entry that maps gva in the current address space, then flush per `flags`. */
  updateVaMapping(gva: Gva, lo: number, hi: number, flags: number): number;
  /** One mmuext operation: `mfn` for pin/unpin/base pointer, `gva` for INVLPG. 0 or -errno. */
  mmuextOp(cmd: number, mfn: Mfn, gva: Gva): number;
}
