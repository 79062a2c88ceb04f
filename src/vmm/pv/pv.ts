/**
 * Xen PV direct paging for one domain: the VMM's side of the vCPU. The guest's own tables hold
 * mfns and the hardware walks them (rootMfn is the guest's L4: there is no shadow). The guest
 * changes them only by hypercalls (hypercalls.ts: mmu_update, update_va_mapping, mmuext_op),
 * each checked against the page-type rules of mm.ts, or by a plain store to a table the VMM
 * maps read-only, which traps and is emulated here (Xen's writable page tables, ptwr).
 *
 * Choices, after Xen: a PV domain's memory is allocated whole when it is built (no
 * populate-on-demand), and it is neither swapped by the host nor shared (Xen's paging and
 * sharing need HAP); so its P2M changes only at the guest's own request (the balloon), and
 * decrease_reservation refuses a frame that is still typed or mapped.
 */

import { KIND_SUP_READ, KIND_SUP_WRITE } from "../../hw/access.js";
import type { Gfn, Gpa, Gva, Mfn } from "../../hw/addr.js";
import { checkTlb, forEachTlbFrame } from "../../hw/check.js";
import type { Vcpu } from "../../hw/cpu.js";
import { EBUSY, ENOSYS, type MmuBatch, type PvMmuHypercalls } from "../../hw/hypercall.js";
import type { GuestMemoryPeek } from "../../hw/peek.js";
import { isPresent, isWritable, PFEC_P, PFEC_W, pteFrame } from "../../hw/pte.js";
import type { TraceEvent } from "../../hw/step-trace.js";
import { OP_STORE64, PF_EMULATED } from "../../hw/vcpu-interfaces.js";
import { WALK_OK, Walker } from "../../hw/walker.js";
import {
  C_BALLOON_DEFLATED_PAGES,
  C_BALLOON_INFLATED_PAGES,
  C_PTWR_EMULATIONS,
  C_PV_HYPERCALL_ERRORS,
  C_VMEXITS,
  C_VMEXITS_HYPERCALL,
  C_VMEXITS_PF,
  type VmmReportCounters,
} from "../../metrics/counters.js";
import { MEMOP_DECREASE_RESERVATION, MEMOP_POPULATE_PHYSMAP } from "../balloon/reservation.js";
import { DomainCrash } from "../crash.js";
import {
  type PagingContext,
  PagingModeBase,
  type ReachVisitor,
  type VmmPaging,
} from "../paging.js";
import { checkPvIsolation, checkPvTables } from "./check.js";
import { mmuextOp, mmuUpdate, updateVaMapping } from "./hypercalls.js";
import { PGT_L1, type PvFrameTypes, PvMm } from "./mm.js";
import { PvGuestPeek } from "./peek.js";

export class PvPaging extends PagingModeBase implements VmmPaging, PvMmuHypercalls {
  readonly mode = "pv";
  readonly guestKernel = "pv";
  readonly mm: PvMm;
  /** The guest's tables hold mfns; checkers read them back as gfns through the m2p. */
  readonly guestView: GuestMemoryPeek;
  /** The guest's loaded L4 (MMUEXT_NEW_BASEPTR), holding one L4 type reference; -1 before. */
  baseMfn: Mfn = -1;
  /** For the ptwr path: a walk of the guest's tables that sets no A/D bit. */
  private readonly walker = new Walker();

  constructor(
    context: PagingContext,
    readonly types: PvFrameTypes,
  ) {
    super(context);
    const { mem, frames, p2m, counters } = context;
    this.guestView = new PvGuestPeek(p2m, frames.m2pTable);
    this.mm = new PvMm(mem, frames, types, p2m.domain, counters);
    this.mm.flushAll = () => this.cpu.flushTlbAll();
    // A frame leaves the domain only through the balloon, never while typed or mapped; a TLB
    // may still hold it, so flush.
    p2m.dropMappings = (_gfn, mfn) => {
      types.reset(mfn);
      this.mm.flush();
    };
    // No host paging and no sharing of a PV domain's memory (Xen's need HAP).
    p2m.pinned = () => true;
  }

  /** The domain builder: a frame for every gfn before the guest runs. */
  populate(): boolean {
    return this.p2m.populateAll();
  }

  /** The traced step's event of the hypercall in progress, for fail() to give its answer. */
  private call: TraceEvent | null = null;

  /**
   * Count one hypercall (an exit). In a traced step, returns its event (named `name`) for the
   * caller to add the arguments to; null otherwise.
   */
  hypercall(name: string): TraceEvent | null {
    this.counters[C_VMEXITS]++;
    this.counters[C_VMEXITS_HYPERCALL]++;
    const events = this.cpu.events;
    if (events === null) {
      this.call = null;
      return null;
    }
    this.call = { kind: "hypercall", note: name, code: 0 };
    events.push(this.call);
    return this.call;
  }

  /** A refused hypercall: counted, and its errno returned. */
  fail(rc: number): number {
    this.counters[C_PV_HYPERCALL_ERRORS]++;
    if (this.call !== null) this.call.code = rc;
    return rc;
  }

  mmuUpdate(batch: MmuBatch, count: number): number {
    return mmuUpdate(this, batch, count);
  }

  updateVaMapping(gva: Gva, lo: number, hi: number, flags: number): number {
    return updateVaMapping(this, gva, lo, hi, flags);
  }

  mmuextOp(cmd: number, mfn: Mfn, gva: Gva): number {
    return mmuextOp(this, cmd, mfn, gva);
  }

  /**
   * A #PF: in PV every fault enters Xen first (its IDT), counted as an exit with reason PF, and
   * is bounced to the guest's handler, unless it is a kernel store to one of the guest's L1
   * tables through a read-only mapping: that is emulated as an L1 update (ptwr), validated as
   * mmu_update would. A refused emulation is bounced as the #PF it was.
   */
  pageFault(cpu: Vcpu, gva: Gva, kind: number, errorCode: number): number {
    this.counters[C_VMEXITS]++;
    this.counters[C_VMEXITS_PF]++;
    const result = this.ptwrOrBounce(cpu, gva, kind, errorCode);
    if (result !== PF_EMULATED) cpu.events?.push({ kind: "pf-bounce", gva, code: errorCode });
    return result;
  }

  /** The ptwr emulation of a kernel store to an L1 table, or the error code to bounce. */
  private ptwrOrBounce(cpu: Vcpu, gva: Gva, kind: number, errorCode: number): number {
    const write = PFEC_P | PFEC_W;
    if (cpu.op !== OP_STORE64 || kind !== KIND_SUP_WRITE || (errorCode & write) !== write) {
      return errorCode;
    }
    const w = this.walker;
    if (w.peek(this.mem, cpu.rootMfn, gva, KIND_SUP_READ, cpu.ctl) !== WALK_OK) {
      return errorCode;
    }
    const mfn = w.frame;
    const mm = this.mm;
    if (!mm.owns(mfn) || !mm.isTable(mfn) || this.types.type[mfn] !== PGT_L1) return errorCode;
    const index = Math.floor((gva % 4096) / 8);
    this.mem.read64(mfn, index);
    const oldLo = this.mem.lo;
    const oldHi = this.mem.hi;
    if (mm.modEntry(mfn, index, PGT_L1, cpu.pendLo, cpu.pendHi) < 0) return errorCode;
    this.counters[C_PTWR_EMULATIONS]++;
    cpu.events?.push({ kind: "pf-exit", gva, code: errorCode });
    cpu.events?.push({
      kind: "emulate-write",
      gva,
      gfn: this.frames.gfnOf(mfn),
      mfn,
      index,
      oldLo,
      oldHi,
      lo: cpu.pendLo,
      hi: cpu.pendHi,
      level: 1,
      note: "ptwr",
    });
    return PF_EMULATED;
  }

  /** MOV to CR3 is privileged: a PV kernel runs outside ring 0 and must use NEW_BASEPTR. */
  writeCr3(_cpu: Vcpu, gpa: Gpa): void {
    throw new DomainCrash(`a PV guest wrote CR3 (0x${gpa.toString(16)}): #GP in its kernel`);
  }

  /** INVLPG is privileged likewise: MMUEXT_INVLPG_LOCAL is the PV way. */
  invlpg(_cpu: Vcpu, gva: Gva): void {
    throw new DomainCrash(`a PV guest executed INVLPG (0x${gva.toString(16)}): #GP in its kernel`);
  }

  /**
   * Accesses with paging off: only the domain builder's, before the guest starts (a PV guest
   * never runs with paging off). They go to the domain's frames, never into a typed table.
   */
  physFrame(_cpu: Vcpu, gfn: number, write: boolean): Mfn {
    const mfn = this.p2m.lookup(gfn);
    if (mfn < 0) throw new DomainCrash(`the domain builder touched gfn ${gfn}, which has no frame`);
    if (write && this.mm.isTable(mfn)) {
      throw new DomainCrash(`a physical write to gfn ${gfn}, a page table of the guest`);
    }
    return mfn;
  }

  /** The guest starts on its pinned base pointer; without one it cannot run. */
  enablePaging(cpu: Vcpu): void {
    if (this.baseMfn < 0) throw new DomainCrash("a PV guest started without a base pointer");
    cpu.rootMfn = this.baseMfn;
  }

  /**
   * The virtual disk writes a page (through a grant the backend maps writable): a frame typed
   * as a page table cannot be granted writable, so that I/O fails (counted) and nothing changes.
   */
  dmaWrite(_cpu: Vcpu, gfn: number, digest: number): void {
    const mfn = this.p2m.lookup(gfn);
    if (mfn < 0) throw new DomainCrash(`a disk read into gfn ${gfn}, which has no frame`);
    if (this.mm.isTable(mfn)) {
      this.fail(-EBUSY);
      return;
    }
    this.mem.setDigest(mfn, digest);
  }

  /**
   * The balloon's memory_op. decrease_reservation stops (as Xen returns the count done) at a
   * gfn whose frame is still a page table or still mapped by one (the guest must unmap it
   * first, as Linux's balloon does for its direct map); populate_physmap allocates the frames
   * at once, as Xen does for PV.
   */
  memoryOp(_cpu: Vcpu, op: number, gfns: Int32Array, count: number): number {
    const call = this.hypercall("memory_op");
    if (call !== null) call.count = count;
    if (op !== MEMOP_DECREASE_RESERVATION && op !== MEMOP_POPULATE_PHYSMAP) {
      return this.fail(-ENOSYS);
    }
    const p2m = this.p2m;
    const t = this.types;
    const n = Math.min(count, gfns.length);
    let done = 0;
    for (; done < n; done++) {
      const gfn: Gfn = gfns[done];
      if (op === MEMOP_DECREASE_RESERVATION) {
        const mfn = p2m.lookup(gfn);
        if (mfn >= 0 && (t.count[mfn] > 0 || t.refs[mfn] > 0)) {
          this.fail(-EBUSY);
          break;
        }
        if (!p2m.removePage(gfn)) break;
      } else {
        if (!p2m.addPage(gfn)) break;
        if (p2m.lookup(gfn) < 0 && p2m.resolve(gfn) < 0) {
          p2m.removePage(gfn); // no host memory: it stays ballooned out
          break;
        }
      }
    }
    this.counters[
      op === MEMOP_DECREASE_RESERVATION ? C_BALLOON_INFLATED_PAGES : C_BALLOON_DEFLATED_PAGES
    ] += done;
    if (this.call !== null) this.call.code = done;
    this.cpu.events?.push({
      kind: "balloon",
      note: op === MEMOP_DECREASE_RESERVATION ? "decrease_reservation" : "populate_physmap",
      count: done,
      index: n,
      gfn: n > 0 ? gfns[0] : -1,
    });
    return done;
  }

  /** Frames of the domain in use as page tables (typed L1..L4 with references): for reports. */
  tablePages(): number {
    let n = 0;
    for (let gfn = 0; gfn < this.p2m.gfns; gfn++) {
      const mfn = this.p2m.mfn[gfn];
      if (mfn >= 0 && this.mm.isTable(mfn)) n++;
    }
    return n;
  }

  /** No shadow and no EPT: the guest's own tables are its RAM. */
  hostFrames(): number {
    return 0;
  }

  /**
   * The VMM's memory for a PV domain: its P2M pages (counted by the caller) and its share of
   * the m2p, 8 bytes per host frame, mapped read-only into every PV guest.
   */
  report(counters: VmmReportCounters): void {
    counters.pv_pt_pages = this.tablePages();
    counters.m2p_pages = Math.ceil((this.mem.frames * 8) / 4096);
  }

  /** The hardware walks the guest's own tables: the TLB is checked as natively, then Xen's rules. */
  check(full: boolean): string | null {
    const problem = checkTlb(this.cpu, this.mem.frames) ?? checkPvIsolation(this, this.cpu);
    return problem ?? (full ? checkPvTables(this) : null);
  }

  /** The TLB's frames, then the frame of every present entry of every validated L1 table. */
  forEachReach(visit: ReachVisitor): string | null {
    const problem = forEachTlbFrame(this.cpu, visit);
    if (problem !== null) return problem;
    const mem = this.mem;
    for (let gfn = 0; gfn < this.p2m.gfns; gfn++) {
      const table = this.p2m.mfn[gfn];
      if (table < 0 || !this.mm.isTable(table) || this.types.type[table] !== PGT_L1) continue;
      for (let i = 0; i < 512; i++) {
        mem.read64(table, i);
        if (!isPresent(mem.lo)) continue;
        const where = `L1 table mfn ${table} entry ${i}`;
        const found = visit(pteFrame(mem.lo, mem.hi), isWritable(mem.lo), where);
        if (found !== null) return found;
      }
    }
    return null;
  }

  /** The frames' types go first, while the P2M still names them; then RAM and P2M pages. */
  teardown(): void {
    for (let gfn = 0; gfn < this.p2m.gfns; gfn++) {
      const mfn = this.p2m.mfn[gfn];
      if (mfn >= 0) this.types.reset(mfn);
    }
    this.baseMfn = -1;
    this.p2m.destroy();
  }
}
