/**
 * What a domain runs on, assembled here where the guest and the VMM meet (neither imports the
 * other). Native mode: a machine of its own, with as many frames as the domain has memory, no
 * VMM, guest frame = machine frame. A virtualized mode: a domain the VMM builds on the shared
 * host, and the guest paging operations its mode needs. The guest kernel and the run loop never
 * know which they got.
 */

import { CPU_PROFILES, DEFAULT_CPU } from "../config/cpu.js";
import type { DomainSpec, HardwareSpec } from "../config/scenario.js";
import { GuestClock } from "../guest/clock.js";
import { NativePagingOps, type PagingOps } from "../guest/paging-ops.js";
import { PvPagingOps } from "../guest/pv-paging-ops.js";
import { DataCache } from "../hw/cache.js";
import { Vcpu } from "../hw/cpu.js";
import { HostMemory } from "../hw/memory.js";
import type { GuestMemoryPeek } from "../hw/peek.js";
import { pwcLevels } from "../hw/pwc.js";
import type { CostModel } from "../metrics/cost.js";
import type { Host, VmmDomain } from "../vmm/host.js";

export interface Platform {
  mem: HostMemory;
  cpu: Vcpu;
  ops: PagingOps;
  /** Guest frames the domain has. */
  guestFrames: number;
  /** The host frame behind a guest frame, for checkers (identity natively). */
  gfnToMfn(gfn: number): number;
  /** The guest's memory as checkers read it (see GuestMemoryPeek). */
  peek: GuestMemoryPeek;
  /** The VMM's record of the domain; null in native mode. */
  vmm: VmmDomain | null;
}

export interface VirtualPlatformOptions {
  /** A PV guest stores its L1 entries directly, trapped and emulated (Xen's ptwr). */
  writablePageTables?: boolean;
}

export function nativePlatform(
  domain: DomainSpec,
  hardware: HardwareSpec,
  counters: Float64Array,
): Platform {
  const frames = domain.memory / 4096;
  const mem = new HostMemory(frames);
  const cpu = new Vcpu(mem, counters, {
    l1Entries: hardware.tlb.l1.entries,
    l1Ways: hardware.tlb.l1.ways,
    l2Entries: hardware.tlb.l2.entries,
    l2Ways: hardware.tlb.l2.ways,
  });
  cpu.ctl.gbpages = hardware.gigaPages;
  if (hardware.walkCaches?.pwc) cpu.pwc = pwcLevels();
  // A machine of its own: its own caches.
  if (hardware.dataCache) {
    cpu.useDataCache(new DataCache(CPU_PROFILES[hardware.cpu ?? DEFAULT_CPU].caches));
  }
  return {
    mem,
    cpu,
    ops: new NativePagingOps(cpu),
    guestFrames: frames,
    gfnToMfn: (gfn) => gfn,
    peek: mem,
    vmm: null,
  };
}

/**
 * A domain built by the VMM on the shared host. Throws RangeError when its mode cannot run it
 * or the host cannot hold it.
 */
export function virtualPlatform(
  host: Host,
  domain: DomainSpec,
  hardware: HardwareSpec,
  counters: Float64Array,
  options: VirtualPlatformOptions = {},
): Platform {
  const vmm = host.createDomain(domain, hardware, counters);
  return {
    mem: host.mem,
    cpu: vmm.cpu,
    ops: guestPagingOps(host, vmm, options),
    guestFrames: domain.memory / 4096,
    gfnToMfn: (gfn) => vmm.p2m.lookup(gfn),
    peek: vmm.paging.guestView,
    vmm,
  };
}

/**
 * The guest kernel's paging operations (its pv_ops) for the kernel the domain's mode needs: an
 * unmodified kernel's, or a PV kernel's hypercalls, reading its own p2m list and the m2p
 * (read-only to it, as Xen maps it).
 */
function guestPagingOps(host: Host, vmm: VmmDomain, options: VirtualPlatformOptions): PagingOps {
  if (vmm.paging.guestKernel === "hvm") return new NativePagingOps(vmm.cpu);
  return new PvPagingOps(vmm.cpu, vmm.p2m.mfn, host.frames.m2pTable, options);
}

/**
 * The guest's clock of a domain on `hardware` (see GuestClock): its view of the profile's caches
 * when the run models data caches, its stalls priced as `cost` prices a data access's.
 */
export function newGuestClock(hardware: HardwareSpec, cost: CostModel): GuestClock {
  return new GuestClock(
    hardware.dataCache ? CPU_PROFILES[hardware.cpu ?? DEFAULT_CPU].caches : null,
    { l2: cost.cycles.data_l2, llc: cost.cycles.data_llc, dram: cost.cycles.data_dram },
  );
}
