/**
 * Hardware-assisted paging for one domain (Xen's HAP over Intel EPT; KVM's TDP MMU does the
 * same): the VMM's side of the vCPU. The guest owns its page tables outright: its #PFs, CR3
 * writes and INVLPGs never leave the guest. The VMM keeps only the EPT, filled from the P2M
 * on EPT violations:
 *
 *   violation on gfn ─> P2M: populate on first touch | swap in | copy a shared page for a write
 *                        | populate a ballooned page (or crash, under "mmio")
 *                    ─> EPT leaf: RWX for plain RAM, R+X for a shared page (a write exits again)
 *
 * A P2M change takes the gfn's EPT entry away and invalidates what the hardware cached of the
 * EPT (INVEPT: TLB entries of the domain, the nested TLB and paging-structure caches).
 */

import type { Gfn, Gpa, Gva, Mfn } from "../../hw/addr.js";
import { checkTlb, forEachTlbFrame } from "../../hw/check.js";
import type { Vcpu } from "../../hw/cpu.js";
import { EPT_R, EPT_RWX, EPT_W, eptKindMask } from "../../hw/ept.js";
import type { GuestMemoryPeek } from "../../hw/peek.js";
import {
  C_EPT_FILLS,
  C_EPT_INVEPT,
  C_VMEXITS,
  C_VMEXITS_EPT_VIOLATION,
  type VmmReportCounters,
} from "../../metrics/counters.js";
import { memoryOp } from "../balloon/reservation.js";
import { DomainCrash, frameOrCrash } from "../crash.js";
import { P2M_POPULATE_ON_DEMAND, P2M_RAM_SHARED, P2M_TYPE_NAMES } from "../p2m.js";
import {
  type PagingContext,
  PagingModeBase,
  type ReachVisitor,
  type VmmPaging,
} from "../paging.js";
import { checkEpt, checkReach, checkWalkCaches } from "./check.js";
import { EptTables, eptPermsOf } from "./ept.js";

export interface HapOptions {
  /** Map 2 MiB of guest memory with one EPT leaf where the P2M allows it. */
  largePages: boolean;
}

export class HapPaging extends PagingModeBase implements VmmPaging {
  readonly mode = "hap";
  readonly guestKernel = "hvm";
  readonly ept: EptTables;
  readonly guestView: GuestMemoryPeek;

  constructor(
    context: PagingContext,
    readonly options: HapOptions,
  ) {
    super(context);
    const { mem, p2m, counters } = context;
    this.guestView = p2m;
    this.ept = new EptTables(
      mem,
      () => p2m.allocVmmPage(),
      (mfn) => p2m.releaseVmmPage(mfn),
      counters,
    );
    // The walker keeps what it read of the EPT's upper levels until they change.
    this.ept.onTablesChanged = () => this.cpu.nested?.eptTablesChanged();
    p2m.dropMappings = (gfn) => {
      this.ept.unmap(gfn);
      this.invept();
    };
    // Nothing pins a gfn: the guest's tables are plain RAM to the VMM (a 2D walk through a
    // swapped-out table exits like any other access and swaps it back in).
    p2m.pinned = () => false;
  }

  /** INVEPT (single context): the hardware forgets every translation derived from the EPT. */
  invept(): void {
    this.counters[C_EPT_INVEPT]++;
    const cpu = this.cpu;
    cpu.nested?.invept();
    cpu.flushTlbAll();
  }

  eptViolation(cpu: Vcpu, gfn: Gfn, write: boolean, fetch: boolean): void {
    this.counters[C_VMEXITS]++;
    this.counters[C_VMEXITS_EPT_VIOLATION]++;
    const before = this.p2m.type[gfn];
    this.fill(gfn, write);
    cpu.events?.push({
      kind: "ept-violation",
      gfn,
      mfn: this.p2m.mfn[gfn],
      note: `${write ? "write" : fetch ? "fetch" : "read"}: ${describeFix(before, this.p2m.type[gfn])}`,
    });
  }

  /** Make gfn's EPT entry allow the access (a write needs a frame of the domain's own). */
  private fill(gfn: Gfn, write: boolean): Mfn {
    if (this.options.largePages && this.p2m.type[gfn] === P2M_POPULATE_ON_DEMAND) {
      // First touch of a 2 MiB block: back it whole and map it with one EPT leaf.
      const base = gfn - (gfn % 512);
      const block = this.p2m.populateBlock(base);
      if (block >= 0) {
        this.map(base, block, EPT_RWX, 2);
        // The leaf took the place of an L1 table (the block was split once): the hardware may
        // have cached the entry that named it.
        if (this.ept.replacedTable) this.invept();
        return block + (gfn - base);
      }
    }
    const mfn = frameOrCrash(this.p2m, gfn, write);
    const perms = eptPermsOf(this.p2m.type[gfn]);
    // Already mapped so (a device write to a mapped page): nothing to do, and a 2 MiB leaf
    // over it stays whole.
    if (this.ept.lookup(gfn) === mfn && this.ept.perms === perms) return mfn;
    // A frame that replaced another (swap-in, a copy on write) was preceded by INVEPT when the
    // P2M changed (dropMappings): no cached translation names the old one.
    this.map(gfn, mfn, perms, 1);
    return mfn;
  }

  /** One EPT leaf, or the domain is crashed when the host has no frame for a table. */
  private map(gfn: Gfn, mfn: Mfn, perms: number, level: 1 | 2): void {
    if (!this.ept.map(gfn, mfn, perms, level)) {
      throw new DomainCrash(`the host has no memory left for the EPT tables of gfn ${gfn}`);
    }
    this.counters[C_EPT_FILLS]++;
  }

  /** With paging off the guest's accesses are still guest-physical: through the EPT. */
  physFrame(cpu: Vcpu, gfn: number, write: boolean): Mfn {
    const mfn = this.ept.lookup(gfn);
    if (mfn >= 0 && (this.ept.perms & (write ? EPT_W : EPT_R)) !== 0) return mfn;
    this.eptViolation(cpu, gfn, write, false);
    return this.p2m.mfn[gfn];
  }

  /** Not reached: under HAP the guest's #PF goes straight to the guest (see Vcpu). */
  pageFault(_cpu: Vcpu, _gva: Gva, _kind: number, errorCode: number): number {
    return errorCode;
  }

  /** CR3 writes do not exit: the hardware takes the guest's root gfn as it is. */
  writeCr3(cpu: Vcpu, gpa: Gpa, pcid: number, noFlush: boolean): void {
    cpu.loadRoot(Math.floor(gpa / 4096), pcid, noFlush);
  }

  /** INVLPG does not exit either: it drops the TLB entries (and, in the vCPU, the caches). */
  invlpg(cpu: Vcpu, gva: Gva): void {
    cpu.invalidatePage(gva);
  }

  enablePaging(cpu: Vcpu): void {
    cpu.loadRoot(Math.floor(cpu.guestCr3 / 4096), cpu.pcid, false);
  }

  memoryOp(_cpu: Vcpu, op: number, gfns: Int32Array, count: number): number {
    return memoryOp(this.p2m, this.counters, op, gfns, count);
  }

  /** A device writes through the P2M: a frame of the domain's own (a shared page is copied). */
  dmaWrite(_cpu: Vcpu, gfn: number, digest: number): void {
    // Through fill, so that a first touch by a device populates a whole block as a CPU's would.
    this.mem.setDigest(this.fill(gfn, true), digest);
  }

  /** Frames the EPT tables take (the "space" cost of HAP). */
  get eptPages(): number {
    return this.ept.pages.length;
  }

  hostFrames(): number {
    return this.eptPages;
  }

  report(counters: VmmReportCounters): void {
    counters.ept_pages = this.eptPages;
  }

  /**
   * The TLB against the guest's tables through the P2M, with the EPT's rights of each gfn's
   * type, and the 2D walk's caches; in full, the EPT against the P2M and every frame the TLB
   * reaches.
   */
  check(full: boolean): string | null {
    const p2m = this.p2m;
    const problem =
      checkTlb(this.cpu, this.mem.frames, {
        mfnOf: p2m.mfn,
        kindMaskOf: (gfn) => eptKindMask(eptPermsOf(p2m.type[gfn])),
      }) ?? checkWalkCaches(this, this.cpu, this.frames, p2m.domain);
    if (problem !== null || !full) return problem;
    return checkEpt(this, this.frames, p2m.domain) ?? checkReach(this.cpu, this.frames, p2m.domain);
  }

  /** The TLB's frames, then every EPT leaf's (what a 2D walk can end in). */
  forEachReach(visit: ReachVisitor): string | null {
    const problem = forEachTlbFrame(this.cpu, visit);
    if (problem !== null) return problem;
    let found: string | null = null;
    this.ept.forEachLeaf((gfn, mfn, perms) => {
      found ??= visit(mfn, (perms & EPT_W) !== 0, `EPT entry of gfn ${gfn}`);
    });
    return found;
  }

  /** RAM and P2M pages first, then the EPT's (the order the host's free list gets them back). */
  teardown(): void {
    this.p2m.destroy();
    this.ept.destroy();
  }
}

function describeFix(before: number, after: number): string {
  if (before === after) return "EPT entry filled";
  if (before === P2M_RAM_SHARED) return "the shared page is copied (copy on write)";
  return `P2M ${P2M_TYPE_NAMES[before]} -> ${P2M_TYPE_NAMES[after]}`;
}
