/**
 * The public types of memvisor: the scenario a user writes and the report a run produces.
 * One file, so that the library's surface can be read in one place (see docs/ARCHITECTURE.md).
 * Sizes in scenarios are bytes once parsed; the YAML/JSON form also accepts strings like "512MiB".
 */

import type { Trace } from "../workload/trace/format.js";

/** How a domain's memory is virtualized. Only "native" exists until the VMM lands. */
export type PagingMode = "native" | "shadow" | "hap" | "pv";

/** The order in which a process picks the pages it touches. */
export type AccessPattern =
  | { type: "sequential" }
  | { type: "uniform" }
  /** hotFraction of the pages get hotProbability of the accesses. */
  | { type: "hotcold"; hotFraction: number; hotProbability: number }
  /** Zipf over the pages with exponent s (s > 0; 0.99 is a typical key-value store). */
  | { type: "zipf"; s: number }
  /** Every stride-th page, wrapping around. */
  | { type: "stride"; stride: number };

/** What a process does over its life. */
export type ProcessKind =
  /** A long-running process with a large working set: touches its heap forever. */
  | "database"
  /** A make-like parent that forks short children which exec, work briefly and exit. */
  | "build"
  /** Maps a region, touches part of it, unmaps it, again and again. */
  | "mmap-churn"
  /** Replays a recorded program's memory accesses in the address space the trace shows. */
  | "trace";

/** The recorded accesses a trace process replays. */
export interface TraceSpec {
  /** The trace file as the scenario names it (shown in reports and errors). */
  file: string;
  /** Start again from the first access when the trace ends (otherwise the process exits). */
  loop: boolean;
  /**
   * The records, once read. loadScenarioFile (memvisor/node) reads them; parseScenario cannot
   * read files and leaves null unless it is given a loadTrace function.
   */
  data: Trace | null;
}

export interface ProcessSpec {
  /** Shown in reports. */
  name: string;
  kind: ProcessKind;
  /** How many copies of this process the guest starts. */
  instances: number;
  /** Bytes of heap the process touches (database), each child touches (build) or each mapping has (mmap-churn). */
  workingSet: number;
  /** Bytes of code (text) mapped read-only and executable. */
  code: number;
  pattern: AccessPattern;
  /** Fraction of data accesses that are writes, 0..1. */
  writes: number;
  /** Fraction of all accesses that are instruction fetches from the code region, 0..1. */
  fetches: number;
  /** build: accesses a child makes before it exits. */
  childAccesses: number;
  /** build: children running at once. */
  jobs: number;
  /** mmap-churn: accesses into one mapping before it is unmapped. */
  churnAccesses: number;
  /** database: user accesses after which the process exits (0: it runs for ever). */
  lifetime: number;
  /**
   * The program's image: its code pages are read from it, the same in every domain that runs
   * the same image (page sharing finds them). Default: the process's name.
   */
  image: string;
  /** Share of the heap's pages that start as data read from the image (the rest zero), 0..1. */
  imageData: number;
  /** Use 2 MiB pages for the heap where the guest can (transparent huge pages). */
  hugePages: boolean;
  /** trace: what it replays (null for every other kind). */
  trace: TraceSpec | null;
}

/** How a guest's process exits, invisible to the VMM, are guessed (see README). */
export type UnshadowPolicy = "early" | "flood" | "none";

/** Shadow paging settings of a domain (used when it runs in shadow mode). */
export interface ShadowSpec {
  /** Bytes of shadow pool; 0 means Xen's default (1 MiB per vCPU + 8 KiB per MiB of guest). */
  pool: number;
  unshadow: UnshadowPolicy;
  /** Neighbouring guest entries propagated on a fixed fault (0..511). */
  prefetch: number;
  /** How writable mappings of a newly shadowed page table are found. */
  writableSearch: "rmap" | "bruteforce";
}

/** What touching a ballooned-out page does: a new zeroed page (KVM, ESX, Xen PoD) or a crash. */
export type BalloonTouchPolicy = "populate" | "mmio";

/** A domain's balloon: the guest driver and its targets (used in virtualized modes). */
export interface BalloonSpec {
  /** Whether the guest runs a balloon driver. */
  driver: boolean;
  /** The target at boot, in bytes (the domain's memory: no ballooning). */
  target: number;
  /** The automatic policy never sets a target below this (bytes). */
  floor: number;
  touch: BalloonTouchPolicy;
  /** Fixed-policy target changes: at `at` user accesses since the start (warm-up included). */
  schedule: { at: number; target: number }[];
  /** The driver's first retry delay after a back-off, and its limit (domain cycles). */
  retryDelay: number;
  maxRetryDelay: number;
}

export interface DomainSpec {
  name: string;
  /** Guest physical memory in bytes (a multiple of 2 MiB): the boot size. */
  memory: number;
  mode: PagingMode;
  /** The guest OS image: its kernel's reserved frames hold its pages (the same in every domain). */
  osImage: string;
  shadow: ShadowSpec;
  /** Hardware-assisted paging settings (used in hap mode; default: 4 KiB EPT pages only). */
  hap?: HapSpec;
  balloon: BalloonSpec;
  /**
   * Guest scheduler quantum, in steps of the guest's processes (memory accesses and system
   * calls): the guest's clock is its own work, as QEMU's -icount, so that it behaves the same
   * in every paging mode while the host's cycles measure what each mode costs.
   */
  quantum: number;
  processes: ProcessSpec[];
}

export interface TlbLevelSpec {
  entries: number;
  ways: number;
}

export interface HardwareSpec {
  tlb: { l1: TlbLevelSpec; l2: TlbLevelSpec };
  /** Whether the guest kernel uses PCIDs so that a CR3 write need not flush the TLB. */
  pcid: boolean;
  /** Whether the guest maps 1 GiB pages where it could (direct map); needs hardware support. */
  gigaPages: boolean;
  /** The page walk's caches; default: none (a cold 4-level walk makes 4 references, 24 in 2D). */
  walkCaches?: WalkCacheSpec;
}

/** Which caches the page walker has (see hw/pwc.ts and hw/nested.ts). */
export interface WalkCacheSpec {
  /**
   * Paging-structure caches of the L4, L3 and L2 entries of the tables the hardware walks: the
   * guest's natively and under HAP (combined with the EPT), the shadows under shadow paging.
   */
  pwc: boolean;
  /** HAP: caches of the EPT's upper-level entries. */
  eptPwc: boolean;
  /** HAP: a nested TLB of gfn -> host frame translations. */
  nestedTlb: boolean;
}

/** A domain's hardware-assisted paging settings. */
export interface HapSpec {
  /**
   * Back the domain with 2 MiB blocks of host memory mapped by 2 MiB EPT leaves where it can
   * (Xen's superpages): a block is allocated whole at its first touch.
   */
  largePages: boolean;
}

/** Per-event cycle costs; every field overrides a default (see metrics/cost.ts for sources). */
export type CostOverrides = Partial<Record<CostEvent, number>>;

/** Events that carry a cycle cost. */
export type CostEvent =
  | "access"
  | "tlb_l1_hit"
  | "tlb_l2_hit"
  | "walk_ref"
  | "guest_page_fault"
  | "page_zero"
  | "page_copy"
  | "cr3_write"
  | "invlpg"
  | "tlb_flush"
  | "vmexit"
  | "shadow_fault"
  | "emulate"
  | "p2m_populate"
  | "shadow_alloc"
  | "page_read"
  | "cow_break"
  | "sharing_scan_page"
  | "sharing_merge"
  | "balloon_inflate_page"
  | "balloon_deflate_page"
  | "host_swap_out"
  | "host_swap_in"
  | "pv_page_update"
  | "pv_validate_page"
  | "ptwr_emulation";

export interface RunSpec {
  /** Stop after this many user accesses, split evenly between the domains. */
  accesses: number;
  /** Simulated cycles between two samples of the time series. */
  sampleEvery: number;
  /**
   * User accesses run before measuring: counters and cycles start from zero after them, so that
   * a steady state can be measured apart from the first touches of a working set.
   */
  warmup: number;
}

/** Host swapping, the last resort of overcommit (see README). */
export interface HostSwapSpec {
  enabled: boolean;
  /** Free host memory (bytes) below which the pager swaps out, and up to which it frees. */
  lowWater: number;
  highWater: number;
  /**
   * Cycles of its own a domain with a balloon driver may stay above its target before the host
   * swaps (its own, so that other domains' turns do not eat its chance to balloon).
   */
  grace: number;
}

/** Who sets the balloon targets: the scenario's schedule, or oVirt MOM's rules. */
export type BalloonPolicySpec =
  | { type: "fixed" }
  | {
      type: "auto";
      /** Host cycles between two runs of the rules. */
      interval: number;
      pressureThreshold: number;
      pressureCritical: number;
      minGuestFree: number;
      maxChange: number;
      minChange: number;
    };

/** Content-based page sharing by a scanner in the VMM (see README). */
export interface SharingSpec {
  enabled: boolean;
  /** ksm: ordered scans with stable and unstable tables; esx: random scans with hint frames. */
  algorithm: "ksm" | "esx";
  /** Pages the scanner visits per wake-up (KSM's pages_to_scan). */
  pagesToScan: number;
  /** Host cycles between two wake-ups (KSM's sleep_millisecs). */
  sleep: number;
  /** Merge zero pages at once into one zero frame (KSM's use_zero_pages). */
  useZeroPages: boolean;
}

export interface HostSpec {
  /** Host memory in bytes for the virtualized domains; 0 means enough for all of them. */
  memory: number;
  swap: HostSwapSpec;
  balloonPolicy: BalloonPolicySpec;
  sharing: SharingSpec;
}

export interface Scenario {
  name: string;
  description: string;
  seed: number;
  hardware: HardwareSpec;
  host: HostSpec;
  costs: CostOverrides;
  run: RunSpec;
  domains: DomainSpec[];
}

/** One domain's results. Counter names follow Xen perf counters and KVM stats (see README). */
export interface DomainReport {
  name: string;
  mode: PagingMode;
  /** Why the VMM crashed the domain, when it did (the run went on without it). */
  crashed?: string;
  /** Virtualized domains: how its memory may be taken back (which policies ran). */
  overcommit?: {
    balloon_driver: boolean;
    /** What touching a ballooned page did: "populate" or "mmio". */
    on_touch: BalloonTouchPolicy;
    /** Who set the targets: "fixed" or "auto". */
    target_policy: BalloonPolicySpec["type"];
    host_swap: boolean;
  };
  counters: Record<string, number>;
  cycles: { total: number; by_event: Record<string, number> };
  processes: ProcessReport[];
}

/** The processes of one ProcessSpec, added up (a build starts thousands of short children). */
export interface ProcessReport {
  name: string;
  kind: ProcessKind;
  /** Processes started for this spec (instances, plus every forked child). */
  started: number;
  /** Still running at the end of the run. */
  alive: number;
  /** User accesses made. */
  accesses: number;
  guest_page_faults: number;
  /** Killed by a segmentation fault or by the guest's OOM killer. */
  segv: number;
  oom_killed: number;
  /** Digest of every value read, in order per process: equal across paging modes. */
  read_hash: number;
}

export interface HostReport {
  frames_total: number;
  frames_used: number;
  frames_used_peak: number;
  counters: Record<string, number>;
}

export interface Sample {
  /** Simulated cycles since the start. */
  time: number;
  domains: Record<string, Record<string, number>>;
  /** The virtualized host's frames (absent when every domain is native). */
  host?: {
    frames_free: number;
    frames_used: number;
    swapped_out: number;
    pages_shared: number;
    pages_sharing: number;
    /** The sharing scanner's cycles so far. */
    sharing_cycles: number;
  };
}

/** The object `memvisor run --json` prints. */
export interface Report {
  memvisor: string;
  scenario: string;
  seed: number;
  domains: DomainReport[];
  host: HostReport;
  checks: { enabled: boolean; violations: number; first?: string };
  series: Sample[];
}
