/**
 * Writes to write-protected guest page tables: the VMM emulates the instruction into guest
 * memory and revalidates the shadow entries it affects (Xen's sh_validate_guest_entry). Since a
 * process exit is invisible to the VMM, this is also where it guesses that a page stopped being
 * a page table and unshadows it:
 * - "early" (Xen's early unshadow): two back-to-back emulated writes of zero to the same page;
 * - "flood" (KVM's write flooding): 3 emulated writes to a page with no fault using it between;
 * - "none": shadows stay until the pool needs the room.
 */

import type { Gfn, Gva } from "../../hw/addr.js";
import type { Vcpu } from "../../hw/cpu.js";
import { isLarge, isPresent, pteFrame } from "../../hw/pte.js";
import { OP_COPY_PAGE, OP_STORE64, OP_ZERO_PAGE, PF_EMULATED } from "../../hw/vcpu-interfaces.js";
import {
  C_PAGE_COPY,
  C_PAGE_ZERO,
  C_SHADOW_EARLY_UNSHADOW,
  C_SHADOW_EMULATE_WRITE,
  C_SHADOW_FAULT_EMULATE,
  C_SHADOW_FLOOD_UNSHADOW,
  C_SHADOW_UNSHADOW,
  C_SHADOW_VALIDATE_GL1E_CALLS,
  C_WRITES,
} from "../../metrics/counters.js";
import { fl1TypeFor, type ShadowPage, shadowTypeForLevel } from "./page.js";
import { propagateLeaf, propagateTable } from "./propagate.js";
import type { ShadowPaging } from "./shadow.js";

/** KVM's threshold: a page table written this often without use is taken for data. */
const FLOOD_WRITES = 3;

export function emulateWrite(sh: ShadowPaging, cpu: Vcpu, gva: Gva, gfn: Gfn): number {
  const c = sh.counters;
  c[C_SHADOW_FAULT_EMULATE]++;
  c[C_SHADOW_EMULATE_WRITE]++;
  const mfn = sh.frameForWrite(gfn);
  const index = Math.floor((gva % 4096) / 8);
  const events = cpu.events;
  if (events) {
    sh.mem.read64(mfn, index);
    events.push({
      kind: "emulate-write",
      gva,
      gfn,
      mfn,
      index,
      oldLo: sh.mem.lo,
      oldHi: sh.mem.hi,
      lo: cpu.op === OP_ZERO_PAGE ? 0 : cpu.pendLo,
      hi: cpu.op === OP_STORE64 ? cpu.pendHi : 0,
      note: cpu.op === OP_ZERO_PAGE ? "zero" : cpu.op === OP_COPY_PAGE ? "copy" : "store",
      level: sh.tables.shadowsOf(gfn)[0]?.level ?? 0,
    });
  }
  let first = index;
  let last = index;
  let zero: boolean;
  switch (cpu.op) {
    case OP_STORE64:
      sh.mem.write64(mfn, index, cpu.pendLo, cpu.pendHi);
      c[C_WRITES]++;
      zero = cpu.pendLo === 0 && cpu.pendHi === 0;
      break;
    case OP_ZERO_PAGE:
      sh.mem.zeroFrame(mfn);
      c[C_PAGE_ZERO]++;
      first = 0;
      last = 511;
      zero = true;
      break;
    case OP_COPY_PAGE:
      sh.mem.copyFrame(mfn, cpu.pendSrcFrame);
      c[C_PAGE_COPY]++;
      first = 0;
      last = 511;
      zero = false;
      break;
    default:
      // A plain data store of 32 bits.
      sh.mem.writeData(mfn, index, cpu.pendLo);
      c[C_WRITES]++;
      zero = cpu.pendLo === 0;
  }
  validate(sh, gfn, first, last);
  unshadowHeuristics(sh, gfn, zero);
  return PF_EMULATED;
}

/** Recompute the shadow entries first..last of every shadow of guest table gfn. */
export function validate(sh: ShadowPaging, gfn: Gfn, first: number, last: number): void {
  const mfn = sh.p2m.lookup(gfn);
  if (mfn < 0) return;
  const ctl = sh.cpu.ctl;
  // A user-mode write to an out-of-sync L1 is still emulated: its snapshot follows (oos.ts).
  const oos = sh.oos?.isOutOfSync(gfn) ? sh.oos : null;
  const shadows = sh.tables.shadowsOf(gfn);
  sh.tables.trace.events?.push({
    kind: "revalidate",
    gfn,
    index: first,
    count: last,
    shadows: shadows.map((sp) => ({ level: sp.level, mfn: sp.mfn })),
  });
  for (const sp of shadows) {
    const level = sp.level;
    sh.counters[C_SHADOW_VALIDATE_GL1E_CALLS + level - 1] += last - first + 1;
    for (let i = first; i <= last; i++) {
      sh.mem.read64(mfn, i);
      const glo = sh.mem.lo;
      const ghi = sh.mem.hi;
      if (level === 1) {
        propagateLeaf(sh.scratch, glo, ghi, 1, pteFrame(glo, ghi), sh, false);
        oos?.snapshotSet(gfn, i, glo, ghi);
      } else {
        const child = childShadow(sh, glo, ghi, level);
        // An L4 or L3 entry that links an existing shadow resyncs every out-of-sync L1 (Xen's
        // validate_gl4e, validate_gl3e): the new path may lead to one.
        if (level >= 3 && child >= 0) sh.oos?.resyncAll();
        propagateTable(sh.scratch, glo, ghi, level, child, ctl);
      }
      sh.tables.setEntry(sp, i, sh.scratch.lo, sh.scratch.hi);
    }
  }
}

/** The existing shadow a non-leaf guest entry should point at, or -1 (it faults in later). */
function childShadow(sh: ShadowPaging, glo: number, ghi: number, level: number): number {
  if (!isPresent(glo)) return -1;
  const gfn = pteFrame(glo, ghi);
  const type = level === 2 && isLarge(glo) ? fl1TypeFor(glo) : shadowTypeForLevel(level - 1);
  return sh.tables.lookup(gfn, type)?.mfn ?? -1;
}

function unshadowHeuristics(sh: ShadowPaging, gfn: Gfn, zero: boolean): void {
  const policy = sh.options.unshadow;
  if (policy === "early") {
    if (zero && sh.lastZeroWriteGfn === gfn) {
      sh.counters[C_SHADOW_EARLY_UNSHADOW]++;
      sh.lastZeroWriteGfn = -1;
      unshadow(sh, gfn, "two emulated zero writes in a row (early unshadow)");
      return;
    }
    sh.lastZeroWriteGfn = zero ? gfn : -1;
  } else if (policy === "flood") {
    let flooded = false;
    for (const sp of sh.tables.shadowsOf(gfn)) if (++sp.floodCount >= FLOOD_WRITES) flooded = true;
    if (flooded) {
      sh.counters[C_SHADOW_FLOOD_UNSHADOW]++;
      unshadow(sh, gfn, `${FLOOD_WRITES} emulated writes with no use between (write flooding)`);
    }
  }
}

/** Remove every shadow of guest page gfn (sh_remove_shadows); the page is then writable again. */
export function unshadow(sh: ShadowPaging, gfn: Gfn, why = "asked to"): boolean {
  const shadows: ShadowPage[] = sh.tables.shadowsOf(gfn);
  if (shadows.length === 0) return false;
  sh.counters[C_SHADOW_UNSHADOW]++;
  sh.tables.trace.events?.push({
    kind: "unshadow",
    gfn,
    note: why,
    shadows: shadows.map((sp) => ({ level: sp.level, mfn: sp.mfn })),
  });
  for (const sp of shadows) sh.tables.destroy(sp);
  sh.cpu.flushTlbAll();
  return true;
}
