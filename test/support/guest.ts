/** A native guest for tests: a booted kernel with exact data, and helpers to drive processes. */

import { checkGuest } from "../../src/guest/check.js";
import { userAccess } from "../../src/guest/fault.js";
import { Kernel, type KernelOptions } from "../../src/guest/kernel.js";
import { NativePagingOps } from "../../src/guest/paging-ops.js";
import type { Process } from "../../src/guest/process.js";
import { KIND_USER_READ, KIND_USER_WRITE } from "../../src/hw/access.js";
import { checkTlb } from "../../src/hw/check.js";
import { Vcpu } from "../../src/hw/cpu.js";
import { HostMemory } from "../../src/hw/memory.js";
import { newCounters } from "../../src/metrics/counters.js";

export interface TestGuest {
  mem: HostMemory;
  cpu: Vcpu;
  kernel: Kernel;
  counters: Float64Array;
  /** Run `proc` (switching to it) and write `value` at gva; false if the process died. */
  write(proc: Process, gva: number, value: number): boolean;
  /** Run `proc` and read gva: the value, or null if the process died. */
  read(proc: Process, gva: number): number | null;
  /** Both invariant checkers; throws with the first violation. */
  check(): void;
}

export function bootGuest(memMiB = 64, options: Partial<KernelOptions> = {}): TestGuest {
  const frames = (memMiB * 2 ** 20) / 4096;
  const mem = new HostMemory(frames);
  mem.exactData = true;
  const counters = newCounters();
  const cpu = new Vcpu(mem, counters);
  const kernel = new Kernel(cpu, new NativePagingOps(cpu), frames, counters, {
    gigaPages: false,
    pcid: false,
    ...options,
  });
  kernel.boot();
  const run = (proc: Process, gva: number, kind: number, value: number): boolean => {
    if (!proc.alive) return false;
    kernel.switchTo(proc);
    return userAccess(kernel, proc, gva, kind, value) !== -1;
  };
  return {
    mem,
    cpu,
    kernel,
    counters,
    write: (proc, gva, value) => run(proc, gva, KIND_USER_WRITE, value),
    read: (proc, gva) => (run(proc, gva, KIND_USER_READ, 0) ? cpu.readValue : null),
    check: () => {
      const tlb = checkTlb(cpu, mem.frames);
      if (tlb) throw new Error(`TLB check: ${tlb}`);
      const g = checkGuest(kernel, mem, (gfn) => gfn);
      if (g) throw new Error(`guest check: ${g}`);
    },
  };
}
