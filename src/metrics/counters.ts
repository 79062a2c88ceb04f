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
  // VMM
  "vmexits",
  "vmexits_pf",
  "vmexits_cr3",
  "vmexits_invlpg",
  "vmexits_ept_violation",
  "vmexits_hypercall",
  "p2m_populate",
  "domain_crashes",
  "shadow_fault",
  "shadow_fault_fixed",
  "shadow_fault_bail_real_fault",
  "shadow_fault_emulate",
  "shadow_emulate_write",
  "shadow_validate_gl1e_calls",
  "shadow_validate_gl2e_calls",
  "shadow_validate_gl3e_calls",
  "shadow_validate_gl4e_calls",
  "shadow_hash_lookups",
  "shadow_hash_miss",
  "shadow_writeable",
  "shadow_writeable_bf",
  "shadow_early_unshadow",
  "shadow_flood_unshadow",
  "shadow_unshadow",
  "shadow_prealloc_1",
  "shadow_prealloc_2",
  "shadow_alloc",
  "shadow_free",
  "shadow_prefetch",
  "shadow_invlpg",
  "shadow_p2m_removals",
  // balloon and host swapping
  "balloon_inflated_pages",
  "balloon_deflated_pages",
  "balloon_backoffs",
  "balloon_touch_populate",
  "host_swap_outs",
  "host_swap_ins",
  // guest kernel, content
  "page_reads",
  // page sharing
  "cow_breaks",
  "pages_merged",
  // the host's page-sharing scanner (in the host's counters)
  "sharing_pages_scanned",
  "sharing_merges",
  "sharing_pages_volatile",
  // hardware-assisted paging (EPT): the 2D walk, its caches, the VMM's EPT
  "ept_refs",
  "pwc_hits",
  "pwc_misses",
  "ept_pwc_hits",
  "ept_pwc_misses",
  "ntlb_hits",
  "ntlb_misses",
  "ept_fills",
  "ept_invept",
  "ept_splits",
  // PV direct paging (Xen's perf counters where Xen has one)
  "calls_to_mmu_update",
  "num_page_updates",
  "writable_mmu_updates",
  "calls_to_update_va",
  "calls_to_mmuext_op",
  "num_mmuext_ops",
  "ptwr_emulations",
  "pv_page_validations",
  "pv_validation_failures",
  "pv_hypercall_errors",
  "need_flush_tlb_flush",
  // the data caches (hardware.data_cache): where each data access and hardware walk reference
  // found its line
  "data_from_l1d",
  "data_from_l2",
  "data_from_llc",
  "data_from_dram",
  "walk_from_l1d",
  "walk_from_l2",
  "walk_from_llc",
  "walk_from_dram",
  // the VMM's own references to guest tables (its software walks under shadow paging), by level
  "vmm_from_l1d",
  "vmm_from_l2",
  "vmm_from_llc",
  "vmm_from_dram",
  // the work between memory accesses: instructions, and their cycles at the process's CPI
  "instructions",
  "core_cycles",
  // the guest's page cache (image pages shared by the processes that map them)
  "page_cache_hits",
  "page_cache_misses",
  "page_cache_evictions",
  "fault_around_pages",
  // out-of-sync L1 shadows (Xen's perf counters: xen/arch/x86/include/asm/perfc_defn.h)
  "shadow_unsync",
  "shadow_unsync_evict",
  "shadow_resync",
  "shadow_oos_fixup_add",
  "shadow_oos_fixup_evict",
] as const;

export type CounterName = (typeof COUNTER_NAMES)[number];

/** The reason R of each counter named vmexits_R. */
type ExitReasonOf<C> = C extends `vmexits_${infer R}` ? R : never;

/** VM exits by reason: each has a counter vmexits_<reason>. */
export const VMEXIT_REASONS = [
  "pf",
  "cr3",
  "invlpg",
  "ept_violation",
  "hypercall",
] as const satisfies readonly ExitReasonOf<CounterName>[];

/**
 * Counters every domain's report adds to the simulator's, computed when the report is made: its
 * user accesses, its memory, its page tables and the pages in its page cache.
 */
export const GUEST_REPORT_COUNTER_NAMES = [
  "user_accesses",
  "guest_frames",
  "guest_frames_used",
  "pt_pages",
  "page_cache_pages",
] as const;

/**
 * Counters a virtualized domain's report adds: the VMM's memory for it (the P2M, the balloon,
 * the host's frames), and what its paging mode adds (EPT pages, shadow pages, PV tables).
 */
export const VMM_REPORT_COUNTER_NAMES = [
  "p2m_entries",
  "p2m_pages",
  "host_frames",
  "reservation_pages",
  "balloon_target_pages",
  "balloon_pages",
  "host_swapped_out",
  "ept_pages",
  "pv_pt_pages",
  "m2p_pages",
  "shadow_pool_pages",
  "shadow_pages",
  "shadow_pages_peak",
  "shadow_bytes_peak",
  "shadow_overhead_pct",
] as const;

export type VmmReportCounterName = (typeof VMM_REPORT_COUNTER_NAMES)[number];
export type ReportCounterName = (typeof GUEST_REPORT_COUNTER_NAMES)[number] | VmmReportCounterName;

/** What the VMM and its paging modes fill in of a virtualized domain's report. */
export type VmmReportCounters = Partial<Record<VmmReportCounterName, number>>;

/** The walk histogram in a report: walks that made N memory references. */
export type WalkRefsCounterName = `walk_refs_${number}`;

/** Every name a domain's report counters may have: a misspelt one is a compile error. */
export type DomainCounterName = CounterName | ReportCounterName | WalkRefsCounterName;

/** The simulator's counters by name, with the walk histogram's (walks of N references). */
export type SimulatorCounters = Record<CounterName, number> &
  Partial<Record<WalkRefsCounterName, number>>;

/**
 * A domain's counters by name: every simulator counter and every guest report counter; the
 * VMM's only for a virtualized domain, a walk length only when some walk had it.
 */
export type DomainCounters = SimulatorCounters &
  Record<(typeof GUEST_REPORT_COUNTER_NAMES)[number], number> &
  VmmReportCounters;

// Indices into COUNTER_NAMES, as literals so that hot paths can copy them (see hw/cpu.ts);
// a test checks each against its name.
export const C_ACCESSES = 0;
export const C_KERNEL_ACCESSES = 1;
export const C_READS = 2;
export const C_WRITES = 3;
export const C_FETCHES = 4;
export const C_TLB_L1_HITS = 5;
export const C_TLB_L2_HITS = 6;
export const C_TLB_MISSES = 7;
export const C_WALKS = 8;
export const C_WALK_REFS = 9;
export const C_CR3_WRITES = 10;
export const C_INVLPG = 11;
export const C_TLB_FLUSHES = 12;
export const C_PAGE_ZERO = 13;
export const C_PAGE_COPY = 14;
export const C_GUEST_PAGE_FAULTS = 15;
export const C_GUEST_DEMAND_FAULTS = 16;
export const C_GUEST_COW_FAULTS = 17;
export const C_GUEST_SPURIOUS_FAULTS = 18;
export const C_GUEST_SEGV = 19;
export const C_GUEST_OOM = 20;
export const C_CONTEXT_SWITCHES = 21;
export const C_FORKS = 22;
export const C_EXECS = 23;
export const C_EXITS = 24;
export const C_MMAPS = 25;
export const C_MUNMAPS = 26;
export const C_MPROTECTS = 27;
export const C_PT_PAGES_ALLOC = 28;
export const C_PT_PAGES_FREE = 29;
export const C_VMEXITS = 30;
export const C_VMEXITS_PF = 31;
export const C_VMEXITS_CR3 = 32;
export const C_VMEXITS_INVLPG = 33;
export const C_VMEXITS_EPT_VIOLATION = 34;
export const C_VMEXITS_HYPERCALL = 35;
export const C_P2M_POPULATE = 36;
export const C_DOMAIN_CRASHES = 37;
export const C_SHADOW_FAULT = 38;
export const C_SHADOW_FAULT_FIXED = 39;
export const C_SHADOW_FAULT_BAIL_REAL_FAULT = 40;
export const C_SHADOW_FAULT_EMULATE = 41;
export const C_SHADOW_EMULATE_WRITE = 42;
export const C_SHADOW_VALIDATE_GL1E_CALLS = 43;
export const C_SHADOW_VALIDATE_GL2E_CALLS = 44;
export const C_SHADOW_VALIDATE_GL3E_CALLS = 45;
export const C_SHADOW_VALIDATE_GL4E_CALLS = 46;
export const C_SHADOW_HASH_LOOKUPS = 47;
export const C_SHADOW_HASH_MISS = 48;
export const C_SHADOW_WRITEABLE = 49;
export const C_SHADOW_WRITEABLE_BF = 50;
export const C_SHADOW_EARLY_UNSHADOW = 51;
export const C_SHADOW_FLOOD_UNSHADOW = 52;
export const C_SHADOW_UNSHADOW = 53;
export const C_SHADOW_PREALLOC_1 = 54;
export const C_SHADOW_PREALLOC_2 = 55;
export const C_SHADOW_ALLOC = 56;
export const C_SHADOW_FREE = 57;
export const C_SHADOW_PREFETCH = 58;
export const C_SHADOW_INVLPG = 59;
export const C_SHADOW_P2M_REMOVALS = 60;
export const C_BALLOON_INFLATED_PAGES = 61;
export const C_BALLOON_DEFLATED_PAGES = 62;
export const C_BALLOON_BACKOFFS = 63;
export const C_BALLOON_TOUCH_POPULATE = 64;
export const C_HOST_SWAP_OUTS = 65;
export const C_HOST_SWAP_INS = 66;
export const C_PAGE_READS = 67;
export const C_COW_BREAKS = 68;
export const C_PAGES_MERGED = 69;
export const C_SHARING_PAGES_SCANNED = 70;
export const C_SHARING_MERGES = 71;
export const C_SHARING_PAGES_VOLATILE = 72;
export const C_EPT_REFS = 73;
export const C_PWC_HITS = 74;
export const C_PWC_MISSES = 75;
export const C_EPT_PWC_HITS = 76;
export const C_EPT_PWC_MISSES = 77;
export const C_NTLB_HITS = 78;
export const C_NTLB_MISSES = 79;
export const C_EPT_FILLS = 80;
export const C_EPT_INVEPT = 81;
export const C_EPT_SPLITS = 82;
export const C_CALLS_TO_MMU_UPDATE = 83;
export const C_NUM_PAGE_UPDATES = 84;
export const C_WRITABLE_MMU_UPDATES = 85;
export const C_CALLS_TO_UPDATE_VA = 86;
export const C_CALLS_TO_MMUEXT_OP = 87;
export const C_NUM_MMUEXT_OPS = 88;
export const C_PTWR_EMULATIONS = 89;
export const C_PV_PAGE_VALIDATIONS = 90;
export const C_PV_VALIDATION_FAILURES = 91;
export const C_PV_HYPERCALL_ERRORS = 92;
export const C_NEED_FLUSH_TLB_FLUSH = 93;
// Four counters by cache level each, in hw/cache.ts's order (CACHE_L1 .. CACHE_DRAM).
export const C_DATA_FROM_L1D = 94;
export const C_DATA_FROM_L2 = 95;
export const C_DATA_FROM_LLC = 96;
export const C_DATA_FROM_DRAM = 97;
export const C_WALK_FROM_L1D = 98;
export const C_WALK_FROM_L2 = 99;
export const C_WALK_FROM_LLC = 100;
export const C_WALK_FROM_DRAM = 101;
export const C_VMM_FROM_L1D = 102;
export const C_VMM_FROM_L2 = 103;
export const C_VMM_FROM_LLC = 104;
export const C_VMM_FROM_DRAM = 105;
export const C_INSTRUCTIONS = 106;
export const C_CORE_CYCLES = 107;
export const C_PAGE_CACHE_HITS = 108;
export const C_PAGE_CACHE_MISSES = 109;
export const C_PAGE_CACHE_EVICTIONS = 110;
export const C_FAULT_AROUND_PAGES = 111;
export const C_SHADOW_UNSYNC = 112;
export const C_SHADOW_UNSYNC_EVICT = 113;
export const C_SHADOW_RESYNC = 114;
export const C_SHADOW_OOS_FIXUP_ADD = 115;
export const C_SHADOW_OOS_FIXUP_EVICT = 116;

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
): SimulatorCounters {
  const out = {} as SimulatorCounters;
  for (let i = 0; i < COUNTER_COUNT; i++) out[COUNTER_NAMES[i]] = counters[i];
  if (walkHist) {
    for (let n = 1; n < walkHist.length; n++) {
      if (walkHist[n] > 0) out[`walk_refs_${n}`] = walkHist[n];
    }
  }
  return out;
}
