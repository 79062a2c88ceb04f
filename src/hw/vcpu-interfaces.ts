/**
 * The two faces of a vCPU (cpu.ts): `GuestCpu`, what the guest kernel may do to memory, and
 * `Intercepts`, what a VMM installs to take the exits; with the codes that cross them.
 */

import type { AccessBuffer } from "./access-buffer.js";
import type { Gpa, Gva, Mfn } from "./addr.js";
import type { Vcpu } from "./cpu.js";
import type { MmuBatch } from "./hypercall.js";
import type { TraceEvent } from "./step-trace.js";

// What translate() and the data operations return besides a frame (>= 0):
/** The access faulted; `faultCode` holds the #PF error code for the guest. */
export const XLATE_FAULT = -1;
/** A VMM completed the access by emulation (a store into a protected page table). */
export const XLATE_EMULATED = -2;

// What an intercepting VMM answers to a #PF besides an error code to inject:
/** The VMM fixed its tables: the access is retried. */
export const PF_RETRY = -1;
/** The VMM completed the access itself (it emulated a store). */
export const PF_EMULATED = -2;

// The operation in flight when an intercept runs (Vcpu.op), for the VMM's emulator:
/** access() (a write's value is in Vcpu.pendLo), or a load. */
export const OP_ACCESS = 0;
/** store64: the value is in Vcpu.pendLo / pendHi. */
export const OP_STORE64 = 1;
/** zeroPage. */
export const OP_ZERO_PAGE = 2;
/** copyPage: the source frame is in Vcpu.pendSrcFrame. */
export const OP_COPY_PAGE = 3;

/** PF_RETRY or EPT violations in a row on one access before the VMM is declared stuck (a bug). */
export const MAX_VMM_RETRIES = 8;

/**
 * The VMM's side of a vCPU. Every method is on a slow path (an exit); null in native mode.
 */
export interface Intercepts {
  /** A #PF raised by the hardware walk. Returns PF_RETRY, PF_EMULATED, or an error code to inject. */
  pageFault(cpu: Vcpu, gva: Gva, kind: number, errorCode: number): number;
  /** The guest wrote CR3 (a VM exit under shadow paging). */
  writeCr3(cpu: Vcpu, gpa: Gpa, pcid: number, noFlush: boolean): void;
  /** The guest executed INVLPG. */
  invlpg(cpu: Vcpu, gva: Gva): void;
  /** The host frame behind guest frame `gfn`, for accesses made with paging off. */
  physFrame(cpu: Vcpu, gfn: number, write: boolean): Mfn;
  /** The guest set CR0.PG (a CR0-write exit): the VMM loads the root for the guest's CR3. */
  enablePaging(cpu: Vcpu): void;
  /** A memory_op hypercall (the balloon's): returns the gfns done, or a negative errno. */
  memoryOp(cpu: Vcpu, op: number, gfns: Int32Array, count: number): number;
  /** A device writes a whole page of guest frame `gfn` (the virtual disk, through the P2M). */
  dmaWrite(cpu: Vcpu, gfn: number, digest: number): void;
  /**
   * An EPT violation (hardware-assisted paging only): the 2D walk found no EPT mapping of `gfn`
   * allowing the access. The VMM fixes the EPT (or crashes the domain); the access is retried.
   */
  eptViolation?(cpu: Vcpu, gfn: number, write: boolean, fetch: boolean): void;
}

/** memoryOp's answer without a VMM (natively): -ENOSYS. */
export const HYPERCALL_ENOSYS = -38;

/** The interface the guest kernel sees: what an x86-64 CPU lets software do to memory. */
export interface GuestCpu {
  /** A user or kernel data access at gva: returns a frame (>= 0), XLATE_FAULT or XLATE_EMULATED. */
  access(gva: Gva, kind: number, value: number): number;
  /**
   * The accesses start..end-1 of a buffer, in order, as access() makes them (a read's value
   * slot receives the value read): the index of the first that did not complete (batchStop says
   * why: XLATE_FAULT, or XLATE_EMULATED for one a VMM did), or end.
   */
  accessBatch(buf: AccessBuffer, start: number, end: number): number;
  /**
   * The read hash (read-hash.ts) accessBatch folds the value of each read it completes into, in
   * order: its caller sets it before a batch and takes it after, also after a throw (the reads
   * completed before the throw are in it). A read that stops the batch is not folded.
   */
  batchReadHash: number;
  /** Why the last accessBatch stopped before its end. */
  batchStop: number;
  /** The frame of the last access of a batch that ran to its end. */
  batchFrame: number;
  load64(gva: Gva): number;
  store64(gva: Gva, lo: number, hi: number): number;
  zeroPage(gva: Gva): number;
  /**
   * load64, store64 and zeroPage of the address whose bits 0..31 are `gvaLo` (as int32) and bits
   * 32..47 `gvaHi`: the kernel's direct-map addresses lie above 2^32, and as one number each
   * would be a boxed double, allocated on its way in.
   */
  load64Halves(gvaLo: number, gvaHi: number): number;
  store64Halves(gvaLo: number, gvaHi: number, lo: number, hi: number): number;
  zeroPageHalves(gvaLo: number, gvaHi: number): number;
  copyPage(dstGva: Gva, srcGva: Gva): number;
  storePhys64(gpa: Gpa, lo: number, hi: number): void;
  loadPhys64(gpa: Gpa): void;
  writeCr3(gpa: Gpa, pcid: number, noFlush: boolean): void;
  invlpg(gva: Gva): void;
  flushTlbAll(): void;
  enablePaging(): void;
  /** A memory_op hypercall (VMCALL, an exit): the gfns done, or a negative errno. */
  memoryOp(op: number, gfns: Int32Array, count: number): number;
  /** The virtual disk reads a page into guest frame gfn: its content becomes `digest`. */
  dmaWrite(gfn: number, digest: number): void;
  /** PV MMU hypercalls (hw/hypercall.ts): -ENOSYS unless a PV VMM serves them. */
  mmuUpdate(batch: MmuBatch, count: number): number;
  updateVaMapping(gva: Gva, lo: number, hi: number, flags: number): number;
  mmuextOp(cmd: number, mfn: Mfn, gva: Gva): number;
  /** Low half of the word load64 / loadPhys64 read. */
  lo: number;
  /** High half of the word load64 / loadPhys64 read. */
  hi: number;
  /** The value the last data read returned. */
  readValue: number;
  /** The #PF error code of the last XLATE_FAULT. */
  faultCode: number;
  /** Set by the step API while a step is traced: the guest kernel records what it did. */
  events: TraceEvent[] | null;
}

/** The shape of the vCPU's 4 KiB TLB arrays (tlb.ts has the large-page arrays and defaults). */
export interface TlbGeometry {
  l1Entries: number;
  l1Ways: number;
  l2Entries: number;
  l2Ways: number;
}
