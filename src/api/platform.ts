/**
 * What a domain runs on. Native mode: a machine of its own, with as many frames as the domain
 * has memory, no VMM, guest frame = machine frame. The virtualized modes (vmm/) build the same
 * shape with a P2M behind it, so the guest kernel and the run loop never know which it got.
 */

import type { GuestMemoryPeek } from "../guest/check.js";
import { NativePagingOps, type PagingOps } from "../guest/paging-ops.js";
import { Vcpu } from "../hw/cpu.js";
import { HostMemory } from "../hw/memory.js";
import { pwcLevels } from "../hw/pwc.js";
import type { Host, VmmDomain } from "../vmm/host.js";
import { PvGuestPeek } from "../vmm/pv/peek.js";
import type { DomainSpec, HardwareSpec } from "./types.js";

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

/** A domain built by the VMM on the shared host. */
export function virtualPlatform(
  host: Host,
  domain: DomainSpec,
  hardware: HardwareSpec,
  counters: Float64Array,
): Platform {
  const vmm = host.createDomain(domain, hardware, counters);
  return {
    mem: host.mem,
    cpu: vmm.cpu,
    ops: host.pagingOps(vmm),
    guestFrames: domain.memory / 4096,
    gfnToMfn: (gfn) => vmm.p2m.lookup(gfn),
    peek: vmm.pv ? new PvGuestPeek(vmm.p2m, host.frames.m2p) : vmm.p2m,
    vmm,
  };
}
