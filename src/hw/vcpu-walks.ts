/**
 * The cold walks of a vCPU's TLB miss besides the plain 1D one (Vcpu.translateSlow picks):
 * the walk through the paging-structure caches, and the 2D walk of hardware-assisted paging
 * with its exits to the VMM. Functions that take the vCPU; its hot path (cpu.ts) never reaches
 * them.
 *
 *   walkCached:       pwc L2 ─hit─> walkBelow(L1 table) ──ok─> fill the caches above the leaf
 *                     pwc L3 ─hit─> walkBelow(L2 table)
 *                     pwc L4 ─hit─> walkBelow(L3 table)
 *                     else ───────> walk(CR3)
 *   translateNested:  NestedWalker.walk ─ok─────────> TLB fill
 *                                       ├#PF────────> XLATE_FAULT (to the guest, no exit)
 *                                       └violation──> Intercepts.eptViolation, walk again
 */

import type * as Counters from "../metrics/counters.js";
import type { Gva } from "./addr.js";
import type { Vcpu } from "./cpu.js";
import { EPT_VIOLATION, NESTED_OK, type NestedRef, type NestedWalker } from "./nested.js";
import { PTE_A } from "./pte.js";
import type { PrefixCache } from "./pwc.js";
import { walkLevels } from "./step-trace.js";
import { cachedPerms } from "./tlb-level.js";
import { MAX_VMM_RETRIES, XLATE_FAULT } from "./vcpu-interfaces.js";
import { WALK_OK, WALK_SLOW } from "./walker.js";

// Local copies of the counters a walk adds to, as in cpu.ts (a 2D walk runs on every HAP miss).
const C_TLB_MISSES: typeof Counters.C_TLB_MISSES = 7;
const C_WALKS: typeof Counters.C_WALKS = 8;
const C_WALK_REFS: typeof Counters.C_WALK_REFS = 9;
const C_EPT_REFS: typeof Counters.C_EPT_REFS = 73;
const C_PWC_HITS: typeof Counters.C_PWC_HITS = 74;
const C_PWC_MISSES: typeof Counters.C_PWC_MISSES = 75;
const C_EPT_PWC_HITS: typeof Counters.C_EPT_PWC_HITS = 76;
const C_EPT_PWC_MISSES: typeof Counters.C_EPT_PWC_MISSES = 77;
const C_NTLB_HITS: typeof Counters.C_NTLB_HITS = 78;
const C_NTLB_MISSES: typeof Counters.C_NTLB_MISSES = 79;
const C_WALK_FROM_L1D: typeof Counters.C_WALK_FROM_L1D = 98;
/** Pages covered by one entry of each level (index 2..4): the prefix of a cached entry. */
const PREFIX_SPAN = [0, 1, 512, 512 * 512, 512 * 512 * 512];

/** Add a walk's references, by the cache level that held each line, to the counters. */
export function countRefsFrom(c: Float64Array, refsFrom: Float64Array): void {
  for (let level = 0; level < 4; level++) c[C_WALK_FROM_L1D + level] += refsFrom[level];
}

/**
 * A walk that starts from the lowest cached upper-level entry of gva, if any, and caches the
 * upper-level entries it reads once it succeeds (their A bits are then set). Entries belong to
 * the TLB tag and die with its flushes; INVLPG drops them all (SDM 4.10.4.1).
 */
export function walkCached(cpu: Vcpu, pwc: PrefixCache[], gva: Gva, kind: number): number {
  const walker = cpu.walker;
  const tag = cpu.tag;
  const gen = cpu.tlb.tagGens[tag];
  const vpn = Math.floor(gva / 4096);
  let hitLevel = 0;
  for (let l = 2; l <= 4; l++) {
    if (pwc[l].lookup(tag, gen, Math.floor(vpn / PREFIX_SPAN[l]))) {
      hitLevel = l;
      break;
    }
  }
  cpu.counters[hitLevel !== 0 ? C_PWC_HITS : C_PWC_MISSES]++;
  const result =
    hitLevel !== 0
      ? walker.walkBelow(cpu.mem, pwc[hitLevel], hitLevel, gva, kind, cpu.ctl)
      : walker.walk(cpu.mem, cpu.rootMfn, gva, kind, cpu.ctl);
  if (result === WALK_OK) {
    for (let l = walker.firstLevel; l > walker.level; l--) {
      pwc[l].fill(
        tag,
        gen,
        Math.floor(vpn / PREFIX_SPAN[l]),
        walker.tableMfn[l - 1],
        walker.andLoAt[l] | PTE_A,
        walker.orHiAt[l],
      );
    }
  }
  return result;
}

/**
 * A TLB miss under hardware-assisted paging: the 2D walk. A guest #PF goes to the guest with
 * no exit; an EPT violation exits to the VMM, which fixes the EPT, and the walk is retried.
 */
export function translateNested(cpu: Vcpu, nested: NestedWalker, gva: Gva, kind: number): number {
  const c = cpu.counters;
  const gvaHi = (gva / 4294967296) | 0;
  const gvaLo = gva | 0;
  let retries = 0;
  for (;;) {
    if (cpu.trace !== null) nested.log = [];
    const result = nested.walk(
      cpu.mem,
      cpu.eptRoot,
      cpu.rootMfn,
      gvaHi,
      gvaLo,
      kind,
      cpu.ctl,
      cpu.tag,
      cpu.tlb.tagGens[cpu.tag],
    );
    c[C_WALKS]++;
    c[C_WALK_REFS] += nested.refs;
    c[C_EPT_REFS] += nested.eptRefs;
    c[C_PWC_HITS] += nested.pwcHits;
    c[C_PWC_MISSES] += nested.pwcMisses;
    c[C_EPT_PWC_HITS] += nested.eptPwcHits;
    c[C_EPT_PWC_MISSES] += nested.eptPwcMisses;
    c[C_NTLB_HITS] += nested.ntlbHits;
    c[C_NTLB_MISSES] += nested.ntlbMisses;
    cpu.walkHist[nested.refs]++;
    if (cpu.dcache !== null) countRefsFrom(c, nested.refsFrom);
    if (cpu.trace !== null) recordNestedWalk(cpu, nested, result);
    if (result === NESTED_OK) {
      const perms = cachedPerms(nested.allowed, nested.dirty);
      const tag = nested.global ? cpu.globalTag : cpu.tag;
      const vpn = Math.floor(gva / 4096);
      if (nested.level === 1) {
        const keyHi = tag * 65536 + ((gva / 4294967296) | 0);
        cpu.tlb.fillSmall(keyHi, (gva >>> 0) >>> 12, tag, nested.frame, perms);
      } else {
        const span = nested.level === 2 ? 512 : 262144;
        cpu.tlb.fill(vpn, tag, nested.level, nested.frame - (vpn % span), perms);
      }
      return nested.frame;
    }
    if (result !== EPT_VIOLATION) {
      cpu.faultCode = result;
      return XLATE_FAULT;
    }
    if (!cpu.intercepts?.eptViolation) throw new Error("EPT violation with no VMM to handle it");
    if (++retries > MAX_VMM_RETRIES) {
      throw new Error(
        `VMM livelock: EPT violation on gfn ${nested.violationGfn} at 0x${gva.toString(16)} keeps coming back`,
      );
    }
    cpu.intercepts.eptViolation(
      cpu,
      nested.violationGfn,
      nested.violationWrite,
      nested.violationFetch,
    );
  }
}

/**
 * The batch's TLB miss under hardware-assisted paging, on int32 halves (Vcpu.hitRun): the 2D
 * walk when both of the walker's memos know the page (NestedWalker.walkMemoHalves), to a frame
 * in memory, filled into the TLB and counted as translateSlow and translateNested count it.
 * Returns the frame, or WALK_SLOW with nothing changed (translateSlow then takes the miss from
 * the start). Only for a miss whose 4 KiB probes just missed with nothing run since (the fill
 * assumes no copy).
 */
export function nestedMissHalves(
  cpu: Vcpu,
  nested: NestedWalker,
  gvaLo: number,
  gvaHi: number,
  kind: number,
): number {
  const tlb = cpu.tlb;
  const tag = cpu.tag;
  const globalTag = cpu.globalTag;
  // Tlb.mayHaveLarge of both tags (translateSlow's large probes find nothing outside them).
  const vpn = gvaHi * 1048576 + (gvaLo >>> 12);
  const largeFirst = tlb.largeFirst;
  const largeLast = tlb.largeLast;
  if (
    (vpn >= largeFirst[tag] && vpn <= largeLast[tag]) ||
    (vpn >= largeFirst[globalTag] && vpn <= largeLast[globalTag])
  ) {
    return WALK_SLOW;
  }
  const frame = nested.walkMemoHalves(
    cpu.mem,
    cpu.eptRoot,
    cpu.rootMfn,
    gvaLo,
    gvaHi,
    kind,
    cpu.ctl,
  );
  // A frame past memory: translateSlow's (reads of it return all ones there).
  if (frame === WALK_SLOW || frame >= cpu.mem.frames) return WALK_SLOW;
  const t = nested.global ? globalTag : tag;
  tlb.fillSmallAbsent(
    t * 65536 + gvaHi,
    gvaLo >>> 12,
    t,
    frame,
    cachedPerms(nested.allowed, nested.dirty),
  );
  const c = cpu.counters;
  c[C_TLB_MISSES]++;
  c[C_WALKS]++;
  c[C_WALK_REFS] += nested.refs;
  c[C_EPT_REFS] += nested.eptRefs;
  cpu.walkHist[nested.refs]++;
  return frame;
}

function recordNestedWalk(cpu: Vcpu, nested: NestedWalker, result: number): void {
  const levels = walkLevels(nested);
  const refs: NestedRef[] = nested.log ?? [];
  nested.log = null;
  if (cpu.trace === null) return;
  // A #PF error code and EPT_VIOLATION are recorded as they are (see WalkTrace.result).
  const code = result === NESTED_OK ? WALK_OK : result;
  cpu.trace.push({ root: cpu.rootMfn, levels, result: code, nested: refs });
  cpu.events?.push({ kind: "walk", index: cpu.trace.length - 1, code });
}
