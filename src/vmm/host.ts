/**
 * The virtualized host: one physical memory shared by every virtualized domain, its frame
 * allocator, and the domains the VMM has built. Building a domain gives it a P2M, a vCPU with
 * the paging mode's intercepts installed, and (for shadow paging) its shadow pool.
 */

import type {
  BalloonPolicySpec,
  DomainSpec,
  HardwareSpec,
  HostSwapSpec,
  SharingSpec,
} from "../config/scenario.js";
import { NativePagingOps, type PagingOps } from "../guest/paging-ops.js";
import { PvPagingOps } from "../guest/pv-paging-ops.js";
import type { Mfn } from "../hw/addr.js";
import { Vcpu } from "../hw/cpu.js";
import { HostMemory } from "../hw/memory.js";
import { NestedWalker } from "../hw/nested.js";
import { pwcLevels } from "../hw/pwc.js";
import { newCounters } from "../metrics/counters.js";
import { AutoBalloonPolicy, FixedTargets, type PolicyDomain, setTarget } from "./balloon/policy.js";
import { HostSwap } from "./balloon/swap.js";
import { HostFrames, OWNER_SHADOW } from "./frames.js";
import { HapPaging } from "./hap/hap.js";
import { P2m } from "./p2m.js";
import { PvFrameTypes } from "./pv/mm.js";
import { PvPaging } from "./pv/pv.js";
import { defaultShadowPoolPages, ShadowPaging } from "./shadow/shadow.js";
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
  shadow: ShadowPaging | null;
  /** Hardware-assisted paging (hap mode): the EPT. */
  hap: HapPaging | null;
  /** PV direct paging, for a PV domain. */
  pv: PvPaging | null;
  /** Shadow pool pages (allocated from the host when the domain is built). */
  shadowPoolPages: number;
  /** The frames of the shadow pool. */
  poolFrames: Mfn[];
  /** The domain was destroyed (after a crash): it holds no memory any more. */
  destroyed: boolean;
  /** The domain's xenstore directory (balloon target, guest statistics). */
  xenstore: Xenstore;
  /** The domain's own simulated cycles (set by whoever runs it). */
  clock: () => number;
}

/** What a page-sharing scanner offers the host (KSM-style or ESX-style). */
export interface SharingScanner {
  maybeRun(now: number): void;
  /** Visit `pages` pages now. */
  scan(pages: number): void;
  readonly fullScans: number;
  /** Pages waiting to be matched: KSM's unstable tree, ESX's hint frames. */
  readonly pagesUnshared: number;
  readonly zeroPagesSharing: number;
}

/** A 2D walk with no cache: the default hardware (every cold walk makes 24 references). */
const NO_WALK_CACHES = { pwc: false, eptPwc: false, nestedTlb: false };

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
  /** The ESX-style scanner's random stream. */
  private readonly randomBelow: (n: number) => number;
  private readonly sharingSpec: SharingSpec | null;
  /** The frame table of PV direct paging (page types), made with the first PV domain. */
  pvTypes: PvFrameTypes | null = null;
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
          : new EsxScanner(this.mem, this.sharing, p2ms, spec, this.counters, this.randomBelow);
    }
  }

  /** P2M entries changed in every domain so far (see P2m.changes): a sign to check again. */
  p2mChanges(): number {
    let n = 0;
    for (const d of this.domains) n += d.p2m.changes;
    return n;
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
   * Between domain turns (every vCPU at a safe point): the target policy, then the pager.
   * `now` is the host's cycles, `accesses` the user accesses since the start.
   */
  tick(now: number, accesses: number): void {
    this.fixed?.apply(accesses);
    this.auto?.maybeRun(now, this.frames.free, this.frames.frames);
    this.swap.enforceTargets();
    this.scanner?.maybeRun(now);
  }

  /** Build a domain: its P2M (empty: filled on first touch), its vCPU and its paging mode. */
  createDomain(spec: DomainSpec, hardware: HardwareSpec, counters: Float64Array): VmmDomain {
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
    // The 2D walk has its own combined caches; shadow walks use the vCPU's.
    if (hardware.walkCaches?.pwc && spec.mode !== "hap") cpu.pwc = pwcLevels();
    // VPIDs tag this domain's TLB entries apart from every other domain's (0 is the host's).
    cpu.setAddressSpace(id + 1, 0);
    let shadow: ShadowPaging | null = null;
    let hap: HapPaging | null = null;
    let pv: PvPaging | null = null;
    let poolPages = 0;
    const pool: Mfn[] = [];
    if (spec.mode === "shadow") {
      if (hardware.gigaPages) {
        throw new RangeError(
          `domain ${spec.name}: shadow paging does not support 1 GiB guest pages`,
        );
      }
      poolPages =
        spec.shadow.pool > 0 ? spec.shadow.pool / 4096 : defaultShadowPoolPages(spec.memory);
      for (let i = 0; i < poolPages; i++) {
        const mfn = this.frames.alloc(OWNER_SHADOW, id);
        if (mfn < 0)
          throw new RangeError(`domain ${spec.name}: the host has no memory for its shadow pool`);
        pool.push(mfn);
      }
      shadow = new ShadowPaging(this.mem, p2m, pool, counters, {
        poolPages,
        unshadow: spec.shadow.unshadow,
        prefetch: spec.shadow.prefetch,
        writableSearch: spec.shadow.writableSearch,
      });
      shadow.cpu = cpu;
      cpu.intercepts = shadow;
    } else if (spec.mode === "hap") {
      hap = new HapPaging(this.mem, p2m, counters, {
        largePages: spec.hap?.largePages ?? false,
      });
      hap.cpu = cpu;
      cpu.intercepts = hap;
      cpu.nested = new NestedWalker(hardware.walkCaches ?? NO_WALK_CACHES);
      cpu.eptRoot = hap.ept.root;
    } else if (spec.mode === "pv") {
      if (hardware.gigaPages) {
        throw new RangeError(`domain ${spec.name}: a PV guest has no 1 GiB (or 2 MiB) pages`);
      }
      this.pvTypes ??= new PvFrameTypes(this.frames.frames);
      pv = new PvPaging(this.mem, this.frames, this.pvTypes, p2m, counters);
      pv.cpu = cpu;
      cpu.intercepts = pv;
      cpu.pvMmu = pv;
      if (!pv.populate()) {
        p2m.destroy();
        throw new RangeError(`domain ${spec.name}: the host has no memory for the PV domain`);
      }
    } else {
      throw new RangeError(`domain ${spec.name}: mode "${spec.mode}" is not a virtualized mode`);
    }
    const xenstore = new Xenstore();
    const domain: VmmDomain = {
      id,
      spec,
      p2m,
      cpu,
      shadow,
      hap,
      pv,
      shadowPoolPages: poolPages,
      poolFrames: pool,
      destroyed: false,
      xenstore,
      clock: () => 0,
      floorPages: Math.floor(spec.balloon.floor / 4096),
      schedule: spec.balloon.schedule.map((s) => ({
        at: s.at,
        targetPages: Math.floor(s.target / 4096),
      })),
    };
    setTarget(domain, Math.floor(spec.balloon.target / 4096));
    p2m.touchPolicy = spec.balloon.touch;
    if (this.sharing) {
      p2m.sharedRefs = this.sharing;
      // The VMM's walks of this guest's tables may not set A/D bits in a shared frame.
      if (shadow) shadow.guestWalker.readOnly = this.sharing.isShared;
    }
    p2m.reclaim = () => this.swap.reclaim(RECLAIM_BATCH, domain);
    this.domains.push(domain);
    return domain;
  }

  /**
   * Destroy a crashed domain (as the toolstack does): every frame it holds (its RAM, its P2M's
   * pages, its shadow pool) goes back to the host, and its swap file is dropped. It never runs
   * again.
   */
  destroyDomain(d: VmmDomain): void {
    if (d.destroyed) return;
    d.destroyed = true;
    d.pv?.destroy();
    d.p2m.destroy();
    d.hap?.ept.destroy();
    for (const mfn of d.poolFrames) this.frames.release(mfn);
    d.poolFrames.length = 0;
    d.shadowPoolPages = 0;
    d.cpu.flushTlbAll();
  }

  /**
   * Guest paging operations for a domain: HVM guests use the native ones; a PV guest its
   * hypercalls, reading its own p2m list and the m2p (read-only to it, as Xen maps it).
   */
  pagingOps(domain: VmmDomain, options: { writablePageTables?: boolean } = {}): PagingOps {
    if (domain.pv === null) return new NativePagingOps(domain.cpu);
    return new PvPagingOps(domain.cpu, domain.p2m.mfn, this.frames.m2p, options);
  }
}

/**
 * Host memory enough for the virtualized domains: their RAM, shadow pools and P2M pages. A PV
 * domain needs no more (no shadow; its page tables are its own RAM), but all of its RAM at
 * once: it is built whole, so a host smaller than its PV domains refuses to build them.
 */
export function defaultHostFrames(domains: DomainSpec[]): number {
  let frames = 4096; // 16 MiB for the VMM itself
  for (const d of domains) {
    if (d.mode === "native") continue;
    const gfns = d.memory / 4096;
    frames += gfns + Math.ceil(gfns / 512) + 8;
    if (d.mode === "shadow") {
      frames += d.shadow.pool > 0 ? d.shadow.pool / 4096 : defaultShadowPoolPages(d.memory);
    }
    // The EPT: one L1 page per 512 gfns and the pages above (and the splits of large pages).
    if (d.mode === "hap") frames += 2 * Math.ceil(gfns / 512) + 8;
  }
  return frames;
}
