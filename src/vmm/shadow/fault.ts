/**
 * The shadow page-fault handler (Xen's sh_page_fault), the article's sequence:
 *
 *   #PF exit ─> walk the guest tables in software (setting guest A/D as the hardware would)
 *     ├─ the guest walk faults ─────────────> a true fault: inject it (bail_real_fault)
 *     ├─ a write to a shadowed guest table ──> without out-of-sync L1s: emulate it and
 *     │                                        revalidate (emulate.ts)
 *     └─ otherwise a hidden fault: populate the P2M, build the missing shadows along the
 *        path (a new L4 or L3 entry resyncs the out-of-sync L1s), let a written L1 go out of
 *        sync (oos.ts), propagate the leaf (and maybe its neighbours), and then
 *          ├─ a write to a table still in sync, or a user-mode one ──> emulate it
 *          └─ otherwise resume (fault_fixed): the guest's store retries through a writable
 *             leaf onto its out-of-sync L1
 */

import { KIND_SUP_WRITE, KIND_USER_WRITE } from "../../hw/access.js";
import type { Gfn, Gva } from "../../hw/addr.js";
import type { Vcpu } from "../../hw/cpu.js";
import { isAccessed, isDirty, isLarge, isPresent, isWritable, pteFrame } from "../../hw/pte.js";
import { PF_RETRY } from "../../hw/vcpu-interfaces.js";
import { WALK_NO_FRAME, WALK_OK } from "../../hw/walker.js";
import {
  C_SHADOW_FAULT,
  C_SHADOW_FAULT_BAIL_REAL_FAULT,
  C_SHADOW_FAULT_FIXED,
  C_SHADOW_PREFETCH,
  C_VMEXITS,
  C_VMEXITS_PF,
  C_VMM_FROM_L1D,
} from "../../metrics/counters.js";
import { DomainCrash, frameOrCrash } from "../crash.js";
import { emulateWrite } from "./emulate.js";
import { ALL_SLOTS } from "./oos.js";
import { fl1TypeFor, type ShadowPage, shadowTypeForLevel } from "./page.js";
import { propagateLeaf, propagateTable } from "./propagate.js";
import type { ShadowPaging } from "./shadow.js";

/**
 * The VMM's software walk of the guest's tables for gva (guestWalker), its reads counted by the
 * level of the data caches that held each line when they are modelled.
 */
function guestWalk(sh: ShadowPaging, cpu: Vcpu, rootGfn: Gfn, gva: Gva, kind: number): number {
  const w = sh.guestWalker;
  const result = w.walkGuest(sh.mem, sh.frameForWrite(rootGfn), gva, kind, cpu.ctl, sh.p2m.mfn);
  if (w.cache !== null) {
    for (let level = 0; level < 4; level++)
      sh.counters[C_VMM_FROM_L1D + level] += w.refsFrom[level];
  }
  return result;
}

/** Shadow pages one fault can need: l3, l2, l1 (the l4 is the loaded root) and a spare. */
const PAGES_PER_FAULT = 4;

export function handleShadowFault(
  sh: ShadowPaging,
  cpu: Vcpu,
  gva: Gva,
  kind: number,
  _hardwareCode: number,
): number {
  const c = sh.counters;
  c[C_VMEXITS]++;
  c[C_VMEXITS_PF]++;
  c[C_SHADOW_FAULT]++;
  if (!sh.tables.prealloc(PAGES_PER_FAULT)) throw new DomainCrash("the shadow pool is too small");
  const w = sh.guestWalker;
  const rootGfn = Math.floor(cpu.guestCr3 / 4096);
  // The walk may set A/D bits in the root: it must be the domain's own frame (not shared).
  w.tableGfn[4] = rootGfn;
  let result = guestWalk(sh, cpu, rootGfn, gva, kind);
  // A guest table without a frame (never touched, swapped out by the host) or whose frame is
  // shared and needs an A/D bit: give it a frame of its own and walk again; at most twice per
  // level.
  for (let tries = 0; result === WALK_NO_FRAME && tries < 6; tries++) {
    sh.frameForWrite(w.missingGfn);
    result = guestWalk(sh, cpu, rootGfn, gva, kind);
  }
  if (result === WALK_NO_FRAME) {
    throw new DomainCrash(`the guest's tables at gfn ${w.missingGfn} have no frame after 6 tries`);
  }
  const events = cpu.events;
  events?.push({ kind: "guest-walk", gva, code: result, walk: w.trace(rootGfn, result) });
  if (result !== WALK_OK) {
    c[C_SHADOW_FAULT_BAIL_REAL_FAULT]++;
    events?.push({ kind: "true-fault", gva, code: result });
    return result;
  }
  const gfn = w.frame;
  const write = kind === KIND_SUP_WRITE || kind === KIND_USER_WRITE;
  const tableWrite = write && sh.tables.isShadowedTable(gfn);
  const oos = sh.oos;
  if (tableWrite && oos === null) return emulateWrite(sh, cpu, gva, gfn);
  // A write to a shared page breaks the sharing here: the leaf then maps the domain's own copy.
  const populatedBefore = events !== null ? sh.p2m.populated : 0;
  // One call for reads and writes: a branch taken only by read faults would have no type
  // feedback in a run of write faults, and the first read fault would deoptimize the handler.
  frameOrCrash(sh.p2m, gfn, write);
  const root = sh.root;
  if (root === null) throw new DomainCrash("a page fault with no shadow root loaded");
  // Build the path: at each level, the shadow of the guest table one level down.
  const tables = sh.tables;
  const mem = sh.mem;
  const scratch = sh.scratch;
  let sp: ShadowPage = root;
  sp.floodCount = 0;
  let newUpper = false;
  for (let level = 4; level >= 2; level--) {
    const index = w.tableIdx[level];
    const glo = w.entryLo[level] | 0;
    const ghi = w.entryHi[level] | 0;
    const childGfn = pteFrame(glo, ghi);
    const splinter = level === 2 && isLarge(glo);
    const childType = splinter ? fl1TypeFor(glo) : shadowTypeForLevel(level - 1);
    mem.read64(sp.mfn, index);
    const slo = mem.lo;
    const shi = mem.hi;
    const wasPresent = isPresent(slo);
    let child: ShadowPage | null = wasPresent ? tables.pageAt(pteFrame(slo, shi)) : null;
    // Propagated again, at the cost of a compare: the revalidation of every trapped write keeps
    // a present upper entry equal to the guest's entry propagated (test/shadow-repropagation
    // checks it at every #PF), so no write is made today. It keeps the entry right should a
    // guest upper entry ever change without a trap.
    if (child !== null && child.gfn === childGfn && child.type === childType) {
      propagateTable(scratch, glo, ghi, level, child.mfn, cpu.ctl);
      // Nothing ran since the read: an unchanged entry needs no write (setEntry would return).
      if (((scratch.lo ^ slo) | (scratch.hi ^ shi)) !== 0) {
        tables.setEntry(sp, index, scratch.lo, scratch.hi);
      }
    } else {
      child = tables.lookup(childGfn, childType) ?? tables.create(childGfn, childType);
      propagateTable(scratch, glo, ghi, level, child.mfn, cpu.ctl);
      tables.setEntry(sp, index, scratch.lo, scratch.hi);
    }
    if (level >= 3 && !wasPresent) newUpper = true;
    sp = child;
    sp.floodCount = 0;
  }
  const leafLevel = w.level;
  const gl1Gfn = leafLevel === 1 ? w.tableGfn[1] : -1;
  if (oos !== null) {
    // Xen's shadow_get_and_create_l1e: a new L4 or L3 shadow entry resyncs every page.
    oos.resyncSlots(newUpper ? ALL_SLOTS : 0);
    // sh_page_fault: a demand write to an L1 shadowed once lets it go out of sync.
    if (tableWrite) oos.unsync(gfn);
  }
  // The leaf: an l1e of the guest, or its 2 MiB l2e splintered into the FL1.
  // gva's l1 index (addr.ts's tableIndex(gva, 1)) in integers: bits 12..20 of the address.
  const index = leafLevel === 1 ? w.tableIdx[1] : (gva >>> 12) & 511;
  // As int32, so that neither half is a boxed number in the calls below.
  const glo = w.entryLo[leafLevel] | 0;
  const ghi = w.entryHi[leafLevel] | 0;
  propagateLeaf(sh.scratch, glo, ghi, leafLevel, gfn, sh, write);
  sh.tables.setEntry(sp, index, sh.scratch.lo, sh.scratch.hi);
  events?.push({
    kind: "shadow-entry",
    gva,
    gfn,
    mfn: sp.mfn,
    level: leafLevel,
    index,
    lo: sh.scratch.lo >>> 0,
    hi: sh.scratch.hi >>> 0,
    oldLo: glo >>> 0,
    oldHi: ghi >>> 0,
    note: sh.p2m.populated !== populatedBefore ? "populated" : "found",
  });
  if (oos !== null) {
    if (tableWrite && isWritable(sh.scratch.lo)) oos.fixupAdd(gfn, sp.mfn * 512 + index);
    if (leafLevel === 1) oos.snapshotSet(gl1Gfn, index, glo, ghi);
  }
  if (sh.options.prefetch > 0 && leafLevel === 1) prefetch(sh, sp, index, w.tableMfn[1], gl1Gfn);
  // Xen emulates a write to a table unless it is out of sync and the write came from the kernel.
  if (tableWrite && (kind === KIND_USER_WRITE || !oos?.isOutOfSync(gfn))) {
    return emulateWrite(sh, cpu, gva, gfn);
  }
  c[C_SHADOW_FAULT_FIXED]++;
  events?.push({ kind: "hidden-fault", gva, gfn, mfn: sh.p2m.lookup(gfn) });
  return PF_RETRY;
}

/**
 * Propagate up to `prefetch` entries after a fixed l1e, forwards to the end of the shadow
 * page, so that they will not fault (Xen's sh_prefetch, PREFETCH_DISTANCE 32: the fixed entry
 * and up to 31 after it). As Xen does, it stops at the first neighbour that already has a
 * shadow entry, and at a guest entry that would fault anyway for its accessed or dirty bit (not
 * accessed, or writable and not dirty); a guest entry not present, or not backed by a frame, is
 * passed over. An out-of-sync L1's snapshot follows what is propagated.
 */
function prefetch(
  sh: ShadowPaging,
  sl1: ShadowPage,
  index: number,
  gl1Mfn: number,
  gl1Gfn: Gfn,
): void {
  const oos = sh.oos?.isOutOfSync(gl1Gfn) ? sh.oos : null;
  const end = Math.min(512, index + 1 + sh.options.prefetch);
  for (let i = index + 1; i < end; i++) {
    sh.mem.read64(sl1.mfn, i);
    if (isPresent(sh.mem.lo)) return;
    sh.mem.read64(gl1Mfn, i);
    const glo = sh.mem.lo;
    const ghi = sh.mem.hi;
    if (!isPresent(glo)) continue;
    if (!isAccessed(glo) || (isWritable(glo) && !isDirty(glo))) return;
    propagateLeaf(sh.scratch, glo, ghi, 1, pteFrame(glo, ghi), sh, false);
    if (!isPresent(sh.scratch.lo)) continue;
    sh.tables.setEntry(sl1, i, sh.scratch.lo, sh.scratch.hi);
    oos?.snapshotSet(gl1Gfn, i, glo, ghi);
    sh.counters[C_SHADOW_PREFETCH]++;
  }
}
