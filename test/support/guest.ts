/**
 * A guest for tests: a booted kernel with exact data, natively or under a VMM mode (shadow
 * paging, PV direct paging), and helpers to drive processes and to check every invariant.
 */

import type { ShadowSpec, SharingSpec, WalkCacheSpec } from "../../src/api/types.js";
import { BalloonDriver } from "../../src/guest/balloon.js";
import { checkGuest, type GuestMemoryPeek } from "../../src/guest/check.js";
import { userAccess } from "../../src/guest/fault.js";
import { Kernel, type KernelOptions } from "../../src/guest/kernel.js";
import { NativePagingOps, type PagingOps } from "../../src/guest/paging-ops.js";
import type { Process } from "../../src/guest/process.js";
import { KIND_USER_READ, KIND_USER_WRITE } from "../../src/hw/access.js";
import { checkTlb } from "../../src/hw/check.js";
import { Vcpu } from "../../src/hw/cpu.js";
import { eptKindMask } from "../../src/hw/ept.js";
import { HostMemory } from "../../src/hw/memory.js";
import { PTE_P, PTE_PS, pteFrame } from "../../src/hw/pte.js";
import { pwcLevels } from "../../src/hw/pwc.js";
import { newCounters } from "../../src/metrics/counters.js";
import { checkP2m } from "../../src/vmm/balloon/check.js";
import { setTarget } from "../../src/vmm/balloon/policy.js";
import { checkEpt, checkReach } from "../../src/vmm/hap/check.js";
import { eptPermsOf } from "../../src/vmm/hap/hap.js";
import { Host, type VmmDomain } from "../../src/vmm/host.js";
import { checkPvIsolation, checkPvTables } from "../../src/vmm/pv/check.js";
import { PvGuestPeek } from "../../src/vmm/pv/peek.js";
import { checkBookkeeping, checkHostFrames, checkShadow } from "../../src/vmm/shadow/check.js";
import { checkSharing } from "../../src/vmm/sharing/check.js";
import { TEST_HARDWARE, vmmSpec } from "./domains.js";

/** The modes the differential harness runs. */
export const VMM_TEST_MODES = ["shadow", "hap", "pv"] as const;
export type TestMode = "native" | (typeof VMM_TEST_MODES)[number];
/** The modes whose memory the host may share: not PV (Xen's sharing needs HAP). */
export const SHARING_TEST_MODES = VMM_TEST_MODES.filter((m) => m !== "pv");

export interface TestGuest {
  mode: TestMode;
  mem: HostMemory;
  cpu: Vcpu;
  kernel: Kernel;
  counters: Float64Array;
  host: Host | null;
  vmm: VmmDomain | null;
  gfnToMfn(gfn: number): number;
  /** Run `proc` (switching to it) and write `value` at gva; false if the process died. */
  write(proc: Process, gva: number, value: number): boolean;
  /** Run `proc` and read gva: the value, or null if the process died. */
  read(proc: Process, gva: number): number | null;
  /** Every invariant checker; throws with the first violation. */
  check(): void;
  /** Every user page-table entry of a process, as "level/index path: lo hi" lines. */
  tables(proc: Process): string[];
  /** Under a VMM: write the balloon target (pages) and let the driver run; natively nothing. */
  setBalloonTarget(pages: number): void;
  /** Under a VMM: the host swaps out up to `pages` random pages; natively nothing. */
  swapOut(pages: number): number;
  /** Under a VMM that shares pages: the scanner visits `pages` pages; natively nothing. */
  scan(pages: number): void;
}

export interface GuestOptions extends Partial<KernelOptions> {
  mode?: TestMode;
  shadow?: Partial<ShadowSpec>;
  /** hap mode: the 2D walk's caches and 2 MiB EPT pages (walkCaches.pwc also natively). */
  walkCaches?: WalkCacheSpec;
  eptLargePages?: boolean;
  /** Host memory in MiB under a VMM (default: enough). */
  hostMiB?: number;
  /** Under a VMM: build the domain on this host (several guests on one host). */
  host?: Host;
  /** Under a VMM: the host shares pages (a scanner the test drives with scan()). */
  sharing?: boolean | "ksm" | "esx";
  /** The OS image the kernel's reserved frames are read from (none: zero). */
  osImage?: string;
  /** PV mode: L1 entries written by trapped stores (ptwr) instead of mmu_update. */
  writablePageTables?: boolean;
}

/** The sharing settings tests use (the scanner only runs when a test calls scan). */
export const TEST_SHARING: SharingSpec = {
  enabled: true,
  algorithm: "ksm",
  pagesToScan: 64,
  sleep: 1,
  useZeroPages: false,
};

export function bootGuest(memMiB = 64, options: GuestOptions = {}): TestGuest {
  const mode = options.mode ?? "native";
  const frames = (memMiB * 2 ** 20) / 4096;
  const counters = newCounters();
  const kernelOptions: KernelOptions = {
    gigaPages: options.gigaPages ?? false,
    pcid: options.pcid ?? false,
    osImage: options.osImage,
  };
  let mem: HostMemory;
  let cpu: Vcpu;
  let host: Host | null = null;
  let vmm: VmmDomain | null = null;
  let gfnToMfn: (gfn: number) => number = (gfn) => gfn;
  if (mode === "native") {
    mem = new HostMemory(frames);
    cpu = new Vcpu(mem, counters);
    cpu.ctl.gbpages = kernelOptions.gigaPages;
    if (options.walkCaches?.pwc) cpu.pwc = pwcLevels();
  } else {
    host =
      options.host ??
      new Host(((options.hostMiB ?? memMiB * 2 + 16) * 2 ** 20) / 4096, {
        sharing: options.sharing
          ? { ...TEST_SHARING, algorithm: options.sharing === "esx" ? "esx" : "ksm" }
          : undefined,
      });
    const spec = {
      ...vmmSpec(`test${host.domains.length}`, mode, options.shadow, memMiB * 2 ** 20),
      hap: { largePages: options.eptLargePages ?? false },
    };
    const hardware = {
      ...TEST_HARDWARE,
      pcid: kernelOptions.pcid,
      gigaPages: kernelOptions.gigaPages,
      walkCaches: options.walkCaches,
    };
    vmm = host.createDomain(spec, hardware, counters);
    mem = host.mem;
    cpu = vmm.cpu;
    const p2m = vmm.p2m;
    gfnToMfn = (gfn) => p2m.lookup(gfn);
  }
  mem.exactData = true;
  const ops: PagingOps =
    host !== null && vmm !== null
      ? host.pagingOps(vmm, { writablePageTables: options.writablePageTables })
      : new NativePagingOps(cpu);
  const kernel = new Kernel(cpu, ops, frames, counters, kernelOptions);
  kernel.boot();
  let clock = 0;
  if (vmm !== null) {
    kernel.balloon = new BalloonDriver(kernel, vmm.xenstore, {
      retryDelay: 10,
      maxRetryDelay: 80,
    });
    kernel.balloon.start();
  }
  const run = (proc: Process, gva: number, kind: number, value: number): boolean => {
    if (!proc.alive) return false;
    kernel.switchTo(proc);
    return userAccess(kernel, proc, gva, kind, value) !== -1;
  };
  const peek: GuestMemoryPeek =
    vmm?.pv && host ? new PvGuestPeek(vmm.p2m, host.frames.m2p) : vmm ? vmm.p2m : mem;
  const readEntry = (gfn: number, index: number): [number, number] => {
    peek.peek64(gfn, index);
    return [peek.lo, peek.hi];
  };
  return {
    mode,
    mem,
    cpu,
    kernel,
    counters,
    host,
    vmm,
    gfnToMfn,
    write: (proc, gva, value) => run(proc, gva, KIND_USER_WRITE, value),
    read: (proc, gva) => (run(proc, gva, KIND_USER_READ, 0) ? cpu.readValue : null),
    check: () => {
      const problems = [
        // Under shadow paging a global TLB entry may outlive the root it came from (as on real
        // hardware) while the new root's shadow is still empty: the shadow check compares TLB
        // entries with the guest's tables and the P2M instead.
        vmm === null || vmm.pv ? checkTlb(cpu, mem.frames) : null,
        vmm?.pv ? checkPvIsolation(vmm.pv, cpu) : null,
        vmm?.pv ? checkPvTables(vmm.pv) : null,
        vmm?.hap
          ? checkTlb(cpu, mem.frames, {
              mfnOf: vmm.p2m.mfn,
              kindMaskOf: (gfn) => eptKindMask(eptPermsOf(vmm.p2m.type[gfn])),
            })
          : null,
        vmm?.hap && host ? checkEpt(vmm.hap, host.frames, vmm.id) : null,
        vmm?.hap && host ? checkReach(cpu, host.frames, vmm.id) : null,
        vmm?.shadow && host ? checkShadow(vmm.shadow, cpu, host.frames, vmm.id) : null,
        vmm?.shadow ? checkBookkeeping(vmm.shadow) : null,
        host ? checkHostFrames(host.frames) : null,
        vmm && host
          ? checkP2m(vmm.p2m, host.frames, vmm.id, kernel.balloon?.inBalloon ?? null)
          : null,
        host ? checkSharing(host) : null,
        checkGuest(kernel, peek),
      ].filter((p) => p !== null);
      if (problems.length > 0) throw new Error(`invariant: ${problems[0]}`);
    },
    setBalloonTarget: (pages) => {
      if (vmm === null || kernel.balloon === null) return;
      setTarget(vmm, pages);
      clock += 100;
      kernel.balloon.poll(clock);
    },
    swapOut: (pages) => (vmm !== null && host !== null ? host.swap.swapOut(vmm, pages) : 0),
    scan: (pages) => {
      if (host?.sharing && host.scanner === null) host.startPolicy({ type: "fixed" });
      host?.scanner?.scan(pages);
    },
    tables: (proc) => {
      const out: string[] = [];
      const visit = (gfn: number, level: number, path: string) => {
        for (let i = 0; i < (level === 4 ? 256 : 512); i++) {
          const [lo, hi] = readEntry(gfn, i);
          if (lo === 0 && hi === 0) continue;
          const here = `${path}/${i}`;
          out.push(`${here}: ${hi.toString(16)} ${lo.toString(16)}`);
          const leaf = level === 1 || (level === 2 && (lo & PTE_PS) !== 0);
          if ((lo & PTE_P) !== 0 && !leaf) visit(pteFrame(lo, hi), level - 1, here);
        }
      };
      if (proc.alive) visit(proc.l4Gfn, 4, "");
      return out;
    },
  };
}
