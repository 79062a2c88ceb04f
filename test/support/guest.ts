/**
 * A guest for tests: a booted kernel with exact data, natively or under a VMM mode (shadow
 * paging, HAP, PV direct paging), built as a run builds it (api/platform.ts), and helpers to
 * drive processes and to check every invariant (api/check.ts, as --check does).
 */

import { checkDomain } from "../../src/api/check.js";
import { nativePlatform, type Platform, virtualPlatform } from "../../src/api/platform.js";
import type { ShadowSpec, SharingSpec, WalkCacheSpec } from "../../src/api/types.js";
import { BalloonDriver } from "../../src/guest/balloon.js";
import { userAccess } from "../../src/guest/fault.js";
import { Kernel, type KernelOptions } from "../../src/guest/kernel.js";
import type { Process } from "../../src/guest/process.js";
import { KIND_USER_READ, KIND_USER_WRITE } from "../../src/hw/access.js";
import type { Vcpu } from "../../src/hw/cpu.js";
import type { HostMemory } from "../../src/hw/memory.js";
import { PTE_P, PTE_PS, pteFrame } from "../../src/hw/pte.js";
import { newCounters } from "../../src/metrics/counters.js";
import { setTarget } from "../../src/vmm/balloon/policy.js";
import { Host, type VmmDomain } from "../../src/vmm/host.js";
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
    pageCache: options.pageCache,
    faultAroundPages: options.faultAroundPages,
  };
  const hardware = {
    ...TEST_HARDWARE,
    pcid: kernelOptions.pcid,
    gigaPages: kernelOptions.gigaPages,
    walkCaches: options.walkCaches,
  };
  let host: Host | null = null;
  let platform: Platform;
  if (mode === "native") {
    platform = nativePlatform(vmmSpec("test", mode, {}, memMiB * 2 ** 20), hardware, counters);
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
    platform = virtualPlatform(host, spec, hardware, counters, {
      writablePageTables: options.writablePageTables,
    });
  }
  const { mem, cpu, vmm, gfnToMfn } = platform;
  mem.exactData = true;
  const kernel = new Kernel(cpu, platform.ops, frames, counters, kernelOptions);
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
  const peek = platform.peek;
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
      const problem = checkDomain(platform, kernel, host, true);
      if (problem !== null) throw new Error(`invariant: ${problem}`);
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
