/**
 * The shadow check of `--check` (not `--check=full`): the same invariants as check.ts, but the
 * l1 and FL1 shadows it reads at a check are only those that can have changed since the last
 * one, and a rotating sample of the rest. Changed means:
 * - the shadow's frame, or the guest table it shadows, was written (HostMemory.writeEpochs,
 *   which every store, A/D update, zeroing and copy marks);
 * - the P2M entry of the guest table changed, or a present entry maps a frame whose P2M entry
 *   changed (the old frame of a gfn that was swapped, shared, ballooned or paged in), or a
 *   frame that became a shadowed page table (which must then be read-only everywhere).
 * Anything else reads the same inputs as at the check that passed it. The rotation (by frame
 * number) reads every shadow at least once every SAMPLE_EVERY checks, and the end of a run
 * checks everything.
 */

import type { Vcpu } from "../../hw/cpu.js";
import { type HostMemory, WORDS_PER_FRAME } from "../../hw/memory.js";
import { isPresent, pteFrame } from "../../hw/pte.js";
import type { HostFrames } from "../frames.js";
import {
  checkIsolation,
  checkLeafPage,
  checkLeafReach,
  checkShadowPwc,
  checkTlbAgainstGuest,
} from "./check.js";
import { isFl1, SH_L1, type ShadowPage, shadowKey } from "./page.js";
import type { ShadowPaging } from "./shadow.js";

/** Checks between two reads of the same unchanged shadow. */
const SAMPLE_EVERY = 16;

export class ShadowSampler {
  /** The write epoch of the last check: frames written at or after it changed since. */
  private since = 0;
  private rotor = 0;
  /** The P2M as the last check saw it. */
  private readonly p2mMfn: Int32Array;
  private readonly p2mType: Uint8Array;
  /** gfn -> 1 when its P2M entry changed since the last check (scratch, cleared after). */
  private readonly gfnChanged: Uint8Array;
  /**
   * mfn -> 1 when no present shadow leaf may keep mapping it as before: scratch, all zeroes
   * between checks, so one array serves every domain of a host (flaggedOf).
   */
  private readonly mfnFlagged: Uint8Array;
  /** Per shadow frame, the (gfn, type) key it held at the last check + 1 (none: not there). */
  private readonly known = new Map<number, number>();

  constructor(sh: ShadowPaging) {
    sh.mem.trackWrites();
    this.p2mMfn = new Int32Array(sh.p2m.gfns).fill(-2); // every gfn differs at the first check
    this.p2mType = new Uint8Array(sh.p2m.gfns);
    this.gfnChanged = new Uint8Array(sh.p2m.gfns);
    this.mfnFlagged = flaggedOf(sh.mem);
  }

  check(sh: ShadowPaging, cpu: Vcpu, frames: HostFrames, domainId: number): string | null {
    const problem = checkIsolation(sh, cpu, frames, domainId, false);
    if (problem !== null) return problem;
    const tlb = checkShadowPwc(sh, cpu) ?? checkTlbAgainstGuest(sh, cpu);
    if (tlb !== null) return tlb;
    const mem = sh.mem;
    const written = mem.writeEpochs as Int32Array;
    const since = this.since;
    this.since = ++mem.writeEpoch;
    const flagged: number[] = [];
    const changedGfns = this.diffP2m(sh, flagged);
    const toRead: ShadowPage[] = [];
    const leaves: ShadowPage[] = [];
    for (const sp of sh.tables.pages()) {
      const key = shadowKey(sp.gfn, sp.type) + 1;
      const guestMfn = isFl1(sp.type) ? -1 : sh.p2m.lookup(sp.gfn);
      if (this.known.get(sp.mfn) !== key) {
        // A new shadow: the guest page it shadows must be read-only in every leaf from now on.
        this.known.set(sp.mfn, key);
        if (guestMfn >= 0) this.flag(guestMfn, flagged);
      }
      if (sp.type !== SH_L1 && !isFl1(sp.type)) continue;
      leaves.push(sp);
      if (
        written[sp.mfn] >= since ||
        (guestMfn >= 0 && written[guestMfn] >= since) ||
        (sp.type === SH_L1 && changedGfns > 0 && this.gfnChanged[sp.gfn] === 1) ||
        sp.mfn % SAMPLE_EVERY === this.rotor
      ) {
        toRead.push(sp);
      }
    }
    this.rotor = (this.rotor + 1) % SAMPLE_EVERY;
    if (flagged.length > 0) this.leavesMapping(sh, leaves, toRead);
    for (const mfn of flagged) this.mfnFlagged[mfn] = 0;
    if (changedGfns > 0) this.gfnChanged.fill(0);
    for (const sp of new Set(toRead)) {
      const found = checkLeafReach(sh, sp, frames, domainId) ?? checkLeafPage(sh, sp);
      if (found !== null) return found;
    }
    return null;
  }

  private flag(mfn: number, flagged: number[]): void {
    if (this.mfnFlagged[mfn] === 0) {
      this.mfnFlagged[mfn] = 1;
      flagged.push(mfn);
    }
  }

  /** Compare the P2M with the last check's copy: mark changed gfns, flag their old frames. */
  private diffP2m(sh: ShadowPaging, flagged: number[]): number {
    const mfn = sh.p2m.mfn;
    const type = sh.p2m.type;
    let changed = 0;
    for (let gfn = 0; gfn < mfn.length; gfn++) {
      const old = this.p2mMfn[gfn];
      if (old === mfn[gfn] && this.p2mType[gfn] === type[gfn]) continue;
      changed++;
      this.gfnChanged[gfn] = 1;
      if (old >= 0) this.flag(old, flagged);
      this.p2mMfn[gfn] = mfn[gfn];
      this.p2mType[gfn] = type[gfn];
    }
    return changed;
  }

  /** Add to `toRead` every leaf shadow with a present entry mapping a flagged frame. */
  private leavesMapping(sh: ShadowPaging, leaves: ShadowPage[], toRead: ShadowPage[]): void {
    const mem = sh.mem;
    const flaggedMfn = this.mfnFlagged;
    for (const sp of leaves) {
      const slot = mem.tableSlot(sp.mfn);
      if (slot < 0) continue; // never written: no entry present
      const pool = mem.pool;
      const base = slot * WORDS_PER_FRAME;
      for (let i = 0; i < 512; i++) {
        const lo = pool[base + 2 * i];
        if (!isPresent(lo)) continue;
        const target = pteFrame(lo, pool[base + 2 * i + 1]);
        if (target < flaggedMfn.length && flaggedMfn[target] === 1) {
          toRead.push(sp);
          break;
        }
      }
    }
  }
}

/** The flag scratch of each host's memory, shared by its domains' samplers. */
const flagScratch = new WeakMap<HostMemory, Uint8Array>();

function flaggedOf(mem: HostMemory): Uint8Array {
  let flagged = flagScratch.get(mem);
  if (flagged === undefined) {
    flagged = new Uint8Array(mem.frames);
    flagScratch.set(mem, flagged);
  }
  return flagged;
}

/** Each domain's sampler, made at its first sampled check (so only checked runs track writes). */
const samplers = new WeakMap<ShadowPaging, ShadowSampler>();

/** The sampled check of a shadow-paged domain (see the top of this file). */
export function sampledCheck(
  sh: ShadowPaging,
  cpu: Vcpu,
  frames: HostFrames,
  domainId: number,
): string | null {
  let sampler = samplers.get(sh);
  if (sampler === undefined) {
    sampler = new ShadowSampler(sh);
    samplers.set(sh, sampler);
  }
  return sampler.check(sh, cpu, frames, domainId);
}
