/**
 * Shadow paging for one domain (after Xen's shadow code and KVM's shadow MMU): the VMM's side
 * of the vCPU. The hardware walks shadow tables; the guest's own tables are write-protected and
 * read by the VMM. This file holds the state and the exits that are not page faults (CR3 writes,
 * INVLPG, accesses with paging off); fault.ts handles #PF exits and emulate.ts the emulated
 * writes to guest page tables.
 */

import type { UnshadowPolicy, WritableSearch } from "../../config/scenario.js";
import { type Gfn, type Gpa, type Gva, type Mfn, tableIndex } from "../../hw/addr.js";
import type { Vcpu } from "../../hw/cpu.js";
import type { GuestMemoryPeek } from "../../hw/peek.js";
import { isPresent, pteFrame } from "../../hw/pte.js";
import { Walker } from "../../hw/walker.js";
import {
  C_SHADOW_INVLPG,
  C_SHADOW_P2M_REMOVALS,
  C_VMEXITS,
  C_VMEXITS_CR3,
  C_VMEXITS_INVLPG,
  type VmmReportCounters,
} from "../../metrics/counters.js";
import { memoryOp } from "../balloon/reservation.js";
import { DomainCrash, frameOrCrash } from "../crash.js";
import {
  type PagingContext,
  PagingModeBase,
  type ReachVisitor,
  type VmmPaging,
} from "../paging.js";
import { checkBookkeeping, checkShadow, forEachReach } from "./check.js";
import { sampledCheck } from "./check-sampled.js";
import { unshadow } from "./emulate.js";
import { handleShadowFault } from "./fault.js";
import { OosTable, SHADOW_OOS_PAGES } from "./oos.js";
import { isFl1, SH_L4, type ShadowPage } from "./page.js";
import { Spte } from "./propagate.js";
import { ShadowTables } from "./tables.js";

export interface ShadowOptions {
  /** Pages in the domain's shadow pool. */
  poolPages: number;
  unshadow: UnshadowPolicy;
  /** Neighbouring guest entries to propagate on a fixed fault (0: none). */
  prefetch: number;
  writableSearch: WritableSearch;
  /** Out-of-sync L1 shadows (Xen's SHOPT_OUT_OF_SYNC, oos.ts). */
  outOfSync: boolean;
}

/** Xen's default shadow pool: 1 MiB per vCPU plus 8 KiB (2 pages) per MiB of guest memory. */
export function defaultShadowPoolPages(memoryBytes: number, vcpus = 1): number {
  return vcpus * 256 + 2 * Math.ceil(memoryBytes / 2 ** 20);
}

/** Fewest pool pages that can hold one translation path and a spare. */
export const MIN_SHADOW_POOL = 8;

export class ShadowPaging extends PagingModeBase implements VmmPaging {
  readonly mode = "shadow";
  readonly guestKernel = "hvm";
  readonly guestView: GuestMemoryPeek;
  readonly tables: ShadowTables;
  /** The frames of the pool (the host's, lent to the domain until it is destroyed). */
  private readonly poolFrames: Mfn[];
  /** The software walker for guest tables (tables found through the P2M). */
  readonly guestWalker = new Walker();
  readonly scratch = new Spte();
  /** The shadow each vCPU has loaded. */
  root: ShadowPage | null = null;
  /** Early unshadow: the gfn of the last emulated write if it stored zero, else -1. */
  lastZeroWriteGfn: Gfn = -1;
  /** The vCPU's out-of-sync L1 shadows, or null when they are off. */
  readonly oos: OosTable | null;

  constructor(
    context: PagingContext,
    poolFrames: Mfn[],
    readonly options: ShadowOptions,
  ) {
    super(context);
    const { mem, p2m, counters } = context;
    this.guestView = p2m;
    this.poolFrames = poolFrames;
    // The VMM's reads of the guest's tables go through the physical CPU's caches.
    this.guestWalker.cache = context.cpu.dcache;
    if (poolFrames.length < MIN_SHADOW_POOL) {
      throw new RangeError(
        `a shadow pool needs at least ${MIN_SHADOW_POOL} pages, got ${poolFrames.length}`,
      );
    }
    // Xen takes the snapshot pages of out-of-sync L1s from the pool (SH_type_oos_snapshot).
    const snapshots = options.outOfSync ? poolFrames.slice(-SHADOW_OOS_PAGES) : [];
    const shadowFrames = poolFrames.slice(0, poolFrames.length - snapshots.length);
    this.tables = new ShadowTables(mem, shadowFrames, counters, options.writableSearch);
    this.oos = options.outOfSync ? new OosTable(this, snapshots) : null;
    this.tables.oos = this.oos;
    this.tables.trace = context.cpu;
    this.tables.frameOf = (gfn) => p2m.lookup(gfn);
    this.tables.seenTable = (gfn) => {
      if (gfn >= 0 && gfn < p2m.gfns) p2m.wasTable[gfn] = 1;
    };
    // A P2M change (balloon, sharing, host swap) removes every shadow entry of the old frame
    // (Xen's sh_remove_all_mappings), and the shadows of the gfn if it was a page table: their
    // content came from a frame that is gone.
    p2m.dropMappings = (gfn, mfn) => {
      this.counters[C_SHADOW_P2M_REMOVALS] += this.tables.dropMappingsOf(mfn);
      // unshadow() flushes when it removed shadows; otherwise flush here, as a TLB entry may
      // map the old frame after its shadow entries went.
      if (!unshadow(this, gfn, "its P2M entry changed")) this.cpu.flushTlbAll();
      this.tables.needFlush = false;
    };
    // The host may not swap out a page table the VMM shadows: its write protection and its
    // shadows are kept by gfn and frame (Xen's paging nominate refuses typed pages likewise).
    p2m.pinned = (gfn) => this.tables.isShadowedTable(gfn);
  }

  /** The host frame behind a gfn for the guest (see P2m.resolve); crashes the domain if none. */
  frameFor(gfn: Gfn): Mfn {
    return frameOrCrash(this.p2m, gfn, false);
  }

  /** frameFor for a write: a shared page is copied first (P2m.resolveForWrite). */
  frameForWrite(gfn: Gfn): Mfn {
    return frameOrCrash(this.p2m, gfn, true);
  }

  pageFault(cpu: Vcpu, gva: Gva, kind: number, errorCode: number): number {
    cpu.events?.push({ kind: "pf-exit", gva, code: errorCode });
    const result = handleShadowFault(this, cpu, gva, kind, errorCode);
    this.flushIfNeeded(cpu);
    return result;
  }

  /**
   * A CR3 write exits: the guest flushes its TLB, so the vCPU's out-of-sync L1s are resynced
   * (Xen's sh_update_cr3, even when the write keeps the PCID's entries); then find or build the
   * top-level shadow, pin it, load it.
   */
  writeCr3(cpu: Vcpu, gpa: Gpa, pcid: number, noFlush: boolean): void {
    this.counters[C_VMEXITS]++;
    this.counters[C_VMEXITS_CR3]++;
    this.oos?.resyncAll();
    this.loadShadowRoot(cpu, gpa, pcid, noFlush);
  }

  /** Before returning to the guest: flush the TLB if a present shadow entry changed. */
  flushIfNeeded(cpu: Vcpu): void {
    if (!this.tables.needFlush) return;
    this.tables.needFlush = false;
    cpu.flushTlbAll();
  }

  /** Turning paging on exits too (CR0): the root is the shadow of the guest's CR3. */
  enablePaging(cpu: Vcpu): void {
    this.counters[C_VMEXITS]++;
    this.oos?.resyncAll();
    this.loadShadowRoot(cpu, cpu.guestCr3, cpu.pcid, false);
  }

  private loadShadowRoot(cpu: Vcpu, gpa: Gpa, pcid: number, noFlush: boolean): void {
    const gfn = Math.floor(gpa / 4096);
    this.frameFor(gfn);
    let sp = this.tables.lookup(gfn, SH_L4);
    if (sp === null) {
      if (!this.tables.prealloc(1))
        throw new DomainCrash("the shadow pool cannot hold a top-level shadow");
      sp = this.tables.create(gfn, SH_L4);
    }
    this.tables.pin(sp);
    this.setRoot(sp);
    cpu.loadRoot(sp.mfn, pcid, noFlush);
    this.flushIfNeeded(cpu);
    cpu.events?.push({ kind: "cr3", gfn, mfn: sp.mfn });
  }

  /** Make sp the loaded root (the previous one may now be freed if it was unshadowed). */
  setRoot(sp: ShadowPage): void {
    const old = this.root;
    sp.inUse = true;
    this.root = sp;
    if (old !== null && old !== sp) {
      old.inUse = false;
      this.tables.maybeFree(old);
    }
  }

  /**
   * INVLPG exits: drop the shadow leaf for gva (it is re-propagated on the next fault). On an
   * out-of-sync L1 that is all Xen's sh_invlpg does: the page stays out of sync.
   */
  invlpg(cpu: Vcpu, gva: Gva): void {
    this.counters[C_VMEXITS]++;
    this.counters[C_VMEXITS_INVLPG]++;
    const leaf = this.findLeaf(gva);
    if (leaf !== null) {
      this.tables.setEntry(leaf.sp, leaf.index, 0, 0);
      this.counters[C_SHADOW_INVLPG]++;
    }
    cpu.tlb.invalidatePage(Math.floor(gva / 4096), cpu.tag, cpu.globalTag);
    // A guest 2 MiB page is cached as 512 4 KiB entries (FL1): INVLPG must drop them all.
    if (leaf !== null && isFl1(leaf.sp.type)) this.tables.needFlush = true;
    this.flushIfNeeded(cpu);
    cpu.events?.push({ kind: "invlpg", gva, count: leaf ? 1 : 0 });
  }

  dmaWrite(_cpu: Vcpu, gfn: number, digest: number): void {
    // A device writes through the P2M: the gfn gets a frame of its own first. Its writes do not
    // go through the write protection, so a shadowed page table there loses its shadows.
    const mfn = this.frameForWrite(gfn);
    unshadow(this, gfn, "a device wrote the page");
    this.mem.setDigest(mfn, digest);
  }

  memoryOp(_cpu: Vcpu, op: number, gfns: Int32Array, count: number): number {
    return memoryOp(this.p2m, this.counters, op, gfns, count);
  }

  /** With paging off the guest addresses its physical memory: through the P2M. */
  physFrame(_cpu: Vcpu, gfn: number, write: boolean): Mfn {
    return write ? this.frameForWrite(gfn) : this.frameFor(gfn);
  }

  /** The present shadow leaf entry that maps gva from the loaded root, if any. */
  findLeaf(gva: Gva): { sp: ShadowPage; index: number } | null {
    let sp = this.root;
    for (let level = 4; level >= 1 && sp !== null; level--) {
      const index = tableIndex(gva, level);
      this.mem.read64(sp.mfn, index);
      if (!isPresent(this.mem.lo)) return null;
      if (sp.level === 1) return { sp, index };
      sp = this.tables.pageAt(pteFrame(this.mem.lo, this.mem.hi));
      if (sp !== null && isFl1(sp.type) && level !== 2) return null;
    }
    return null;
  }

  /** Shadow pages in use (the "space" cost of shadow paging). */
  get shadowPages(): number {
    return this.tables.inUse;
  }

  /** The shadow pool: the host frames shadow paging takes for the domain. */
  hostFrames(): number {
    return this.poolFrames.length;
  }

  report(counters: VmmReportCounters): void {
    const t = this.tables;
    counters.shadow_pool_pages = this.poolFrames.length;
    counters.shadow_pages = t.inUse;
    counters.shadow_pages_peak = t.peak;
    counters.shadow_bytes_peak = t.peak * 4096;
    counters.shadow_overhead_pct = (100 * t.peak * 4096) / (this.p2m.gfns * 4096);
  }

  check(full: boolean, exhaustive: boolean): string | null {
    const problem = exhaustive
      ? checkShadow(this, this.cpu, this.frames, this.p2m.domain)
      : sampledCheck(this, this.cpu, this.frames, this.p2m.domain);
    return problem ?? (full ? checkBookkeeping(this) : null);
  }

  forEachReach(visit: ReachVisitor): string | null {
    return forEachReach(this, this.cpu, visit);
  }

  /** RAM and P2M pages first, then the pool (the order the host's free list gets them back). */
  teardown(): void {
    this.p2m.destroy();
    for (const mfn of this.poolFrames) this.frames.release(mfn);
    this.poolFrames.length = 0;
  }
}
