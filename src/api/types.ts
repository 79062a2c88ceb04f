/**
 * The public types of memvisor: the report a run produces, and (re-exported from config/, the
 * layer every other may import) the scenario a user writes. Sizes in scenarios are bytes once
 * parsed; the YAML/JSON form also accepts strings like "512MiB".
 */

import type { CpuName } from "../config/cpu.js";
import type {
  BalloonPolicySpec,
  BalloonTouchPolicy,
  CostEvent,
  PagingMode,
  ProcessKind,
} from "../config/scenario.js";
import type { DomainCounterName, DomainCounters } from "../metrics/counters.js";
import type { ScenarioFileInput } from "../workload/scenario/to-file.js";

export * from "../config/scenario.js";
export type {
  CounterName,
  DomainCounterName,
  DomainCounters,
  ReportCounterName,
  WalkRefsCounterName,
} from "../metrics/counters.js";

/** One domain's results. Counter names follow Xen perf counters and KVM stats (see README). */
export interface DomainReport {
  name: string;
  mode: PagingMode;
  /** Why the VMM crashed the domain ("at boot: ..." before its processes started), when it did. */
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
  counters: DomainCounters;
  /** Simulated cycles, in all, as seconds at the CPU profile's clock, and by event. */
  cycles: { total: number; seconds: number; by_event: Partial<Record<CostEvent, number>> };
  /**
   * The field's rates over the domain's instructions (user work between accesses): cycles per
   * instruction (every cost included), and per thousand instructions page faults, TLB misses
   * (MPKI), walks and VM exits.
   */
  rates: {
    cpi: number;
    page_faults_pki: number;
    tlb_mpki: number;
    walks_pki: number;
    vmexits_pki: number;
  };
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

/**
 * The host's counters in a report: the run's totals, and the virtualized host's frames, balloon
 * policy, host swapping and page sharing.
 */
export const HOST_COUNTER_NAMES = [
  "cycles",
  "user_accesses",
  "frames_free",
  "balloon_policy_runs",
  "pages_shared",
  "pages_sharing",
  "memory_saved_bytes",
  "pages_unshared",
  "sharing_volatile",
  "full_scans",
  "sharing_pages_scanned",
  "sharing_merges",
  "sharing_cycles",
  "zero_pages_sharing",
  "host_swapped_out",
] as const;

export type HostCounterName = (typeof HOST_COUNTER_NAMES)[number];

/** The host's counters: the run's cycles and user accesses always, the others where they apply. */
export type HostCounters = Record<"cycles" | "user_accesses", number> &
  Partial<Record<HostCounterName, number>>;

export interface HostReport {
  frames_total: number;
  frames_used: number;
  frames_used_peak: number;
  counters: HostCounters;
}

/** Counters kept in the time series (besides cycles). */
export const SERIES_COUNTERS = [
  "user_accesses",
  "tlb_misses",
  "walk_refs",
  "guest_page_faults",
  "context_switches",
  "forks",
  "guest_frames_used",
  "pt_pages",
  "host_frames",
  "balloon_target_pages",
  "balloon_pages",
  "host_swapped_out",
  "host_swap_ins",
  "host_swap_outs",
  "reservation_pages",
  "balloon_inflated_pages",
  "balloon_deflated_pages",
  "balloon_backoffs",
  "guest_oom",
] as const satisfies readonly DomainCounterName[];

/** One domain's row of the time series: its cycles and the series counters. */
export type SampleRow = Record<(typeof SERIES_COUNTERS)[number] | "cycles", number>;

export interface Sample {
  /** Simulated cycles since the start. */
  time: number;
  /** By domain name. */
  domains: Record<string, SampleRow>;
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

/**
 * Why one domain stopped before making its share of the run's accesses: "crashed" (the VMM
 * crashed it), "exited" (every process exited or was killed) or "blocked" (processes are left
 * but none can run).
 */
export interface EndingReason {
  domain: string;
  cause: "crashed" | "exited" | "blocked";
  /** In words: the crash's reason, or what became of each of its processes. */
  detail: string;
}

/**
 * How the run ended: "complete" (every access made), "early" (no domain could go on before the
 * accesses were made: `reasons` says why, domain by domain) or "partial" (its caller took the
 * report before the end, as Ctrl-C does).
 */
export interface RunEnding {
  status: "complete" | "early" | "partial";
  /** User accesses the run was to make (host.counters.user_accesses has those made). */
  planned_accesses: number;
  /** Whether it ended during the warm-up, whose accesses are then the ones counted. */
  during_warmup: boolean;
  /** The scenario says the run may end early (run.may_end_early): then it is no failure. */
  may_end_early: boolean;
  reasons: EndingReason[];
}

/** The object `memvisor run --json` prints. */
export interface Report {
  memvisor: string;
  scenario: string;
  seed: number;
  /** The CPU profile that priced the run (config/cpu.ts) and its clock. */
  cpu: { profile: CpuName; model: string; hz: number };
  /** The host's simulated time: its cycles (host.counters.cycles) at the profile's clock. */
  seconds: number;
  domains: DomainReport[];
  host: HostReport;
  checks: { enabled: boolean; violations: number; first?: string };
  /** How the run ended, and why when it ended before its accesses were made. */
  ending: RunEnding;
  /**
   * What the run's `mode` option (--mode) dropped from the scenario because that mode cannot
   * apply it (native: ballooning, the host's memory, swapping, sharing; pv: swapping, sharing),
   * in words; empty when it dropped nothing.
   */
  dropped_settings: string[];
  /** The cycles each priced event cost in this run: the CPU profile's, with the scenario's overrides. */
  cost_model: Record<CostEvent, number>;
  /**
   * The scenario as it ran, in its file form with every setting written out (the run's seed,
   * length and --mode applied): `memvisor run --from` parses it and runs it again.
   */
  resolved_scenario: ScenarioFileInput;
  series: Sample[];
}
