/**
 * Counters: one Float64Array per domain, indexed by the constants below, so that the hot path
 * increments an array slot. Names follow Xen's perf counters and KVM's stats (see README).
 */

export const COUNTER_NAMES = [
  // hardware
  "accesses",
  "kernel_accesses",
  "reads",
  "writes",
  "fetches",
  "tlb_l1_hits",
  "tlb_l2_hits",
  "tlb_misses",
  "walks",
  "walk_refs",
  "cr3_writes",
  "invlpg",
  "tlb_flushes",
  "page_zero",
  "page_copy",
  // guest kernel
  "guest_page_faults",
  "guest_demand_faults",
  "guest_cow_faults",
  "guest_spurious_faults",
  "guest_segv",
  "guest_oom",
  "context_switches",
  "forks",
  "execs",
  "exits",
  "mmaps",
  "munmaps",
  "mprotects",
  "pt_pages_alloc",
  "pt_pages_free",
] as const;

export type CounterName = (typeof COUNTER_NAMES)[number];

const id = (name: CounterName): number => COUNTER_NAMES.indexOf(name);

export const C_ACCESSES = id("accesses");
export const C_KERNEL_ACCESSES = id("kernel_accesses");
export const C_READS = id("reads");
export const C_WRITES = id("writes");
export const C_FETCHES = id("fetches");
export const C_TLB_L1_HITS = id("tlb_l1_hits");
export const C_TLB_L2_HITS = id("tlb_l2_hits");
export const C_TLB_MISSES = id("tlb_misses");
export const C_WALKS = id("walks");
export const C_WALK_REFS = id("walk_refs");
export const C_CR3_WRITES = id("cr3_writes");
export const C_INVLPG = id("invlpg");
export const C_TLB_FLUSHES = id("tlb_flushes");
export const C_PAGE_ZERO = id("page_zero");
export const C_PAGE_COPY = id("page_copy");
export const C_GUEST_PAGE_FAULTS = id("guest_page_faults");
export const C_GUEST_DEMAND_FAULTS = id("guest_demand_faults");
export const C_GUEST_COW_FAULTS = id("guest_cow_faults");
export const C_GUEST_SPURIOUS_FAULTS = id("guest_spurious_faults");
export const C_GUEST_SEGV = id("guest_segv");
export const C_GUEST_OOM = id("guest_oom");
export const C_CONTEXT_SWITCHES = id("context_switches");
export const C_FORKS = id("forks");
export const C_EXECS = id("execs");
export const C_EXITS = id("exits");
export const C_MMAPS = id("mmaps");
export const C_MUNMAPS = id("munmaps");
export const C_MPROTECTS = id("mprotects");
export const C_PT_PAGES_ALLOC = id("pt_pages_alloc");
export const C_PT_PAGES_FREE = id("pt_pages_free");

export const COUNTER_COUNT = COUNTER_NAMES.length;

/** Memory references a walk can make: 4 for native and shadow, up to 24 for a 2D walk. */
export const WALK_HIST_SIZE = 25;

export function newCounters(): Float64Array {
  return new Float64Array(COUNTER_COUNT);
}

/** Counters as a name -> value record, including the walk histogram as walk_refs_<n>. */
export function countersToRecord(
  counters: Float64Array,
  walkHist?: Float64Array,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < COUNTER_COUNT; i++) out[COUNTER_NAMES[i]] = counters[i];
  if (walkHist) {
    for (let n = 1; n < walkHist.length; n++) {
      if (walkHist[n] > 0) out[`walk_refs_${n}`] = walkHist[n];
    }
  }
  return out;
}
