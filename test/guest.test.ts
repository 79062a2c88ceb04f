import { describe, expect, test } from "vitest";
import { userAccess } from "../src/guest/fault.js";
import { fork } from "../src/guest/fork.js";
import { USER_CODE_BASE, USER_HEAP_BASE, USER_STACK_TOP } from "../src/guest/layout.js";
import { VM_READ, VM_WRITE } from "../src/guest/process.js";
import { KIND_USER_FETCH, KIND_USER_WRITE } from "../src/hw/access.js";
import {
  C_GUEST_COW_FAULTS,
  C_GUEST_SEGV,
  C_INVLPG,
  C_PAGE_COPY,
} from "../src/metrics/counters.js";
import { bootGuest } from "./support/guest.js";

const image = { code: 16 * 4096, heap: 256 * 4096, hugeHeap: false };
const page = (n: number) => USER_HEAP_BASE + n * 4096;

describe("guest kernel", () => {
  test("data written is read back; demand-paged memory reads as zero", () => {
    const g = bootGuest();
    const p = g.kernel.spawn("p", image)!;
    expect(g.read(p, page(3) + 8)).toBe(0);
    for (let i = 0; i < 50; i++) expect(g.write(p, page(i) + (i % 512) * 8, 1000 + i)).toBe(true);
    for (let i = 0; i < 50; i++) expect(g.read(p, page(i) + (i % 512) * 8)).toBe(1000 + i);
    expect(g.read(p, page(60))).toBe(0);
    g.check();
  });

  test("fork shares pages copy-on-write: each side sees its own writes", () => {
    const g = bootGuest();
    const parent = g.kernel.spawn("p", image)!;
    for (let i = 0; i < 8; i++) g.write(parent, page(i), 10 + i);
    const child = fork(g.kernel, parent)!;
    expect(child).not.toBeNull();
    g.check();
    for (let i = 0; i < 8; i++) expect(g.read(child, page(i))).toBe(10 + i);
    const copiesBefore = g.counters[C_PAGE_COPY];
    g.write(child, page(2), 99);
    expect(g.counters[C_PAGE_COPY]).toBe(copiesBefore + 1);
    g.write(parent, page(3), 77);
    expect(g.read(parent, page(2))).toBe(12);
    expect(g.read(child, page(2))).toBe(99);
    expect(g.read(child, page(3))).toBe(13);
    expect(g.read(parent, page(3))).toBe(77);
    expect(g.counters[C_GUEST_COW_FAULTS]).toBeGreaterThanOrEqual(2);
    g.check();
  });

  test("the last sharer of a COW page reuses it without copying", () => {
    const g = bootGuest();
    const parent = g.kernel.spawn("p", image)!;
    g.write(parent, page(0), 1);
    const child = fork(g.kernel, parent)!;
    g.kernel.exit(child);
    const copies = g.counters[C_PAGE_COPY];
    g.write(parent, page(0), 2);
    expect(g.counters[C_PAGE_COPY]).toBe(copies);
    expect(g.read(parent, page(0))).toBe(2);
    g.check();
  });

  test("exit and munmap return every frame and page table", () => {
    const g = bootGuest();
    const start = g.kernel.framesInUse();
    expect(start).toBe(0);
    const a = g.kernel.spawn("a", image)!;
    for (let i = 0; i < 100; i++) g.write(a, page(i), i);
    const b = fork(g.kernel, a)!;
    for (let i = 0; i < 100; i += 3) g.write(b, page(i), i + 1);
    const mapped = g.kernel.mmap(a, 64 * 4096, VM_READ | VM_WRITE, false);
    for (let i = 0; i < 64; i++) g.write(a, mapped + i * 4096, i);
    const before = g.kernel.framesInUse();
    g.kernel.munmap(a, mapped, 64 * 4096);
    expect(g.kernel.framesInUse()).toBeLessThanOrEqual(before - 64);
    g.check();
    g.kernel.exit(b);
    g.check();
    g.kernel.exit(a);
    expect(g.kernel.framesInUse()).toBe(start);
    expect(g.kernel.pt.pages).toBe(0);
  });

  test("a write to a read-only mapping or an access outside every VMA kills the process", () => {
    const g = bootGuest();
    const p = g.kernel.spawn("p", image)!;
    g.write(p, page(0), 5);
    g.kernel.switchTo(p);
    expect(userAccess(g.kernel, p, USER_CODE_BASE, KIND_USER_WRITE, 1)).toBe(-1);
    expect(p.alive).toBe(false);
    expect(p.killedBy).toBe("segv");
    const q = g.kernel.spawn("q", image)!;
    expect(g.read(q, 0x7000_0000_0000)).toBeNull();
    expect(g.counters[C_GUEST_SEGV]).toBe(2);
    expect(g.kernel.framesInUse()).toBe(0);
  });

  test("code is executable, data is not", () => {
    const g = bootGuest();
    const p = g.kernel.spawn("p", image)!;
    g.kernel.switchTo(p);
    expect(
      userAccess(g.kernel, p, USER_CODE_BASE + 4096, KIND_USER_FETCH, 0),
    ).toBeGreaterThanOrEqual(0);
    g.write(p, page(0), 1);
    expect(userAccess(g.kernel, p, page(0), KIND_USER_FETCH, 0)).toBe(-1);
    expect(p.killedBy).toBe("segv");
  });

  test("mprotect takes write permission away, with a TLB flush, and gives it back", () => {
    const g = bootGuest();
    const p = g.kernel.spawn("p", image)!;
    for (let i = 0; i < 4; i++) g.write(p, page(i), i + 1);
    const invlpg = g.counters[C_INVLPG];
    g.kernel.mprotect(p, page(0), 4 * 4096, VM_READ);
    expect(g.counters[C_INVLPG]).toBe(invlpg + 4);
    g.check();
    expect(g.read(p, page(1))).toBe(2);
    g.kernel.mprotect(p, page(0), 4 * 4096, VM_READ | VM_WRITE);
    expect(g.write(p, page(1), 20)).toBe(true);
    expect(g.read(p, page(1))).toBe(20);
    g.kernel.mprotect(p, page(0), 4096, VM_READ);
    expect(g.write(p, page(0), 9)).toBe(false);
    expect(p.killedBy).toBe("segv");
  });

  test("a stack page can be touched; the stack VMA sits under the top", () => {
    const g = bootGuest();
    const p = g.kernel.spawn("p", image)!;
    expect(g.write(p, USER_STACK_TOP - 8, 3)).toBe(true);
    expect(g.read(p, USER_STACK_TOP - 8)).toBe(3);
  });

  test("transparent huge pages: a 2 MiB mapping, split on copy-on-write", () => {
    const g = bootGuest(64);
    const huge = { code: 4096, heap: 4 * 2 ** 20, hugeHeap: true };
    const p = g.kernel.spawn("p", huge)!;
    g.write(p, USER_HEAP_BASE + 5 * 4096, 55);
    expect(p.rss).toBe(512);
    expect(g.read(p, USER_HEAP_BASE + 300 * 4096)).toBe(0);
    g.check();
    const c = fork(g.kernel, p)!;
    g.write(c, USER_HEAP_BASE + 5 * 4096, 66);
    g.check();
    expect(g.read(p, USER_HEAP_BASE + 5 * 4096)).toBe(55);
    expect(g.read(c, USER_HEAP_BASE + 5 * 4096)).toBe(66);
    g.kernel.munmap(p, USER_HEAP_BASE + 4096, 4096);
    g.check();
    expect(g.read(p, USER_HEAP_BASE)).toBe(0);
    g.kernel.exit(c);
    g.kernel.exit(p);
    expect(g.kernel.framesInUse()).toBe(0);
  });

  test("out of memory: the OOM killer picks the largest process, the kernel stays consistent", () => {
    const g = bootGuest(8); // 2048 frames, 256 reserved
    const big = g.kernel.spawn("big", { code: 4096, heap: 7 * 2 ** 20, hugeHeap: false })!;
    const small = g.kernel.spawn("small", { code: 4096, heap: 64 * 4096, hugeHeap: false })!;
    g.write(small, page(0), 1);
    let i = 0;
    while (big.alive && i < 1792) g.write(big, page(i++), i);
    expect(big.alive).toBe(false);
    expect(big.killedBy).toBe("oom");
    expect(small.alive).toBe(true);
    expect(g.read(small, page(0))).toBe(1);
    g.check();
  });

  test("with PCIDs a context switch keeps the TLB, and stays correct", () => {
    const g = bootGuest(64, { pcid: true });
    const a = g.kernel.spawn("a", image)!;
    const b = g.kernel.spawn("b", image)!;
    g.write(a, page(0), 1);
    g.write(b, page(0), 2);
    const misses = g.counters[7];
    for (let i = 0; i < 10; i++) {
      expect(g.read(a, page(0))).toBe(1);
      expect(g.read(b, page(0))).toBe(2);
    }
    expect(g.counters[7]).toBe(misses); // every read hit the TLB under its own PCID
    g.kernel.munmap(a, page(0), 4096); // a is not running: its PCID must be flushed on next load
    g.kernel.switchTo(a);
    g.check();
    expect(g.read(a, page(0))).toBeNull(); // a stale entry would have read 1
    expect(a.killedBy).toBe("segv");
  });
});
