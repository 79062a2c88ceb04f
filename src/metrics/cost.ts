/**
 * The cycle-cost model: simulated cycles are event counts times per-event costs, a dot product
 * of a domain's counters with the costs of its CPU profile (config/cpu.ts, each figure with its
 * source), any of them overridden by the scenario. The counts are the primary result; cycles are
 * a model on top.
 */

import type { CpuProfile } from "../config/cpu.js";
import { COST_EVENTS, type CostEvent, type CostOverrides } from "../config/scenario.js";
import {
  C_ACCESSES,
  C_BALLOON_DEFLATED_PAGES,
  C_BALLOON_INFLATED_PAGES,
  C_CORE_CYCLES,
  C_COW_BREAKS,
  C_CR3_WRITES,
  C_DATA_FROM_DRAM,
  C_DATA_FROM_L2,
  C_DATA_FROM_LLC,
  C_EPT_INVEPT,
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
  C_SHADOW_RESYNC,
  C_SHADOW_UNSYNC,
  C_SHARING_MERGES,
  C_SHARING_PAGES_SCANNED,
  C_TLB_FLUSHES,
  C_TLB_L1_HITS,
  C_TLB_L2_HITS,
  C_VMEXITS,
  C_VMM_FROM_DRAM,
  C_VMM_FROM_L1D,
  C_VMM_FROM_L2,
  C_VMM_FROM_LLC,
  C_WALK_FROM_DRAM,
  C_WALK_FROM_L1D,
  C_WALK_FROM_L2,
  C_WALK_FROM_LLC,
  C_WALK_REFS,
  COUNTER_COUNT,
} from "./counters.js";

/** The counter each cost applies to. */
export const COST_COUNTERS: Readonly<Record<CostEvent, number>> = {
  access: C_ACCESSES,
  tlb_l1_hit: C_TLB_L1_HITS,
  tlb_l2_hit: C_TLB_L2_HITS,
  walk_ref: C_WALK_REFS,
  guest_page_fault: C_GUEST_PAGE_FAULTS,
  page_zero: C_PAGE_ZERO,
  page_copy: C_PAGE_COPY,
  cr3_write: C_CR3_WRITES,
  invlpg: C_INVLPG,
  tlb_flush: C_TLB_FLUSHES,
  vmexit: C_VMEXITS,
  shadow_fault: C_SHADOW_FAULT,
  emulate: C_SHADOW_EMULATE_WRITE,
  shadow_unsync: C_SHADOW_UNSYNC,
  shadow_resync: C_SHADOW_RESYNC,
  p2m_populate: C_P2M_POPULATE,
  shadow_alloc: C_SHADOW_ALLOC,
  page_read: C_PAGE_READS,
  cow_break: C_COW_BREAKS,
  sharing_scan_page: C_SHARING_PAGES_SCANNED,
  sharing_merge: C_SHARING_MERGES,
  balloon_inflate_page: C_BALLOON_INFLATED_PAGES,
  balloon_deflate_page: C_BALLOON_DEFLATED_PAGES,
  host_swap_out: C_HOST_SWAP_OUTS,
  host_swap_in: C_HOST_SWAP_INS,
  pv_page_update: C_NUM_PAGE_UPDATES,
  pv_validate_page: C_PV_PAGE_VALIDATIONS,
  ptwr_emulation: C_PTWR_EMULATIONS,
  core_cycle: C_CORE_CYCLES,
  walk_l1d: C_WALK_FROM_L1D,
  walk_l2: C_WALK_FROM_L2,
  walk_llc: C_WALK_FROM_LLC,
  walk_dram: C_WALK_FROM_DRAM,
  data_l2: C_DATA_FROM_L2,
  data_llc: C_DATA_FROM_LLC,
  data_dram: C_DATA_FROM_DRAM,
  vmm_l1d: C_VMM_FROM_L1D,
  vmm_l2: C_VMM_FROM_L2,
  vmm_llc: C_VMM_FROM_LLC,
  vmm_dram: C_VMM_FROM_DRAM,
  invept: C_EPT_INVEPT,
};

/**
 * The cost model of a run: the profile's per-event cycles, with the scenario's overrides, applied
 * to a counter array. Without the data caches a walk reference has one flat cost (walk_ref);
 * with them each is priced by the level that held its line, and walk_ref is not charged again
 * (unless the scenario sets it).
 */
export class CostModel {
  readonly cycles: Record<CostEvent, number>;
  /** The profile's clock, Hz: cycles to seconds. */
  readonly hz: number;
  /** Cost per counter index (0 for counters without a cost). */
  private readonly perCounter = new Float64Array(COUNTER_COUNT);
  /**
   * The counters with a cost, in index order, and their costs: what total() reads (a third of
   * the counters; the others would add exact zeroes). A run of 1,000 domains sums every
   * domain's cycles at each turn.
   */
  readonly pricedIndex: Int32Array;
  private readonly pricedCost: Float64Array;

  constructor(profile: CpuProfile, overrides: CostOverrides = {}, dataCache = false) {
    const cycles = {} as Record<CostEvent, number>;
    for (const event of COST_EVENTS) {
      const fallback = event === "walk_ref" && dataCache ? 0 : profile.costs[event].value;
      const value = overrides[event] ?? fallback;
      cycles[event] = value;
      this.perCounter[COST_COUNTERS[event]] += value;
    }
    this.cycles = cycles;
    this.hz = profile.hz.value;
    const priced: number[] = [];
    for (let i = 0; i < COUNTER_COUNT; i++) if (this.perCounter[i] !== 0) priced.push(i);
    this.pricedIndex = Int32Array.from(priced);
    this.pricedCost = Float64Array.from(priced, (i) => this.perCounter[i]);
  }

  /**
   * Total cycles for a counter array: each counter times its cost, added in index order. The
   * counters without a cost are left out (two thirds of them; a run reads its clock every 16
   * steps): each would add +0, which leaves the sum as it is.
   */
  total(counters: Float64Array): number {
    let sum = 0;
    const index = this.pricedIndex;
    const cost = this.pricedCost;
    for (let k = 0; k < index.length; k++) sum += counters[index[k]] * cost[k];
    return sum;
  }

  /** Cycles by event, for reports. */
  byEvent(counters: Float64Array): Record<string, number> {
    const out: Record<string, number> = {};
    for (const event of COST_EVENTS) {
      out[event] = counters[COST_COUNTERS[event]] * this.cycles[event];
    }
    return out;
  }
}

/**
 * total() of a fixed list of counter arrays (one per domain), each summed again only when one
 * of its priced counters changed since its last sum: Simulation.time sums every domain's cycles
 * at each turn, where one domain ran, and comparing a domain's priced counters costs a fraction
 * of the sum's chain of dependent additions. The same numbers as total(), to the bit.
 */
export class CostTotals {
  /** Array i's priced counters at its last sum, at i * width (NaN at first: never equal). */
  private readonly seen: Float64Array;
  /** Array i's total at its last sum. */
  private readonly sums: Float64Array;
  private readonly width: number;

  constructor(
    private readonly cost: CostModel,
    private readonly arrays: readonly Float64Array[],
  ) {
    this.width = cost.pricedIndex.length;
    this.seen = new Float64Array(arrays.length * this.width).fill(Number.NaN);
    this.sums = new Float64Array(arrays.length);
  }

  /** cost.total(arrays[i]). */
  total(i: number): number {
    const counters = this.arrays[i];
    const index = this.cost.pricedIndex;
    const seen = this.seen;
    const base = i * this.width;
    for (let k = 0; k < index.length; k++) {
      if (counters[index[k]] !== seen[base + k]) return this.sumAgain(i);
    }
    return this.sums[i];
  }

  private sumAgain(i: number): number {
    const counters = this.arrays[i];
    const index = this.cost.pricedIndex;
    const base = i * this.width;
    for (let k = 0; k < index.length; k++) this.seen[base + k] = counters[index[k]];
    this.sums[i] = this.cost.total(counters);
    return this.sums[i];
  }
}
