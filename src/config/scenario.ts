/**
 * The scenario a user writes, as the simulator reads it: every layer below the API may import
 * these types (the API re-exports them). Sizes are bytes; the YAML/JSON form also accepts
 * strings like "512MiB" (workload/scenario/ parses it). Each union of names is declared once,
 * from the list that the schema and the CLI offer, so that the two cannot disagree.
 */

import type { TraceRecords } from "./trace.js";

/**
 * How a domain's memory is virtualized: natively (the guest on the bare hardware, no VMM: the
 * reference), by shadow paging, by hardware-assisted paging (EPT) or by Xen PV direct paging.
 */
export const PAGING_MODES = ["native", "shadow", "hap", "pv"] as const;

/** The CPU profiles a scenario can name (hardware.cpu); config/cpu.ts holds their figures. */
export const CPU_NAMES = ["skylake-sp", "nehalem-ep"] as const;
export type CpuName = (typeof CPU_NAMES)[number];
export type PagingMode = (typeof PAGING_MODES)[number];
/** The modes in which a VMM virtualizes the domain's memory (all but native). */
export type VirtualMode = Exclude<PagingMode, "native">;

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

/** The pattern types, in the order messages list them. */
export const PATTERN_TYPES = [
  "sequential",
  "uniform",
  "hotcold",
  "zipf",
  "stride",
] as const satisfies readonly AccessPattern["type"][];

/**
 * What a process does over its life: database (a long-running process with a large working
 * set, touching its heap for ever), build (a make-like parent that forks short children which
 * exec, work briefly and exit), mmap-churn (maps a region, touches part of it, unmaps it, again
 * and again), trace (replays a recorded program's accesses in the address space the trace shows).
 */
export const PROCESS_KINDS = ["database", "build", "mmap-churn", "trace"] as const;
export type ProcessKind = (typeof PROCESS_KINDS)[number];

/** The recorded accesses a trace process replays. */
export interface TraceSpec {
  /** The trace file as the scenario names it (shown in reports and errors). */
  file: string;
  /**
   * The path it was read from (the file as named, resolved against the scenario's folder), once
   * read: what a report's resolved scenario names, so that a rerun reads the same file.
   */
  path?: string;
  /** Start again from the first access when the trace ends (otherwise the process exits). */
  loop: boolean;
  /**
   * The records, once read. loadScenarioFile (memvisor/node) reads them; parseScenario cannot
   * read files and leaves null unless it is given a loadTrace function.
   */
  data: TraceRecords | null;
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
  /**
   * Instructions the process executes per memory access it makes, that access included (a
   * trace process: 0, its instructions are the fetches its trace recorded).
   */
  instructionsPerAccess: number;
  /**
   * Cycles per instruction of its work between accesses, without the data-cache misses and
   * translation costs the simulator adds itself.
   */
  cpi: number;
  /** trace: what it replays (null for every other kind). */
  trace: TraceSpec | null;
}

/**
 * How shadow paging guesses that a guest page table is no longer one (a process exit is
 * invisible to the VMM): Xen's early unshadow, KVM's write flooding, or not at all.
 */
export const UNSHADOW_POLICIES = ["early", "flood", "none"] as const;
export type UnshadowPolicy = (typeof UNSHADOW_POLICIES)[number];

/**
 * How shadow paging finds the writable mappings of a guest page that becomes a page table: a
 * reverse map (KVM's rmap) or a scan of every l1 shadow (Xen's brute-force search).
 */
export const WRITABLE_SEARCHES = ["rmap", "bruteforce"] as const;
export type WritableSearch = (typeof WRITABLE_SEARCHES)[number];

/** Shadow paging settings of a domain (used when it runs in shadow mode). */
export interface ShadowSpec {
  /** Bytes of shadow pool; 0 means Xen's default (1 MiB per vCPU + 8 KiB per MiB of guest). */
  pool: number;
  unshadow: UnshadowPolicy;
  /** Neighbouring guest entries propagated on a fixed fault (0..511). */
  prefetch: number;
  /** How writable mappings of a newly shadowed page table are found. */
  writableSearch: WritableSearch;
  /**
   * Out-of-sync L1 shadows (Xen's SHOPT_OUT_OF_SYNC, on by default since Xen 3.3; xl.cfg's
   * `oos`): a guest L1 the kernel writes is left writable and resynced at its next CR3 write.
   */
  outOfSync: boolean;
}

/**
 * What touching a ballooned-out page does: a new zeroed page (KVM, ESX, Xen populate-on-demand)
 * or, as for plain Xen HVM, an MMIO access that crashes the domain.
 */
export const BALLOON_TOUCH_POLICIES = ["populate", "mmio"] as const;
export type BalloonTouchPolicy = (typeof BALLOON_TOUCH_POLICIES)[number];

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
   * The guest scheduler's time slice, on the guest's own clock (its processes' work in cycles at
   * their base CPI, as QEMU's -icount counts instructions), so that it schedules the same way in
   * every paging mode while the host's cycles measure what each mode costs.
   */
  quantum: SliceRule;
  processes: ProcessSpec[];
}

/**
 * How long a guest process runs before the next: Linux's CFS rule (a 6 ms period shared by the
 * runnable processes, 0.75 ms at least each), EEVDF's fixed base slice (0.75 ms), or a fixed
 * slice in cycles of the guest's clock.
 */
export type SliceRule = { type: "cfs" } | { type: "eevdf" } | { type: "fixed"; cycles: number };

export interface TlbLevelSpec {
  entries: number;
  ways: number;
}

export interface HardwareSpec {
  /**
   * The CPU profile (config/cpu.ts) whose costs price the run, and whose TLBs, walk caches and
   * data caches the hardware has unless the scenario says otherwise; default skylake-sp.
   */
  cpu?: CpuName;
  tlb: { l1: TlbLevelSpec; l2: TlbLevelSpec };
  /** Whether the guest kernel uses PCIDs so that a CR3 write need not flush the TLB. */
  pcid: boolean;
  /** Whether the guest maps 1 GiB pages where it could (direct map); needs hardware support. */
  gigaPages: boolean;
  /** The page walk's caches; default: none (a cold 4-level walk makes 4 references, 24 in 2D). */
  walkCaches?: WalkCacheSpec;
  /**
   * Whether data accesses and page-walk references go through a data-cache hierarchy (counted
   * by the level that held each line); default: not modelled.
   */
  dataCache?: boolean;
}

/** One level of a data cache: its capacity in bytes (ways x sets x 64) and its ways. */
export interface CacheLevelSpec {
  bytes: number;
  ways: number;
}

/** The data-cache hierarchy of one physical CPU. */
export interface CacheGeometry {
  l1: CacheLevelSpec;
  l2: CacheLevelSpec;
  llc: CacheLevelSpec;
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

/** Per-event cycle costs; every field overrides a default (metrics/cost.ts gives the sources). */
export type CostOverrides = Partial<Record<CostEvent, number>>;

/**
 * Events that carry a cycle cost, in the order reports list them (metrics/cost.ts gives each
 * its default and its source).
 */
export const COST_EVENTS = [
  "access",
  "tlb_l1_hit",
  "tlb_l2_hit",
  "walk_ref",
  "guest_page_fault",
  "page_zero",
  "page_copy",
  "cr3_write",
  "invlpg",
  "tlb_flush",
  "vmexit",
  "shadow_fault",
  "emulate",
  "shadow_unsync",
  "shadow_resync",
  "p2m_populate",
  "shadow_alloc",
  "page_read",
  "cow_break",
  "sharing_scan_page",
  "sharing_merge",
  "balloon_inflate_page",
  "balloon_deflate_page",
  "host_swap_out",
  "host_swap_in",
  "pv_page_update",
  "pv_validate_page",
  "ptwr_emulation",
  "core_cycle",
  "walk_l1d",
  "walk_l2",
  "walk_llc",
  "walk_dram",
  "data_l2",
  "data_llc",
  "data_dram",
  "vmm_l1d",
  "vmm_l2",
  "vmm_llc",
  "vmm_dram",
  "invept",
] as const;
export type CostEvent = (typeof COST_EVENTS)[number];

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
  /**
   * The run may end before its accesses are made (every process gone, a domain crashed) and
   * that is what the scenario shows: the report still says why, but it is no failure (default
   * false: the CLI exits with 5).
   */
  mayEndEarly?: boolean;
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
export const BALLOON_POLICIES = [
  "fixed",
  "auto",
] as const satisfies readonly BalloonPolicySpec["type"][];

/** Who sets the balloon targets: the scenario's schedule, or oVirt MOM's rules. */
export type BalloonPolicySpec = { type: "fixed" } | ({ type: "auto" } & AutoPolicySettings);

/** The automatic (oVirt MOM) policy's settings; fractions are of host or guest memory. */
export interface AutoPolicySettings {
  /** Host cycles between two runs of the rules. */
  interval: number;
  /** Free host memory below which guests are shrunk. */
  pressureThreshold: number;
  /** Free host memory below which the free margin left to a guest goes negative. */
  pressureCritical: number;
  /** The free share of its memory a guest keeps when it grows back. */
  minGuestFree: number;
  /** The largest change of a target a step, as a share of the domain's memory. */
  maxChange: number;
  /** A change smaller than this share is not made. */
  minChange: number;
}

/**
 * The page-sharing scanner: ksm (Linux KSM's ordered scans with stable and unstable tables) or
 * esx (VMware ESX's random scans with hint frames).
 */
export const SHARING_ALGORITHMS = ["ksm", "esx"] as const;
export type SharingAlgorithm = (typeof SHARING_ALGORITHMS)[number];

/** Content-based page sharing by a scanner in the VMM (see README). */
export interface SharingSpec {
  enabled: boolean;
  algorithm: SharingAlgorithm;
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
  /**
   * The page-contents model of data accesses (default true): false leaves data in memory
   * unmodelled (reads return 0, writes are not kept), so that an access costs only its
   * translation; page sharing needs it (see HostMemory.contents).
   */
  contents?: boolean;
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

// Compile-time checks that the lists whose union is declared elsewhere name every member.
type Missing<U, L extends readonly unknown[]> = Exclude<U, L[number]>;
const allPatterns: [Missing<AccessPattern["type"], typeof PATTERN_TYPES>] extends [never]
  ? true
  : never = true;
const allPolicies: [Missing<BalloonPolicySpec["type"], typeof BALLOON_POLICIES>] extends [never]
  ? true
  : never = true;
void [allPatterns, allPolicies];
