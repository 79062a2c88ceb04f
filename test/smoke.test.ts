import { expect, test } from "vitest";
import { handlePageFault } from "../src/guest/fault.js";
import { fork } from "../src/guest/fork.js";
import { Kernel } from "../src/guest/kernel.js";
import { USER_HEAP_BASE } from "../src/guest/layout.js";
import { NativePagingOps } from "../src/guest/paging-ops.js";
import { KIND_USER_READ, KIND_USER_WRITE } from "../src/hw/access.js";
import { Vcpu } from "../src/hw/cpu.js";
import { HostMemory } from "../src/hw/memory.js";
import { newCounters } from "../src/metrics/counters.js";

test("smoke", () => {
  const frames = 64 * 256;
  const mem = new HostMemory(frames);
  mem.exactData = true;
  const c = newCounters();
  const cpu = new Vcpu(mem, c);
  const k = new Kernel(cpu, new NativePagingOps(cpu), frames, c, { gigaPages: false, pcid: false });
  k.boot();
  const p = k.spawn("a", { code: 4096 * 4, heap: 4096 * 100, hugeHeap: false })!;
  k.switchTo(p);
  const acc = (gva: number, kind: number, v: number) => {
    for (let i = 0; i < 4; i++) {
      const r = cpu.access(gva, kind, v);
      if (r >= 0) return r;
      handlePageFault(k, k.current!, gva, kind, cpu.faultCode);
    }
    throw new Error("loop");
  };
  acc(USER_HEAP_BASE, KIND_USER_WRITE, 42);
  acc(USER_HEAP_BASE, KIND_USER_READ, 0);
  expect(cpu.readValue).toBe(42);
  const ch = fork(k, p)!;
  k.switchTo(ch);
  acc(USER_HEAP_BASE, KIND_USER_READ, 0);
  expect(cpu.readValue).toBe(42);
  acc(USER_HEAP_BASE, KIND_USER_WRITE, 7);
  acc(USER_HEAP_BASE, KIND_USER_READ, 0);
  expect(cpu.readValue).toBe(7);
  k.switchTo(p);
  acc(USER_HEAP_BASE, KIND_USER_READ, 0);
  expect(cpu.readValue).toBe(42);
  k.exit(ch);
  k.exit(p);
  expect(k.framesInUse()).toBe(0);
  console.log(c);
});
