/**
 * The public types of memvisor: the report a run produces, and (re-exported from config/, the
 * layer every other may import) the scenario a user writes. Sizes in scenarios are bytes once
 * parsed; the YAML/JSON form also accepts strings like "512MiB".
 */

import type {
  BalloonPolicySpec,
  BalloonTouchPolicy,
  PagingMode,
  ProcessKind,
} from "../config/scenario.js";

export * from "../config/scenario.js";

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
