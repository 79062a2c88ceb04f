/**
 * What memvisor can simulate, and what it reads: the bounds the scenario schema, the library's
 * options and the file readers enforce, so that whatever is accepted runs. The figures were
 * measured on the 2-core, 23 GiB development VM (Node 20); README's "Limits" lists them.
 */

import { formatSizeApprox, GiB, KiB, MiB, TiB } from "./sizes.js";

/**
 * The smallest guest: the kernel keeps 256 frames and needs 512 more to boot (guest/kernel.ts),
 * and a guest's memory is a multiple of 2 MiB.
 */
export const GUEST_MEMORY_MIN = 4 * MiB;
/** The largest guest: the kernel's direct map hangs from one L3 table (512 entries of 1 GiB). */
export const GUEST_MEMORY_MAX = 512 * GiB;
/** The largest host (1 TiB took 6.9 GB and 15 s to set up; 4 TiB did not fit in 23 GB). */
export const HOST_MEMORY_MAX = TiB;
/** Domains in a scenario (Xen's own limit is far higher; each domain costs its host's arrays). */
export const MAX_DOMAINS = 1000;
/** Entries in a domain's list of processes (each may have up to 64 instances). */
export const MAX_PROCESSES = 256;
/** Entries in a balloon's schedule of targets. */
export const MAX_SCHEDULE = 10_000;
/** The largest cost of one event, in cycles: 1/3 s at 3 GHz, above any source's figure. */
export const COST_MAX = 1_000_000_000;
/** User accesses in a run (warm-up included): counters and cycle totals stay exact below 2^53. */
export const MAX_ACCESSES = 1_000_000_000_000;

/** Memory the simulator may take for one run (its estimate; see simulatorBytes). */
export const SIMULATOR_MEMORY_BUDGET = 8 * GiB;

/** Bytes of a scenario file (the largest built-in is 3 KiB). */
export const SCENARIO_FILE_MAX = 4 * MiB;
/** Lines of a scenario file may be this long (a long description fits on one line). */
export const SCENARIO_LINE_MAX = 64 * KiB;
/** Nesting of lists and mappings in a scenario file (a scenario needs 6). */
export const SCENARIO_DEPTH_MAX = 64;
/** Problems listed for one scenario; the rest are counted. */
export const PROBLEMS_SHOWN = 20;

/** Records of a trace a run holds in memory (8 bytes each: 1 GiB). */
export const MAX_TRACE_RECORDS = 2 ** 27;
/** A lackey line longer than this is not a trace line (the longest real one is 25 bytes). */
export const LACKEY_LINE_MAX = 256;

/** What the estimate needs of a domain. */
export interface DomainSize {
  memory: number;
  mode: string;
}

/**
 * Bytes of its own memory the simulator takes for these domains on a host of `hostMemory` bytes
 * (0: the default, enough for all), per 4 KiB frame, counting every frame as touched (arrays for
 * memory never touched cost nothing: a zeroed typed array's pages are mapped at first write).
 * A native domain has a machine of its own (10 bytes a frame); a virtualized host 18 bytes a
 * frame; each virtualized domain its P2M (6 bytes a guest frame), a PV domain its 4 KiB direct
 * map's tables and frame types (28 in all), a shadow-paged domain its reverse map (32 bytes a
 * guest frame it maps, mapped twice: by the kernel's direct map and a process). Every domain
 * also costs its vCPU, kernel and processes (DOMAIN_BYTES).
 */
export function simulatorBytes(domains: readonly DomainSize[], hostMemory: number): number {
  let bytes = 0;
  let virtualFrames = 0;
  for (const d of domains) {
    const frames = d.memory / 4096;
    bytes += DOMAIN_BYTES;
    if (d.mode === "native") {
      bytes += 10 * frames;
      continue;
    }
    virtualFrames += frames;
    bytes += (d.mode === "pv" ? 28 : d.mode === "shadow" ? 6 + 32 : 6) * frames;
  }
  if (virtualFrames === 0) return bytes;
  const hostFrames = hostMemory > 0 ? hostMemory / 4096 : virtualFrames * (1 + 1 / 512) + 4096;
  return bytes + 18 * hostFrames;
}

/**
 * A domain's own cost beside its memory's: vCPU, TLBs, kernel, processes, report. 1,000 shadow
 * domains of 64 MiB took 692 MiB through their setup and 1,000 accesses (0.7 MiB each with their
 * frames' share; 1,370 MB before the host's per-frame arrays started as zeroes; much of it is the
 * vCPU's TLB, whose per-tag arrays take 655 KB): 1 MiB leaves room.
 */
export const DOMAIN_BYTES = MiB;

/** Why these domains on this host are more than the simulator takes on, or "". */
export function simulatorMemoryProblem(domains: readonly DomainSize[], hostMemory: number): string {
  const bytes = simulatorBytes(domains, hostMemory);
  // NaN: a size the schema has already refused.
  if (!(bytes > SIMULATOR_MEMORY_BUDGET)) return "";
  return (
    `simulating these domains on this host would take about ${formatSizeApprox(bytes)} of ` +
    `memory, more than memvisor's ${formatSizeApprox(SIMULATOR_MEMORY_BUDGET)}: give the ` +
    "domains or the host less memory"
  );
}

/** The limits above, for the library's users (README's "Limits" lists them). */
export const LIMITS = {
  guestMemoryMin: GUEST_MEMORY_MIN,
  guestMemoryMax: GUEST_MEMORY_MAX,
  hostMemoryMax: HOST_MEMORY_MAX,
  domains: MAX_DOMAINS,
  processes: MAX_PROCESSES,
  balloonSchedule: MAX_SCHEDULE,
  cost: COST_MAX,
  accesses: MAX_ACCESSES,
  simulatorMemory: SIMULATOR_MEMORY_BUDGET,
  scenarioFileBytes: SCENARIO_FILE_MAX,
  scenarioLine: SCENARIO_LINE_MAX,
  scenarioDepth: SCENARIO_DEPTH_MAX,
  traceRecords: MAX_TRACE_RECORDS,
  lackeyLine: LACKEY_LINE_MAX,
} as const;
