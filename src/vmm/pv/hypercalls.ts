/**
 * The PV MMU hypercalls as Xen serves them (do_mmu_update, do_update_va_mapping,
 * do_mmuext_op). Each is one exit (vmexits, vmexits_hypercall). Every change to a validated
 * table goes through PvMm.modEntry, so the type rules hold whatever the guest asks; a refused
 * request returns Xen's errno and changes nothing.
 */

import { type Gva, type Mfn, tableIndex } from "../../hw/addr.js";
import {
  EINVAL,
  ENOSYS,
  MMU_NORMAL_PT_UPDATE,
  MMUEXT_INVLPG_LOCAL,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_PIN_L4_TABLE,
  MMUEXT_TLB_FLUSH_ALL,
  MMUEXT_TLB_FLUSH_LOCAL,
  MMUEXT_UNPIN_TABLE,
  type MmuBatch,
  UVMF_INVLPG,
  UVMF_TLB_FLUSH,
} from "../../hw/hypercall.js";
import { isLarge, isPresent, pteFrame } from "../../hw/pte.js";
import {
  C_CALLS_TO_MMU_UPDATE,
  C_CALLS_TO_MMUEXT_OP,
  C_CALLS_TO_UPDATE_VA,
  C_CR3_WRITES,
  C_INVLPG,
  C_NUM_MMUEXT_OPS,
  C_NUM_PAGE_UPDATES,
  C_WRITABLE_MMU_UPDATES,
} from "../../metrics/counters.js";
import { PGT_L1, PGT_L4, PGT_WRITABLE } from "./mm.js";
import type { PvPaging } from "./pv.js";

/**
 * mmu_update: each request names an entry by its machine address. A validated table is
 * changed through mod_lN_entry; any other frame of the domain is plain memory, written if it
 * can take the writable type (Xen's writable_mmu_updates). Stops at the first error; batch.done
 * says how many were applied.
 */
export function mmuUpdate(pv: PvPaging, batch: MmuBatch, count: number): number {
  const call = pv.hypercall("mmu_update");
  if (call !== null && count > 0) {
    call.count = count;
    call.mfn = Math.floor(batch.ptr[0] / 4096);
    call.index = Math.floor((batch.ptr[0] % 4096) / 8);
    call.lo = batch.lo[0];
    call.hi = batch.hi[0];
  }
  const c = pv.counters;
  c[C_CALLS_TO_MMU_UPDATE]++;
  const mm = pv.mm;
  const types = pv.types;
  const n = Math.min(count, batch.capacity);
  let rc = 0;
  let i = 0;
  for (; i < n; i++) {
    const ptr = batch.ptr[i];
    if (ptr % 4 !== MMU_NORMAL_PT_UPDATE) {
      rc = -ENOSYS; // MMU_MACHPHYS_UPDATE and the rest are not modelled
      break;
    }
    const tableMfn = Math.floor(ptr / 4096);
    const index = Math.floor((ptr % 4096) / 8);
    if (!mm.owns(tableMfn)) {
      rc = -EINVAL;
      break;
    }
    const lo = batch.lo[i];
    const hi = batch.hi[i];
    if (mm.isTable(tableMfn)) {
      rc = mm.modEntry(tableMfn, index, types.type[tableMfn], lo, hi);
    } else {
      rc = mm.getPageType(tableMfn, PGT_WRITABLE);
      if (rc === 0) {
        pv.mem.write64(tableMfn, index, lo, hi);
        mm.putPageType(tableMfn);
        c[C_WRITABLE_MMU_UPDATES]++;
      }
    }
    if (rc < 0) break;
    c[C_NUM_PAGE_UPDATES]++;
  }
  batch.done = i;
  return rc < 0 ? pv.fail(rc) : 0;
}

/**
 * update_va_mapping: the L1 entry that maps gva in the loaded address space, found by walking
 * the guest's tables from the base pointer (no L1 there: -EINVAL), changed as mmu_update
 * would, then the TLB flush that `flags` asks for.
 */
export function updateVaMapping(
  pv: PvPaging,
  gva: Gva,
  lo: number,
  hi: number,
  flags: number,
): number {
  const call = pv.hypercall("update_va_mapping");
  if (call !== null) {
    call.gva = gva;
    call.lo = lo;
    call.hi = hi;
    call.count = flags;
  }
  pv.counters[C_CALLS_TO_UPDATE_VA]++;
  const mem = pv.mem;
  let table = pv.baseMfn;
  if (table < 0) return pv.fail(-EINVAL);
  for (let level = 4; level > 1; level--) {
    mem.read64(table, tableIndex(gva, level));
    if (!isPresent(mem.lo) || isLarge(mem.lo)) return pv.fail(-EINVAL);
    table = pteFrame(mem.lo, mem.hi);
  }
  const rc = pv.mm.modEntry(table, tableIndex(gva, 1), PGT_L1, lo, hi);
  if (rc < 0) return pv.fail(rc);
  pv.counters[C_NUM_PAGE_UPDATES]++;
  const cpu = pv.cpu;
  if ((flags & UVMF_TLB_FLUSH) !== 0) pv.mm.flush();
  else if ((flags & UVMF_INVLPG) !== 0) {
    cpu.counters[C_INVLPG]++;
    cpu.invalidatePage(gva);
  }
  return 0;
}

/**
 * mmuext_op, one operation per call: pin a table at a level (validating it: the pin holds a
 * type reference, so the table stays validated while the guest builds it), unpin, load a new
 * base pointer (a type reference on the L4 while loaded; Xen writes CR3, flushing the TLB; PV
 * guests get no PCIDs), flush the TLB or one page of it.
 */
/** MMUEXT_* names, by command number (hw/hypercall.ts). */
const MMUEXT_NAMES = [
  "PIN_L1_TABLE",
  "PIN_L2_TABLE",
  "PIN_L3_TABLE",
  "PIN_L4_TABLE",
  "UNPIN_TABLE",
  "NEW_BASEPTR",
  "TLB_FLUSH_LOCAL",
  "INVLPG_LOCAL",
  "TLB_FLUSH_ALL",
];

export function mmuextOp(pv: PvPaging, cmd: number, mfn: Mfn, gva: Gva): number {
  const call = pv.hypercall("mmuext_op");
  if (call !== null) {
    call.note = `mmuext_op MMUEXT_${MMUEXT_NAMES[cmd] ?? cmd}`;
    if (cmd === MMUEXT_INVLPG_LOCAL) call.gva = gva;
    else call.mfn = mfn;
  }
  const c = pv.counters;
  c[C_CALLS_TO_MMUEXT_OP]++;
  c[C_NUM_MMUEXT_OPS]++;
  const mm = pv.mm;
  const types = pv.types;
  const cpu = pv.cpu;
  if (cmd >= MMUEXT_PIN_L1_TABLE && cmd <= MMUEXT_PIN_L4_TABLE) {
    if (!mm.owns(mfn) || types.pinned[mfn] === 1) return pv.fail(-EINVAL);
    const rc = mm.getPageType(mfn, cmd - MMUEXT_PIN_L1_TABLE + PGT_L1);
    if (rc < 0) return pv.fail(mm.refuse(rc));
    types.pinned[mfn] = 1;
    return 0;
  }
  switch (cmd) {
    case MMUEXT_UNPIN_TABLE:
      if (!mm.owns(mfn) || types.pinned[mfn] === 0) return pv.fail(-EINVAL);
      types.pinned[mfn] = 0;
      mm.putPageType(mfn);
      return 0;
    case MMUEXT_NEW_BASEPTR: {
      if (!mm.owns(mfn)) return pv.fail(-EINVAL);
      const rc = mm.getPageType(mfn, PGT_L4);
      if (rc < 0) return pv.fail(mm.refuse(rc));
      const old = pv.baseMfn;
      pv.baseMfn = mfn;
      c[C_CR3_WRITES]++;
      cpu.guestCr3 = mfn * 4096;
      cpu.loadRoot(mfn, 0, false);
      if (old >= 0) mm.putPageType(old);
      return 0;
    }
    case MMUEXT_TLB_FLUSH_LOCAL:
    case MMUEXT_TLB_FLUSH_ALL:
      mm.flush();
      return 0;
    case MMUEXT_INVLPG_LOCAL:
      c[C_INVLPG]++;
      cpu.invalidatePage(gva);
      return 0;
    default:
      return pv.fail(-ENOSYS);
  }
}
