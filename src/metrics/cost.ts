/**
 * The cycle-cost model: simulated cycles are event counts times per-event costs. The counts are
 * the primary result; cycles are a model on top, every cost overridable from a scenario.
 */

import { COST_EVENTS, type CostEvent, type CostOverrides } from "../config/scenario.js";
import {
  C_ACCESSES,
  C_BALLOON_DEFLATED_PAGES,
  C_BALLOON_INFLATED_PAGES,
  C_COW_BREAKS,
  C_CR3_WRITES,
  C_GUEST_PAGE_FAULTS,
  C_HOST_SWAP_INS,
  C_HOST_SWAP_OUTS,
  C_INVLPG,
  C_NUM_PAGE_UPDATES,
  C_P2M_POPULATE,
  C_PAGE_COPY,
  C_PAGE_READS,
  C_PAGE_ZERO,
  C_PTWR_EMULATIONS,
  C_PV_PAGE_VALIDATIONS,
  C_SHADOW_ALLOC,
  C_SHADOW_EMULATE_WRITE,
  C_SHADOW_FAULT,
  C_SHARING_MERGES,
  C_SHARING_PAGES_SCANNED,
  C_TLB_FLUSHES,
  C_TLB_L1_HITS,
  C_TLB_L2_HITS,
  C_VMEXITS,
  C_WALK_REFS,
  COUNTER_COUNT,
} from "./counters.js";

export interface CostDefault {
  cycles: number;
  /** The counter the cost applies to. */
  counter: number;
  /** Where the number comes from. */
  source: string;
}

export const COST_DEFAULTS: Record<CostEvent, CostDefault> = {
  access: {
    cycles: 1,
    counter: C_ACCESSES,
    source: "one load/store issued, data cache hit assumed (the model costs translation, not data)",
  },
  tlb_l1_hit: {
    cycles: 1,
    counter: C_TLB_L1_HITS,
    source:
      "an L1 DTLB hit, looked up beside the L1 data cache: 1 cycle keeps hits visible (a modelling assumption)",
  },
  tlb_l2_hit: {
    cycles: 7,
    counter: C_TLB_L2_HITS,
    source:
      "an L1 DTLB miss that hits the second-level TLB: 7 cycles, a modelling assumption of the order of an L2 cache hit (12 cycles on Skylake client: Intel 64 and IA-32 Architectures Optimization Reference Manual, Skylake client cache parameters)",
  },
  walk_ref: {
    cycles: 20,
    counter: C_WALK_REFS,
    source:
      "a page-walk reference served by the cache hierarchy: 20 cycles, a modelling assumption between the L2 (12) and L3 (44) latencies of Skylake client (Intel 64 and IA-32 Architectures Optimization Reference Manual, Skylake client cache parameters); one from DRAM, about ten times more, is not modelled",
  },
  guest_page_fault: {
    cycles: 1000,
    counter: C_GUEST_PAGE_FAULTS,
    source:
      "exception delivery, handler entry and IRET, about 1,000 cycles on recent x86 (lmbench lat_pagefault minus the work counted apart)",
  },
  page_zero: {
    cycles: 1000,
    counter: C_PAGE_ZERO,
    source:
      "zeroing 4 KiB with rep stosb: about 1,000 cycles, a modelling assumption (4 KiB written at about 4 bytes a cycle, the page not in cache)",
  },
  page_copy: {
    cycles: 1000,
    counter: C_PAGE_COPY,
    source:
      "copying 4 KiB with rep movsb: about 1,000 cycles, a modelling assumption (as page_zero)",
  },
  cr3_write: {
    cycles: 200,
    counter: C_CR3_WRITES,
    source: "MOV to CR3, about 200 cycles (serializing; Agner Fog's tables give 100-250)",
  },
  invlpg: {
    cycles: 200,
    counter: C_INVLPG,
    source: "INVLPG, about 200 cycles (Agner Fog's tables give 100-250)",
  },
  tlb_flush: {
    cycles: 500,
    counter: C_TLB_FLUSHES,
    source:
      "refilling after a flush is counted as misses; this is the flush itself (CR4.PGE toggle ~500)",
  },
  vmexit: {
    cycles: 1500,
    counter: C_VMEXITS,
    source:
      "VM exit and entry round trip, ~1,500 (about 2,000 on Xeon X5570, Landau et al.; 1,350-2,530 on AMD per lkml)",
  },
  shadow_fault: {
    cycles: 28500,
    counter: C_SHADOW_FAULT,
    source:
      "the shadow #PF handler's work, so that with its exit a shadow fault costs ~30,000 (Patterson and Hennessy, 5th ed., ex. 5.14)",
  },
  emulate: {
    cycles: 3000,
    counter: C_SHADOW_EMULATE_WRITE,
    source:
      "decoding and emulating a guest write, revalidating its shadows: a few thousand (a modelling assumption)",
  },
  p2m_populate: {
    cycles: 2000,
    counter: C_P2M_POPULATE,
    source: "allocating and scrubbing a 4 KiB host page (~1,000) plus the P2M update",
  },
  shadow_alloc: {
    cycles: 1000,
    counter: C_SHADOW_ALLOC,
    source: "zeroing a 4 KiB shadow page (as page_zero)",
  },
  page_read: {
    cycles: 1000,
    counter: C_PAGE_READS,
    source:
      "a 4 KiB page read from the guest's disk into memory, priced as a page copy (page_copy); the disk's latency is not modelled",
  },
  cow_break: {
    cycles: 2000,
    counter: C_COW_BREAKS,
    source:
      "breaking a shared page on a write: a new frame, a 4 KiB copy (page_copy) and the P2M update; the exit is counted apart",
  },
  sharing_scan_page: {
    cycles: 2000,
    counter: C_SHARING_PAGES_SCANNED,
    source:
      "the scanner's checksum of 4 KiB (about 2 bytes a cycle) and a table lookup (a modelling assumption)",
  },
  sharing_merge: {
    cycles: 3000,
    counter: C_SHARING_MERGES,
    source:
      "a full 4 KiB compare (~1,000) and remapping the page read-only, its old mappings removed (a modelling assumption)",
  },
  balloon_inflate_page: {
    cycles: 1000,
    counter: C_BALLOON_INFLATED_PAGES,
    source:
      "per page given to the VMM: Xen scrubs a freed page before reuse (as page_zero); the hypercall's exit is counted apart",
  },
  balloon_deflate_page: {
    cycles: 100,
    counter: C_BALLOON_DEFLATED_PAGES,
    source:
      "per page taken back: a P2M update; its frame is allocated and scrubbed at first touch (p2m_populate); the hypercall's exit is counted apart",
  },
  host_swap_out: {
    cycles: 10000,
    counter: C_HOST_SWAP_OUTS,
    source:
      "choosing a victim, removing its mappings and queueing a 4 KiB write; the write itself is asynchronous (a modelling assumption)",
  },
  host_swap_in: {
    cycles: 1000000,
    counter: C_HOST_SWAP_INS,
    source:
      "a synchronous 4 KiB read from the host's swap device: 10^6 cycles, a modelling assumption (an SSD read of about 300 microseconds at 3 GHz; a disk's 10 ms would be 3 x 10^7)",
  },
  pv_page_update: {
    cycles: 150,
    counter: C_NUM_PAGE_UPDATES,
    source:
      "one PV page-table update checked by Xen (mod_l1_entry: the frame's owner and type, the write): a few hundred cycles (a modelling assumption); the hypercall's exit is counted apart",
  },
  pv_validate_page: {
    cycles: 2000,
    counter: C_PV_PAGE_VALIDATIONS,
    source:
      "validating a whole new page table: 512 entries checked, about as long as zeroing a page (page_zero) plus the references taken (a modelling assumption)",
  },
  ptwr_emulation: {
    cycles: 3000,
    counter: C_PTWR_EMULATIONS,
    source:
      "decoding and emulating a trapped store into an L1 table (Xen's ptwr), as the shadow emulator's (emulate); the #PF exit is counted apart",
  },
};

/** The cost model of a run: per-event cycles, applied to a counter array. */
export class CostModel {
  readonly cycles: Record<CostEvent, number>;
  /** Cost per counter index (0 for counters without a cost). */
  private readonly perCounter = new Float64Array(COUNTER_COUNT);

  constructor(overrides: CostOverrides = {}) {
    const cycles = {} as Record<CostEvent, number>;
    for (const event of COST_EVENTS) {
      const value = overrides[event] ?? COST_DEFAULTS[event].cycles;
      cycles[event] = value;
      this.perCounter[COST_DEFAULTS[event].counter] += value;
    }
    this.cycles = cycles;
  }

  /** Total cycles for a counter array. */
  total(counters: Float64Array): number {
    let sum = 0;
    const per = this.perCounter;
    for (let i = 0; i < per.length; i++) sum += counters[i] * per[i];
    return sum;
  }

  /** Cycles by event, for reports. */
  byEvent(counters: Float64Array): Record<string, number> {
    const out: Record<string, number> = {};
    for (const event of COST_EVENTS) {
      out[event] = counters[COST_DEFAULTS[event].counter] * this.cycles[event];
    }
    return out;
  }
}
