/**
 * The invariants of PV direct paging, checked from outside (nothing changes: no counter, no
 * A/D bit, no TLB entry):
 * - the vCPU walks the guest's base pointer, an L4 in use;
 * - isolation: every valid TLB entry of the domain reaches a frame the domain owns, and never
 *   writes one typed as a page table; every paging-structure cache entry names a validated
 *   table of the level below (and, in the running address space, the one a walk reads);
 * - every present entry of every validated table obeys the rules (its frame the domain's, an
 *   L2..L4 entry pointing at a table of the level below, no superpage, no Xen slot);
 * - the type counts and general references equal the references found (entries, pins, the
 *   base pointer), and a frame with a page-table type in use has no writable mapping.
 */

import { checkPwc, forEachTlbFrame } from "../../hw/check.js";
import type { Vcpu } from "../../hw/cpu.js";
import { isLarge, isPresent, isWritable, pteFrame } from "../../hw/pte.js";
import { isXenL4Slot, PGT_L1, PGT_L4, PGT_NAMES, PGT_WRITABLE } from "./mm.js";
import type { PvPaging } from "./pv.js";

/** The quick check (after system calls and faults): the root and the TLB's reach. */
export function checkPvIsolation(pv: PvPaging, cpu: Vcpu): string | null {
  const mm = pv.mm;
  if (cpu.paging) {
    if (cpu.rootMfn !== pv.baseMfn) {
      return `pv: the vCPU walks root mfn ${cpu.rootMfn}, not the base pointer ${pv.baseMfn}`;
    }
    if (!mm.isTable(pv.baseMfn) || pv.types.type[pv.baseMfn] !== PGT_L4) {
      return `pv: the base pointer mfn ${pv.baseMfn} is not an L4 table in use`;
    }
  }
  return (
    forEachTlbFrame(cpu, (mfn, writable, where) => {
      if (!mm.owns(mfn)) return `pv: ${where} reaches mfn ${mfn}, not the domain's`;
      if (writable && mm.isTable(mfn))
        return `pv: ${where} lets the guest write its page table mfn ${mfn}`;
      return null;
    }) ??
    // The paging-structure caches: each entry names a validated table of the level below.
    checkPwc(cpu, cpu.pwc, cpu.rootMfn, (mfn, level) => {
      if (!mm.owns(mfn)) return "not the domain's";
      if (!mm.isTable(mfn) || pv.types.type[mfn] !== level) {
        return `of type ${PGT_NAMES[pv.types.type[mfn]]} (count ${pv.types.count[mfn]}), not an l${level} table`;
      }
      return null;
    })
  );
}

/** The full check: every validated table's entries, and every count recounted. */
export function checkPvTables(pv: PvPaging): string | null {
  const mm = pv.mm;
  const t = pv.types;
  const mem = pv.mem;
  const p2m = pv.p2m;
  const frames = mm.frames.frames;
  const typeRefs = new Int32Array(frames);
  const refs = new Int32Array(frames);
  for (let gfn = 0; gfn < p2m.gfns; gfn++) {
    const mfn = p2m.mfn[gfn];
    if (mfn < 0) continue;
    if (t.pinned[mfn] === 1) typeRefs[mfn]++;
    if (!mm.isTable(mfn)) continue;
    const level = t.type[mfn];
    for (let i = 0; i < 512; i++) {
      mem.read64(mfn, i);
      const lo = mem.lo;
      if (!isPresent(lo)) continue;
      const where = `pv: ${PGT_NAMES[level]} table mfn ${mfn} (gfn ${gfn}) entry ${i}`;
      if (level === PGT_L4 && isXenL4Slot(i)) return `${where} is in Xen's slots`;
      const target = pteFrame(lo, mem.hi);
      if (!mm.owns(target)) return `${where} points at mfn ${target}, not the domain's`;
      refs[target]++;
      if (level === PGT_L1) {
        if (!isWritable(lo)) continue;
        if (t.type[target] !== PGT_WRITABLE) {
          return `${where} maps mfn ${target} writable, but its type is ${PGT_NAMES[t.type[target]]}`;
        }
        typeRefs[target]++;
        continue;
      }
      if (isLarge(lo)) return `${where} is a superpage`;
      if (!mm.isTable(target) || t.type[target] !== level - 1) {
        return `${where} links mfn ${target} of type ${PGT_NAMES[t.type[target]]} (count ${t.count[target]})`;
      }
      typeRefs[target]++;
    }
  }
  if (pv.baseMfn >= 0) typeRefs[pv.baseMfn]++;
  for (let gfn = 0; gfn < p2m.gfns; gfn++) {
    const mfn = p2m.mfn[gfn];
    if (mfn < 0) continue;
    if (t.count[mfn] !== typeRefs[mfn]) {
      return `pv: mfn ${mfn} (gfn ${gfn}, ${PGT_NAMES[t.type[mfn]]}) has type count ${t.count[mfn]}, ${typeRefs[mfn]} references found`;
    }
    if (t.refs[mfn] !== refs[mfn]) {
      return `pv: mfn ${mfn} (gfn ${gfn}) counts ${t.refs[mfn]} references, ${refs[mfn]} found`;
    }
  }
  return null;
}
