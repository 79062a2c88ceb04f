/**
 * A buffer of data accesses for a vCPU's batched entry (Vcpu.accessBatch), as a C harness would
 * hold them: each address as two int32 halves (so that no address is a boxed number on the way
 * in), its kind (access.ts) and its value. A read's value slot receives the value read, as a load
 * fills a register.
 */

import type { Gva } from "./addr.js";

export class AccessBuffer {
  /** gva bits 0..31, as int32. */
  readonly lo: Int32Array;
  /** gva bits 32..47. */
  readonly hi: Int32Array;
  /** The access kind (KIND_*). */
  readonly kind: Uint8Array;
  /** A write's 32-bit value; after a read, the value read. */
  readonly value: Int32Array;
  /** Accesses held (the first `length` slots). */
  length = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`an access buffer needs a capacity >= 1, got ${capacity}`);
    }
    this.lo = new Int32Array(capacity);
    this.hi = new Int32Array(capacity);
    this.kind = new Uint8Array(capacity);
    this.value = new Int32Array(capacity);
  }

  /** Append one access; the buffer must not be full. */
  push(gva: Gva, kind: number, value: number): void {
    const i = this.length;
    if (i === this.capacity) throw new RangeError(`access buffer full (${this.capacity})`);
    this.lo[i] = gva | 0;
    this.hi[i] = (gva / 4294967296) | 0;
    this.kind[i] = kind;
    this.value[i] = value;
    this.length = i + 1;
  }

  /** The address of slot i. */
  gva(i: number): Gva {
    return this.hi[i] * 4294967296 + (this.lo[i] >>> 0);
  }
}
