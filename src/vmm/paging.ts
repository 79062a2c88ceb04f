/**
 * The paging-mode interface: the VMM's side of one domain (Xen's struct paging_mode, KVM's
 * struct kvm_mmu). shadow/, hap/ and pv/ each implement it in their own folder and register a
 * factory in modes.ts; the host, the run loop and the checkers hold a domain's mode only through
 * this interface, so that a new mode touches its folder and that one table.
 *
 *   VmmPaging ── Intercepts (hw): what the domain's vCPU exits to: #PF, CR3, INVLPG, EPT
 *             │  violations, accesses with paging off, memory_op, device writes
 *             ├─ guestKernel, guestView: how the guest kernel must run, and its tables as
 *             │  checkers read them
 *             ├─ hostFrames, report: what the mode costs in host memory, its counters
 *             ├─ check, forEachReach: its invariants, every frame the domain can reach
 *             └─ teardown: everything back to the host when the domain is destroyed
 */

import type { DomainSpec, HardwareSpec, VirtualMode } from "../config/scenario.js";
import type { Mfn } from "../hw/addr.js";
import type { Vcpu } from "../hw/cpu.js";
import type { HostMemory } from "../hw/memory.js";
import type { GuestMemoryPeek } from "../hw/peek.js";
import type { Intercepts } from "../hw/vcpu-interfaces.js";
import type { VmmReportCounters } from "../metrics/counters.js";
import type { HostFrames } from "./frames.js";
import type { P2m } from "./p2m.js";
import type { SharedFrames } from "./sharing/shared.js";

/**
 * The guest kernel a mode needs: "hvm", an unmodified kernel that writes its page tables and
 * CR3 itself; "pv", a paravirtualized one whose page-table operations are hypercalls (the API
 * gives the guest the matching PagingOps; the VMM never builds guest code).
 */
export type GuestKernelKind = "hvm" | "pv";

/** Visits one frame a domain can reach: returns a problem to stop with, or null. */
export type ReachVisitor = (mfn: Mfn, writable: boolean, where: string) => string | null;

export interface VmmPaging extends Intercepts {
  readonly mode: VirtualMode;
  readonly guestKernel: GuestKernelKind;
  /**
   * The guest's memory as checkers and the step API read it, by gfn and with gfns in its
   * entries, as the guest kernel sees it (a PV guest's entries hold mfns: turned back).
   */
  readonly guestView: GuestMemoryPeek;
  /** Host frames the mode holds for the domain beyond its RAM and its P2M's pages. */
  hostFrames(): number;
  /** Adds the mode's own counters (its memory, its tables) to a domain's report. */
  report(counters: VmmReportCounters): void;
  /**
   * The mode's invariants, from outside (no counter, A/D bit or TLB entry changes): `full`
   * false checks the translations the hardware can use now, true every structure too.
   * `exhaustive` false lets a mode read only what changed since its last check and a rotating
   * sample of the rest (`--check`); true reads everything (`--check=full`, the end of a run).
   * The first problem found, or null.
   */
  check(full: boolean, exhaustive: boolean): string | null;
  /**
   * Every frame the domain's vCPU can reach through what the hardware caches or walks (TLB
   * entries, shadow leaves, EPT leaves, the leaves of PV tables): the first problem `visit`
   * returns, or null.
   */
  forEachReach(visit: ReachVisitor): string | null;
  /**
   * The domain is destroyed: its RAM (through the P2M), the P2M's pages and every frame the
   * mode holds go back to the host, in the order the mode needs.
   */
  teardown(): void;
}

/** What a mode is built from: the domain's parts the host made first. */
export interface PagingContext {
  readonly spec: DomainSpec;
  readonly hardware: HardwareSpec;
  readonly mem: HostMemory;
  readonly frames: HostFrames;
  readonly p2m: P2m;
  /** The domain's vCPU: the mode installs its intercepts and the walk it needs. */
  readonly cpu: Vcpu;
  readonly counters: Float64Array;
  /** The host's shared frames, when it shares pages. */
  readonly sharing: SharedFrames | null;
}

export interface PagingModeFactory {
  /** Why a domain cannot run in this mode on this hardware, or "" when it can. */
  problem(spec: DomainSpec, hardware: HardwareSpec): string;
  /** Host frames the mode takes for a domain beyond its RAM and its P2M's pages (sizing hosts). */
  reservedFrames(spec: DomainSpec): number;
  /**
   * Builds the mode for a domain and installs it on the domain's vCPU. Throws RangeError when
   * the host cannot give it what it needs.
   */
  create(context: PagingContext): VmmPaging;
}

/** What every mode keeps of the context it was built from. */
export abstract class PagingModeBase {
  readonly mem: HostMemory;
  readonly frames: HostFrames;
  readonly p2m: P2m;
  readonly counters: Float64Array;
  readonly cpu: Vcpu;

  constructor(context: PagingContext) {
    this.mem = context.mem;
    this.frames = context.frames;
    this.p2m = context.p2m;
    this.counters = context.counters;
    this.cpu = context.cpu;
    // What the P2M does during a traced step is recorded with the vCPU's events.
    context.p2m.trace = context.cpu;
  }
}
