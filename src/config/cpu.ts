/**
 * CPU profiles: one real processor generation each, with the figures the timing model prices
 * events by and the geometry the simulated hardware takes. Every figure names its source (in
 * short; docs/TIMING.md cites each in full) or says it is a modelling assumption and why.
 * Cycles are core cycles at the profile's base clock.
 */

import {
  type CacheGeometry,
  type CostEvent,
  CPU_NAMES,
  type CpuName,
  type TlbLevelSpec,
  type WalkCacheSpec,
} from "./scenario.js";

export { CPU_NAMES, type CpuName };

/** A figure and where it comes from. */
export interface Sourced {
  value: number;
  source: string;
}

export interface CpuProfile {
  name: CpuName;
  /** The part the figures are for. */
  model: string;
  /** Base clock, Hz: simulated cycles become seconds at this rate. */
  hz: Sourced;
  /** The 4 KiB arrays of the L1 DTLB and the second-level TLB (the large-page arrays follow). */
  tlb: { l1: TlbLevelSpec; l2: TlbLevelSpec; source: string };
  caches: CacheGeometry & { source: string };
  /** Load-to-use latency of a line found in each level, and from DRAM (cycles). */
  latency: { l1d: Sourced; l2: Sourced; llc: Sourced; dram: Sourced };
  /** The walk caches the part has (hardware.walk_caches defaults to these). */
  walkCaches: WalkCacheSpec & { source: string };
  /** Per-event costs, in cycles (a scenario's `costs` override any). */
  costs: Record<CostEvent, Sourced>;
}

// Short names of the sources (docs/TIMING.md lists each in full).
const INTEL_OPT = "Intel 64 and IA-32 Architectures Optimization Reference Manual";
const ANANDTECH_SKX =
  "AnandTech, Intel Skylake-SP vs AMD EPYC review (2017), memory latency measured with LMBench on a Xeon Platinum 8176";
const TLBKIT = "vusec/tlbkit (VU Amsterdam), Skylake latency measurement";
const ASSUMED = "a modelling assumption";

/**
 * What costs the same on any profile: the host's and the guest's software work that the
 * processor generation does not set (swap devices, scanners, the VMM's bookkeeping).
 */
const SOFTWARE_COSTS = {
  sharing_scan_page: {
    value: 2000,
    source: `${ASSUMED}: the scanner's checksum of 4 KiB at about 2 bytes a cycle, and a table lookup`,
  },
  sharing_merge: {
    value: 3000,
    source: `${ASSUMED}: a full 4 KiB compare and remapping the page read-only, its old mappings removed`,
  },
  balloon_deflate_page: {
    value: 100,
    source: `${ASSUMED}: per page taken back, a P2M update; its frame comes (and is scrubbed) at first touch`,
  },
  host_swap_out: {
    value: 10000,
    source: `${ASSUMED}: choosing a victim, removing its mappings, queueing a 4 KiB write (the write itself is asynchronous)`,
  },
  host_swap_in: {
    value: 1_000_000,
    source: `${ASSUMED}: a synchronous 4 KiB read from the host's swap device, about half a millisecond (an SSD)`,
  },
  pv_page_update: {
    value: 150,
    source: `${ASSUMED}: one PV page-table update checked by Xen (mod_l1_entry: the frame's owner and type, the write); the hypercall's exit apart`,
  },
  pv_validate_page: {
    value: 2000,
    source: `${ASSUMED}: a whole new page table validated, 512 entries, about as long as zeroing a page plus the references taken`,
  },
} satisfies Partial<Record<CostEvent, Sourced>>;

/** Costs derived from a profile's page-zeroing and exit figures, the same way for every profile. */
function derivedCosts(zero: number, exit: number) {
  return {
    page_copy: { value: 2 * zero, source: `${ASSUMED}: twice a page zeroing (reads and writes)` },
    shadow_alloc: { value: zero, source: "zeroing a 4 KiB shadow page (page_zero)" },
    shadow_unsync: {
      value: 2 * zero,
      source:
        "letting a guest L1 go out of sync: Xen copies it whole into a snapshot page (copy_domain_page in oos_hash_add), priced as a page copy (page_copy); the fault's exit and handler apart",
    },
    shadow_resync: {
      value: 2 * zero,
      source: `${ASSUMED}: a resync reads the shadow L1 (512 entries) and, for each present one, the guest's entry and the snapshot's, re-propagating those that differ (Xen's sh_resync_l1): up to 12 KiB read, priced as a page copy (8 KiB moved); its TLB flush is counted apart (tlb_flush)`,
    },
    p2m_populate: {
      value: zero + 100,
      source: `scrubbing a new 4 KiB host frame (page_zero) and the P2M update (100 cycles, ${ASSUMED})`,
    },
    page_read: {
      value: 2 * zero,
      source:
        "a 4 KiB page read from a disk image into memory, priced as a page copy (the disk's latency is not modelled)",
    },
    cow_break: {
      value: 2 * zero + 100,
      source: `a new frame, a 4 KiB copy (page_copy) and the P2M update (100 cycles, ${ASSUMED}); the exit apart`,
    },
    balloon_inflate_page: {
      value: zero,
      source:
        "per page given to the VMM: Xen scrubs a freed page before reuse (page_zero); the hypercall's exit apart",
    },
    ptwr_emulation: {
      value: exit,
      source: `${ASSUMED}: decoding and emulating a trapped store into an L1 table (Xen's ptwr) as long as an exit's round trip; the #PF exit apart`,
    },
  } satisfies Partial<Record<CostEvent, Sourced>>;
}

/** Intel Xeon Platinum 8176 (Skylake-SP, 2017): the default. */
const SKYLAKE_SP_ZERO = 630;
const SKYLAKE_SP_EXIT = 1300;
const SKYLAKE_SP: CpuProfile = {
  name: "skylake-sp",
  model: "Intel Xeon Platinum 8176 (Skylake-SP), 2.1 GHz",
  hz: { value: 2.1e9, source: "Intel's product specification (base clock)" },
  tlb: {
    l1: { entries: 64, ways: 4 },
    l2: { entries: 1536, ways: 12 },
    source: `${INTEL_OPT}, Skylake TLB parameters (L1 DTLB 64 entries 4-way for 4 KiB pages; STLB 1536 entries 12-way, 4 KiB and 2 MiB pages)`,
  },
  caches: {
    l1: { bytes: 32 * 1024, ways: 8 },
    l2: { bytes: 1024 * 1024, ways: 16 },
    llc: { bytes: 1408 * 1024, ways: 11 },
    source: `${INTEL_OPT}, Skylake Server cache parameters (L1d 32 KiB 8-way, L2 1 MiB 16-way, a core's 1.375 MiB 11-way slice of the shared LLC); one core runs the simulation, so it gets one slice`,
  },
  latency: {
    l1d: { value: 4, source: `${INTEL_OPT}: 4-cycle L1d load-to-use` },
    l2: { value: 14, source: `${INTEL_OPT}: L2 about 14 cycles (${ANANDTECH_SKX}: 14-22)` },
    llc: { value: 55, source: `${ANANDTECH_SKX}: L3 54-56 cycles` },
    dram: { value: 189, source: `${ANANDTECH_SKX}: DRAM 89-91 ns, 90 ns at 2.1 GHz` },
  },
  walkCaches: {
    pwc: true,
    eptPwc: true,
    nestedTlb: false,
    source:
      "Intel SDM Vol. 3C, caching translation information under EPT: paging-structure caches, combined (guest and EPT) and guest-physical ones; no nested TLB of AMD's kind is documented; sizes are not architected (32 entries each is an assumption)",
  },
  costs: {
    access: {
      value: 0,
      source:
        "a memory instruction's own cycle is in the CPI of the work between accesses; an L1d hit adds nothing",
    },
    core_cycle: {
      value: 1,
      source: "the cycles of the instructions between accesses (CPI x count)",
    },
    tlb_l1_hit: { value: 0, source: "the L1 DTLB is looked up beside the L1d: a hit adds nothing" },
    tlb_l2_hit: {
      value: 9,
      source: `${TLBKIT}: 9.02 cycles per L1 DTLB miss that hits the STLB`,
    },
    walk_ref: {
      value: 6.5,
      source: `with the data caches not modelled: ${TLBKIT}, 26 cycles per walk whose entries are cached (over an STLB hit), spread over 4 references`,
    },
    walk_l1d: { value: 4, source: "a walk reference to a line in L1d: its load-to-use latency" },
    walk_l2: { value: 14, source: "a walk reference to a line in L2: its load-to-use latency" },
    walk_llc: { value: 55, source: "a walk reference to a line in the LLC: its latency" },
    walk_dram: { value: 189, source: "a walk reference to a line in DRAM: its latency" },
    vmm_l1d: { value: 4, source: "the VMM's read of a guest table line in L1d: its latency" },
    vmm_l2: { value: 14, source: "the VMM's read of a guest table line in L2: its latency" },
    vmm_llc: { value: 55, source: "the VMM's read of a guest table line in the LLC: its latency" },
    vmm_dram: { value: 189, source: "the VMM's read of a guest table line in DRAM: its latency" },
    data_l2: {
      value: 10,
      source: `${ASSUMED}: a data access found in L2 stalls its L2 latency less the L1d's (14 - 4), with no overlap`,
    },
    data_llc: { value: 51, source: `${ASSUMED}: LLC latency less the L1d's (55 - 4), no overlap` },
    data_dram: {
      value: 185,
      source: `${ASSUMED}: DRAM latency less the L1d's (189 - 4), no overlap`,
    },
    guest_page_fault: {
      value: 2000,
      source: `${ASSUMED}: the #PF's delivery, Linux's anonymous-fault handler and its return, less the page zeroing priced apart; measured whole faults are 2,700-3,200 cycles (docs/TIMING.md)`,
    },
    page_zero: {
      value: SKYLAKE_SP_ZERO,
      source:
        "clearing 4 KiB with rep stosb at 13.7 GB/s (Linux clear_page patch by A. Arora, measured on AMD Milan), 300 ns at 2.1 GHz",
    },
    cr3_write: {
      value: 100,
      source:
        "MOV to CR3 costs on the order of a hundred cycles (Linux Documentation/arch/x86/pti.rst)",
    },
    invlpg: {
      value: 250,
      source:
        "about 100 ns per single-page flush (Linux arch/x86/mm/tlb.c) and 350 cycles on Skylake (D. Hansen, LKML 2017)",
    },
    tlb_flush: {
      value: 500,
      source: `${ASSUMED}: a full flush (CR4.PGE toggle) itself; the refills are counted as misses`,
    },
    invept: {
      value: 500,
      source: `${ASSUMED}: INVEPT single-context, twice an INVLPG (it drops a whole context's entries); no measurement found`,
    },
    vmexit: {
      value: SKYLAKE_SP_EXIT,
      source: `${ASSUMED}: a VM exit and entry round trip, between 2,000 cycles on Nehalem (Landau et al., SplitX, WIOV 2011) and about 1,350 on AMD with KVM (LKML 2020); no Skylake measurement found`,
    },
    shadow_fault: {
      value: 1000,
      source: `${ASSUMED}: the shadow #PF handler's own code (locking, hash lookups, decoding the guest walk), about 1,000 instructions at CPI 1; its exit, guest walk, shadow pages and emulation are priced apart`,
    },
    emulate: {
      value: 1500,
      source: `${ASSUMED}: decoding and emulating a guest write to a page table and revalidating its shadow entries; the #PF exit apart`,
    },
    ...derivedCosts(SKYLAKE_SP_ZERO, SKYLAKE_SP_EXIT),
    ...SOFTWARE_COSTS,
  },
};

/** Intel Xeon X5570 (Nehalem-EP, 2009): the part of the 2008-2011 measurements. */
const NEHALEM_ZERO = 880;
const NEHALEM_EXIT = 2000;
const NEHALEM_EP: CpuProfile = {
  ...SKYLAKE_SP,
  name: "nehalem-ep",
  model: "Intel Xeon X5570 (Nehalem-EP), 2.93 GHz",
  hz: { value: 2.93e9, source: "Landau et al., SplitX, WIOV 2011 (the measured machine)" },
  tlb: {
    l1: { entries: 64, ways: 4 },
    l2: { entries: 512, ways: 4 },
    source:
      "D. Kanter, Inside Nehalem, RealWorldTech 2008 (L1 DTLB 64 entries 4-way; STLB 512 entries 4-way, 4 KiB pages only)",
  },
  caches: {
    l1: { bytes: 32 * 1024, ways: 8 },
    l2: { bytes: 256 * 1024, ways: 8 },
    llc: { bytes: 2048 * 1024, ways: 16 },
    source:
      "Levinthal, Performance Analysis Guide for Intel Core i7 and Xeon 5500 processors, Intel 2009 (L1d 32 KiB, L2 256 KiB, 8 MiB shared L3: a quarter for one core)",
  },
  latency: {
    l1d: { value: 4, source: "Levinthal, Intel 2009: L1 about 4 cycles" },
    l2: { value: 10, source: "Levinthal, Intel 2009: L2 about 10 cycles" },
    llc: { value: 40, source: "Levinthal, Intel 2009: unshared L3 line about 40 cycles" },
    dram: { value: 176, source: "Levinthal, Intel 2009: local DRAM about 60 ns, at 2.93 GHz" },
  },
  walkCaches: {
    pwc: true,
    eptPwc: true,
    nestedTlb: false,
    source: "as skylake-sp: Intel's paging-structure caches (sizes an assumption)",
  },
  costs: {
    ...SKYLAKE_SP.costs,
    tlb_l2_hit: { value: 7, source: `${ASSUMED}: an STLB hit, a little below Skylake's 9` },
    walk_l2: { value: 10, source: "a walk reference to a line in L2: its latency" },
    walk_llc: { value: 40, source: "a walk reference to a line in the L3: its latency" },
    walk_dram: { value: 176, source: "a walk reference to a line in DRAM: its latency" },
    vmm_l2: { value: 10, source: "the VMM's read of a guest table line in L2: its latency" },
    vmm_llc: { value: 40, source: "the VMM's read of a guest table line in the L3: its latency" },
    vmm_dram: { value: 176, source: "the VMM's read of a guest table line in DRAM: its latency" },
    data_l2: { value: 6, source: `${ASSUMED}: L2 latency less the L1d's, no overlap` },
    data_llc: { value: 36, source: `${ASSUMED}: L3 latency less the L1d's, no overlap` },
    data_dram: { value: 172, source: `${ASSUMED}: DRAM latency less the L1d's, no overlap` },
    page_zero: {
      value: NEHALEM_ZERO,
      source: `${ASSUMED}: clearing 4 KiB at 13.7 GB/s, as skylake-sp, at 2.93 GHz`,
    },
    vmexit: {
      value: NEHALEM_EXIT,
      source:
        "Landau, Ben-Yehuda, Gordon, SplitX, WIOV 2011, Table 1: about 2,000 cycles direct cost per exit on a Xeon X5570 (KVM, EPT, VPID)",
    },
    ...derivedCosts(NEHALEM_ZERO, NEHALEM_EXIT),
  },
};

export const CPU_PROFILES: Readonly<Record<CpuName, CpuProfile>> = {
  "skylake-sp": SKYLAKE_SP,
  "nehalem-ep": NEHALEM_EP,
};

/** The profile a scenario gets when it names none. */
export const DEFAULT_CPU: CpuName = "skylake-sp";
