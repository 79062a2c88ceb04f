/**
 * What a scenario gets for every setting it leaves out. The loader fills these in, so that a
 * Scenario always holds every value; the figures' sources are beside them.
 */

import type {
  AutoPolicySettings,
  BalloonSpec,
  CacheGeometry,
  PagingMode,
  ProcessKind,
} from "./scenario.js";
import { MiB, TiB } from "./sizes.js";

/** Defaults for every optional field of the file form. */
export const SCENARIO_DEFAULTS = {
  description: "",
  seed: 1,
  tlbL1: { entries: 64, ways: 4 },
  tlbL2: { entries: 1536, ways: 12 },
  pcid: false,
  gigaPages: false,
  accesses: 1_000_000,
  sampleEvery: 1_000_000,
  mode: "native" as PagingMode,
  /** Linux's CFS slice rule (guest/scheduler.ts). */
  quantum: "cfs",
  instances: 1,
  code: MiB,
  writes: 0.25,
  fetches: 0.1,
  childAccesses: 20_000,
  jobs: 2,
  churnAccesses: 5_000,
  hugePages: false,
  /** Balloon retry delays in domain cycles: Xen's 1 s doubling to 32 s, scaled to short runs. */
  balloonRetryDelay: 1_000_000,
  balloonMaxRetryDelay: 32_000_000,
  /** Cycles of its own a ballooning domain may stay above its target before the host swaps. */
  swapGrace: 20_000_000,
  /** Host cycles between two runs of the automatic balloon policy. */
  policyInterval: 5_000_000,
  osImage: "linux",
  /**
   * Shadow entries propagated after a fixed fault: Xen's sh_prefetch goes up to
   * PREFETCH_DISTANCE (32) entries, the faulting one and 31 after it
   * (xen/arch/x86/mm/shadow/multi.c).
   */
  shadowPrefetch: 31,
  /** KSM's pages_to_scan default; its 20 ms sleep scaled to the runs' length in cycles. */
  pagesToScan: 100,
  sharingSleep: 200_000,
} as const;

/**
 * The work between memory accesses, by process kind: instructions per access (the access
 * included) and the CPI of that work once the data-cache misses and translation stalls the
 * simulator counts itself are taken out (docs/TIMING.md, "Work between accesses"):
 * - 2 instructions per access: about half of SPEC CPU2017's instructions access memory
 *   (Singh and Awasthi, ICPE 2019);
 * - database: OLTP engines run at about one instruction per cycle, more than half of it memory
 *   stalls (Sirin et al., SIGMOD 2016): CPI 1.2 measured, 0.6 without the memory stalls;
 * - build: a sampled access. A compiler's references that hit the L1 DTLB cost what its CPI
 *   says; the simulator models the others, one in 95 instructions: gcc (SPEC CPU2017 502.gcc_r)
 *   takes 10.5 L1 DTLB misses per thousand instructions (perf on a Zen 4 Ryzen 7840, M.
 *   Vermeulen's wspy repository, 502.gcc_r/amdtopdown.txt, 2024). A Linux kernel build runs at
 *   0.73 instructions per cycle (perf on the Phoronix build-linux-kernel test, M. Vermeulen):
 *   CPI 1.37, front-end bound more than memory bound; taking out a fifth for memory stalls (an
 *   assumption) leaves 1.1;
 * - mmap-churn and trace: CPI 0.8, an assumption (a program with no published measurement).
 */
export const WORK_DEFAULTS: Readonly<
  Record<ProcessKind, { instructionsPerAccess: number; cpi: number }>
> = {
  database: { instructionsPerAccess: 2, cpi: 0.6 },
  build: { instructionsPerAccess: 95, cpi: 1.1 },
  "mmap-churn": { instructionsPerAccess: 2, cpi: 0.8 },
  trace: { instructionsPerAccess: 0, cpi: 0.8 },
};

/** The balloon settings of a domain that says nothing of its balloon: a driver, no target. */
export function defaultBalloon(memory: number): BalloonSpec {
  return {
    driver: true,
    target: memory,
    floor: 0,
    touch: "populate",
    schedule: [],
    retryDelay: SCENARIO_DEFAULTS.balloonRetryDelay,
    maxRetryDelay: SCENARIO_DEFAULTS.balloonMaxRetryDelay,
  };
}

/**
 * oVirt MOM's balloon rules (its doc/balloon.rules): below 20% free host memory every guest
 * shrinks towards what it uses plus a margin (negative below 5%, critical pressure), by at most
 * 5% of its size a step; a guest keeps 20% free; changes under 0.25% are not made.
 */
export const MOM_DEFAULTS: Omit<AutoPolicySettings, "interval"> = {
  pressureThreshold: 0.2,
  pressureCritical: 0.05,
  minGuestFree: 0.2,
  maxChange: 0.05,
  minChange: 0.0025,
};

/**
 * The data caches of one core of an Intel Xeon Scalable (Skylake-SP) processor: L1d 32 KiB
 * 8-way, L2 1 MiB 16-way, and its 1.375 MiB 11-way slice of the shared last-level cache (Intel
 * 64 and IA-32 Architectures Optimization Reference Manual, the Skylake Server
 * microarchitecture's cache parameters). One core runs the simulation, so it gets one slice.
 */
export const DATA_CACHE_GEOMETRY: CacheGeometry = {
  l1: { bytes: 32 * 1024, ways: 8 },
  l2: { bytes: 1024 * 1024, ways: 16 },
  llc: { bytes: 1408 * 1024, ways: 11 },
};

/** The largest guest a scenario may give a domain. */
export const MAX_DOMAIN_MEMORY = TiB;
