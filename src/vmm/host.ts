/**
 * The virtualized host: one physical memory shared by every virtualized domain, its frame
 * allocator, and the domains the VMM has built. Building a domain gives it a P2M, a vCPU and
 * its paging mode (modes.ts), whose intercepts the vCPU exits to.
 */

import { CPU_PROFILES, DEFAULT_CPU } from "../config/cpu.js";
import type {
  BalloonPolicySpec,
  DomainSpec,
  HardwareSpec,
  HostSwapSpec,
  SharingSpec,
} from "../config/scenario.js";
import { DataCache } from "../hw/cache.js";
import { Vcpu } from "../hw/cpu.js";
import { HostMemory } from "../hw/memory.js";
import { newCounters } from "../metrics/counters.js";
import { AutoBalloonPolicy, FixedTargets, type PolicyDomain, setTarget } from "./balloon/policy.js";
import { HostSwap } from "./balloon/swap.js";
import { HostFrames } from "./frames.js";
import { isVirtualMode, pagingModeFactory } from "./modes.js";
import { P2m } from "./p2m.js";
import type { VmmPaging } from "./paging.js";
import { EsxScanner } from "./sharing/esx.js";
import { KsmScanner } from "./sharing/ksm.js";
import { SharedFrames } from "./sharing/shared.js";
import { Xenstore } from "./xenstore.js";

/** A domain as the VMM holds it. */
export interface VmmDomain extends PolicyDomain {
  id: number;
  spec: DomainSpec;
  p2m: P2m;
  cpu: Vcpu;
  /** Its paging mode: the VMM's side of its vCPU and everything the mode holds for it. */
  paging: VmmPaging;
  /** The domain was destroyed (after a crash): it holds no memory any more. */
  destroyed: boolean;
  /** The domain's xenstore directory (balloon target, guest statistics). */
  xenstore: Xenstore;
  /** The domain's own simulated cycles (set by whoever runs it). */
  clock: () => number;
}

/** What a page-sharing scanner offers the host (KSM-style or ESX-style). */
export interface SharingScanner {
  /** Visit `pages` pages now. */
  scan(pages: number): void;
  readonly fullScans: number;
  /** Pages waiting to be matched: KSM's unstable tree, ESX's hint frames. */
  readonly pagesUnshared: number;
  readonly zeroPagesSharing: number;
}

/** Frames the pager frees at once when an allocation finds the host empty. */
const RECLAIM_BATCH = 64;

export interface HostOptions {
  swap?: HostSwapSpec;
  sharing?: SharingSpec;
  /** A uniform integer below n, for the pager's random victims (seeded by the simulation). */
  randomBelow?: (n: number) => number;
  /** The same for the ESX-style scanner's random pages (a stream of its own). */
  sharingRandomBelow?: (n: number) => number;
}

export class Host {
  readonly mem: HostMemory;
  readonly frames: HostFrames;
  readonly domains: VmmDomain[] = [];
  readonly swap: HostSwap;
  /** Host-level counters: work of the VMM's own threads (the sharing scanner). */
  readonly counters = newCounters();
  /** Shared frames, when the host shares pages. */
  readonly sharing: SharedFrames | null;
  /** The sharing scanner (started once every domain is built). */
  scanner: SharingScanner | null = null;
  /** Host cycles at which the scanner wakes next. */
  private scannerWake = 0;
  /** Times the scanner woke up. */
  scannerWakeups = 0;
  /** The ESX-style scanner's random stream. */
  private readonly randomBelow: (n: number) => number;
  private readonly sharingSpec: SharingSpec | null;
  /** The physical CPU's data caches, made with the first domain that models them. */
  private dataCache: DataCache | null = null;
  private fixed: FixedTargets | null = null;
  private auto: AutoBalloonPolicy | null = null;

  constructor(frames: number, options: HostOptions = {}) {
    this.mem = new HostMemory(frames);
    this.frames = new HostFrames(this.mem);
    this.sharingSpec = options.sharing?.enabled ? options.sharing : null;
    this.sharing = this.sharingSpec ? new SharedFrames(this.frames) : null;
    const spec = options.swap;
    const lowWater =
      spec && spec.lowWater > 0 ? spec.lowWater / 4096 : Math.max(256, Math.ceil(frames / 200));
    const highWater =
      spec && spec.highWater > 0 ? Math.max(lowWater, spec.highWater / 4096) : 2 * lowWater;
    let seed = 0x9e3779b9;
    const fallbackRandom = (n: number): number => {
      // xorshift32: only for hosts built without the simulation's random stream (tests).
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    this.swap = new HostSwap(
      this.frames,
      this.domains,
      {
        enabled: spec?.enabled ?? false,
        lowWater,
        highWater,
        grace: spec?.grace ?? 0,
      },
      options.randomBelow ?? fallbackRandom,
    );
    this.randomBelow = options.sharingRandomBelow ?? fallbackRandom;
  }

  /** Start the balloon target policy and the sharing scanner (after every domain is built). */
  startPolicy(policy: BalloonPolicySpec): void {
    if (policy.type === "fixed") this.fixed = new FixedTargets(this.domains);
    else this.auto = new AutoBalloonPolicy(this.domains, policy);
    const spec = this.sharingSpec;
    if (this.sharing && spec) {
      const p2ms = this.domains.map((d) => d.p2m);
      this.scanner =
        spec.algorithm === "ksm"
          ? new KsmScanner(this.mem, this.sharing, p2ms, spec, this.counters)
          : new EsxScanner(this.mem, this.sharing, p2ms, this.counters, this.randomBelow);
    }
  }

  /** P2M entries changed in every domain so far (see P2m.changes): a sign to check again. */
  p2mChanges(): number {
    return this.frames.p2mChanges;
  }

  /** Times the automatic policy's rules ran. */
  get policyRuns(): number {
    return this.auto?.ticks ?? 0;
  }

  /** The next user-access count at which a fixed target changes (Infinity: none). */
  nextPolicyEvent(): number {
    return this.fixed ? this.fixed.nextAt() : Number.POSITIVE_INFINITY;
  }

  /**
   * Host cycles at which a timer of the host's own threads (the automatic balloon policy, the
   * sharing scanner) is due next: the domain running then yields the CPU at that time, so that a
   * sleep shorter than a domain's turn is kept (Infinity: no timer).
   */
  nextTimer(): number {
    return Math.min(
      this.auto?.nextRun ?? Number.POSITIVE_INFINITY,
      this.scanner ? this.scannerWake : Number.POSITIVE_INFINITY,
    );
  }

  /**
   * Between domain turns (every vCPU at a safe point): the target policy, then the pager, then
   * the sharing scanner. `clock` reads the host's cycles, `accesses` is the user accesses since
   * the start.
   */
  tick(clock: () => number, accesses: number): void {
    this.fixed?.apply(accesses);
    this.auto?.maybeRun(clock(), this.frames.free, this.frames.frames);
    this.swap.enforceTargets();
    this.runScanner(clock);
  }

  /**
   * The scanner's thread: it scans `pages_to_scan` pages once `sleep` host cycles have passed
   * since its last scan ended (the sleep starts when the scan is done, as ksm_scan_thread's
   * does). `clock` reads the host's cycles, the scan's own included.
   */
  private runScanner(clock: () => number): void {
    const spec = this.sharingSpec;
    if (this.scanner === null || spec === null || clock() < this.scannerWake) return;
    this.scannerWakeups++;
    this.scanner.scan(spec.pagesToScan);
    this.scannerWake = clock() + spec.sleep;
  }

  /**
   * Build a domain: its P2M (empty: filled on first touch), its vCPU and its paging mode.
   * Throws RangeError when the mode cannot run the domain or the host cannot hold it.
   */
  createDomain(spec: DomainSpec, hardware: HardwareSpec, counters: Float64Array): VmmDomain {
    const factory = pagingModeFactory(spec.mode, spec.name);
    const problem = factory.problem(spec, hardware);
    if (problem !== "") throw new RangeError(problem);
    const id = this.domains.length;
    const gfns = spec.memory / 4096;
    const p2m = new P2m(id, gfns, this.frames, counters);
    const cpu = new Vcpu(this.mem, counters, {
      l1Entries: hardware.tlb.l1.entries,
      l1Ways: hardware.tlb.l1.ways,
      l2Entries: hardware.tlb.l2.entries,
      l2Ways: hardware.tlb.l2.ways,
    });
    cpu.ctl.gbpages = hardware.gigaPages;
    // VPIDs tag this domain's TLB entries apart from every other domain's (0 is the host's).
    cpu.setAddressSpace(id + 1, 0);
    // Every vCPU runs on the host's one physical CPU: they share its caches (the mode's own
    // walkers take them from the vCPU).
    if (hardware.dataCache) {
      this.dataCache ??= new DataCache(CPU_PROFILES[hardware.cpu ?? DEFAULT_CPU].caches);
      cpu.useDataCache(this.dataCache);
    }
    const paging = factory.create({
      spec,
      hardware,
      mem: this.mem,
      frames: this.frames,
      p2m,
      cpu,
      counters,
      sharing: this.sharing,
    });
    cpu.intercepts = paging;
    const domain: VmmDomain = {
      id,
      spec,
      p2m,
      cpu,
      paging,
      destroyed: false,
      xenstore: new Xenstore(),
      clock: () => 0,
      floorPages: Math.floor(spec.balloon.floor / 4096),
      schedule: spec.balloon.schedule.map((s) => ({
        at: s.at,
        targetPages: Math.floor(s.target / 4096),
      })),
    };
    setTarget(domain, Math.floor(spec.balloon.target / 4096));
    p2m.touchPolicy = spec.balloon.touch;
    if (this.sharing) p2m.sharedRefs = this.sharing;
    p2m.reclaim = () => this.swap.reclaim(RECLAIM_BATCH, domain);
    this.domains.push(domain);
    return domain;
  }

  /**
   * Destroy a crashed domain (as the toolstack does): every frame it holds (its RAM, its P2M's
   * pages, what its paging mode holds) goes back to the host, and its swap file is dropped. It
   * never runs again.
   */
  destroyDomain(d: VmmDomain): void {
    if (d.destroyed) return;
    d.destroyed = true;
    d.paging.teardown();
    d.cpu.flushTlbAll();
  }
}

/**
 * Host memory enough for the virtualized domains: their RAM, their P2M pages and what each
 * paging mode reserves (a shadow pool, room for the EPT). A host smaller than this may still
 * run them by overcommit, except PV domains, which are built whole.
 */
export function defaultHostFrames(domains: DomainSpec[]): number {
  let frames = 4096; // 16 MiB for the VMM itself
  for (const d of domains) {
    if (!isVirtualMode(d.mode)) continue;
    const gfns = d.memory / 4096;
    frames += gfns + Math.ceil(gfns / 512) + 8;
    frames += pagingModeFactory(d.mode, d.name).reservedFrames(d);
  }
  return frames;
}
