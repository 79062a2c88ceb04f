/**
 * A domain's counters in groups, one per layer (TLB, guest kernel, VMM, host memory, each paging
 * mode, memory, cycles): the rows that matter, each with a note that puts it in proportion.
 * Counter names are the report's typed names: a misspelt one does not compile.
 */

import {
  COST_COUNTERS,
  COST_EVENTS,
  COUNTER_NAMES,
  type DomainCounterName,
  type DomainCounters,
  type DomainReport,
  formatSizeApprox,
  PAGE_SIZE,
} from "../api/index.js";
import { formatInt, formatPercent, formatRatio } from "./format.js";

/** One line of a group: a label (usually the counter's name), a value and a note. */
export interface Row {
  label: string;
  value: string;
  note: string;
}

export interface Group {
  title: string;
  rows: Row[];
  /** Whether any counter of the group is non-zero (all-zero groups are left out). */
  any: boolean;
}

/** Shadow entries revalidated, by level (l1 .. l4). */
const SHADOW_VALIDATE_COUNTERS = [
  "shadow_validate_gl1e_calls",
  "shadow_validate_gl2e_calls",
  "shadow_validate_gl3e_calls",
  "shadow_validate_gl4e_calls",
] as const;

/** Walk lengths shown beside "refs per walk", most frequent first. */
const WALK_HIST_SHOWN = 2;

/** The groups of a domain's counters, in the order they are printed. */
export function counterGroups(domain: DomainReport): Group[] {
  return [
    tlbGroup(domain),
    kernelGroup(domain),
    vmmGroup(domain),
    balloonGroup(domain),
    shadowGroup(domain),
    hapGroup(domain),
    pvGroup(domain),
    memoryGroup(domain),
    workGroup(domain),
    cyclesGroup(domain),
  ];
}

/** A group from rows of counters; `optional` rows are left out when their counter is 0. */
function group(
  title: string,
  c: DomainCounters,
  rows: (Row | { counter: DomainCounterName; note?: string; optional?: boolean })[],
  counted: DomainCounterName[],
): Group {
  const out: Row[] = [];
  for (const r of rows) {
    if ("label" in r) {
      out.push(r);
      continue;
    }
    const value = c[r.counter] ?? 0;
    if (r.optional && value === 0) continue;
    out.push({ label: r.counter, value: formatInt(value), note: r.note ?? "" });
  }
  return { title, rows: out, any: counted.some((name) => (c[name] ?? 0) !== 0) };
}

function tlbGroup(d: DomainReport): Group {
  const c = d.counters;
  const accesses = c.accesses ?? 0;
  const l1 = c.tlb_l1_hits ?? 0;
  const l2 = c.tlb_l2_hits ?? 0;
  const share = (n: number) => `${formatPercent(n, accesses)} of accesses`;
  return group(
    "TLB",
    c,
    [
      { counter: "accesses", note: `${formatInt(c.user_accesses ?? 0)} by user processes` },
      { counter: "tlb_l1_hits", note: share(l1) },
      { counter: "tlb_l2_hits", note: share(l2) },
      { counter: "tlb_misses", note: share(c.tlb_misses ?? 0) },
      { label: "TLB hit rate", value: formatPercent(l1 + l2, accesses), note: "L1 + L2 hits" },
      { counter: "walks" },
      { counter: "walk_refs" },
      {
        label: "refs per walk",
        value: formatRatio(c.walk_refs ?? 0, c.walks ?? 0),
        note: walkHistogram(c),
      },
      { counter: "cr3_writes" },
      { counter: "tlb_flushes" },
      { counter: "invlpg", optional: true },
    ],
    ["accesses", "tlb_l1_hits", "tlb_l2_hits", "tlb_misses", "walks", "cr3_writes", "invlpg"],
  );
}

/** "4 refs 99.8%, 3 refs 0.2%": the most frequent walk lengths (walk_refs_<n> counters). */
function walkHistogram(c: DomainCounters): string {
  const walks = c.walks ?? 0;
  const lengths: [number, number][] = [];
  for (const [name, count] of Object.entries(c)) {
    const m = /^walk_refs_(\d+)$/.exec(name);
    if (m && count !== undefined && count > 0) lengths.push([Number(m[1]), count]);
  }
  lengths.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  return lengths
    .slice(0, WALK_HIST_SHOWN)
    .map(([refs, count]) => `${refs} ref${refs === 1 ? "" : "s"} ${formatPercent(count, walks)}`)
    .join(", ");
}

function kernelGroup(d: DomainReport): Group {
  const c = d.counters;
  const faults =
    `demand ${formatInt(c.guest_demand_faults ?? 0)}, cow ${formatInt(c.guest_cow_faults ?? 0)}, ` +
    `spurious ${formatInt(c.guest_spurious_faults ?? 0)}`;
  const names: DomainCounterName[] = [
    "guest_page_faults",
    "context_switches",
    "forks",
    "execs",
    "exits",
    "mmaps",
    "munmaps",
    "mprotects",
    "guest_segv",
    "guest_oom",
  ];
  return group(
    "guest kernel",
    c,
    [
      { counter: "guest_page_faults", note: faults },
      { counter: "context_switches" },
      { counter: "forks", optional: true },
      { counter: "execs", optional: true },
      { counter: "exits", optional: true },
      { counter: "mmaps", optional: true },
      { counter: "munmaps", optional: true },
      { counter: "mprotects", optional: true },
      { counter: "guest_segv", note: "processes killed by SIGSEGV", optional: true },
      { counter: "guest_oom", note: "processes killed by the OOM killer", optional: true },
      {
        counter: "page_cache_hits",
        note: `image pages found cached; ${formatInt(c.page_cache_misses ?? 0)} read, ${formatInt(c.page_cache_evictions ?? 0)} dropped`,
        optional: true,
      },
      { counter: "fault_around_pages", note: "mapped by fault-around", optional: true },
    ],
    names,
  );
}

/** VM exits by reason and the P2M: only virtualized domains have any. */
function vmmGroup(d: DomainReport): Group {
  const c = d.counters;
  const exits = c.vmexits ?? 0;
  const share = (n: DomainCounterName) => ({
    counter: n,
    note: `${formatPercent(c[n] ?? 0, exits)} of exits`,
    optional: true,
  });
  return group(
    "VMM",
    c,
    [
      {
        counter: "vmexits",
        note: `${formatRatio(exits * 1000, c.user_accesses ?? 0)} per 1,000 user accesses`,
      },
      share("vmexits_pf"),
      share("vmexits_cr3"),
      share("vmexits_invlpg"),
      share("vmexits_ept_violation"),
      share("vmexits_hypercall"),
      { counter: "p2m_populate", note: "gfns backed on first touch" },
      {
        counter: "p2m_pages",
        note: `P2M pages for ${formatInt(c.p2m_entries ?? 0)} entries`,
        optional: true,
      },
      { counter: "domain_crashes", optional: true },
    ],
    ["vmexits", "p2m_populate"],
  );
}

/**
 * The domain's memory on the host: the balloon (target, size, pages moved), host swapping and
 * page sharing; only when any of them did anything.
 */
function balloonGroup(d: DomainReport): Group {
  const c = d.counters;
  const gfns = c.guest_frames ?? 0;
  const size = (n: DomainCounterName) => formatSizeApprox((c[n] ?? 0) * PAGE_SIZE);
  // The balloon's rows only when it did something, or has a target below the domain's memory.
  const ballooned = (c.balloon_inflated_pages ?? 0) > 0 || (c.balloon_target_pages ?? gfns) < gfns;
  const balloonRows: { counter: DomainCounterName; note: string }[] = [
    { counter: "balloon_target_pages", note: `${size("balloon_target_pages")}, set by the host` },
    {
      counter: "reservation_pages",
      note: `${size("reservation_pages")}, ${formatPercent(c.reservation_pages ?? 0, gfns)} of its memory`,
    },
    { counter: "balloon_pages", note: `${size("balloon_pages")} in the balloon now` },
    { counter: "balloon_inflated_pages", note: "given to the VMM" },
    { counter: "balloon_deflated_pages", note: "taken back" },
  ];
  return group(
    "host memory",
    c,
    [
      ...(ballooned ? balloonRows : []),
      { counter: "balloon_backoffs", note: "the driver could not go on", optional: true },
      {
        counter: "balloon_touch_populate",
        note: "ballooned gfns touched and given a page",
        optional: true,
      },
      { counter: "host_frames", note: `${size("host_frames")} of host memory behind it` },
      { counter: "pages_merged", note: "pages merged into shared frames", optional: true },
      { counter: "cow_breaks", note: "shared pages written: copied", optional: true },
      { counter: "host_swap_outs", note: "pages the host swapped out", optional: true },
      { counter: "host_swap_ins", note: "touched while swapped: read back", optional: true },
      {
        counter: "host_swapped_out",
        note: `${size("host_swapped_out")} in its swap file now`,
        optional: true,
      },
    ],
    [
      "balloon_inflated_pages",
      "balloon_deflated_pages",
      "balloon_backoffs",
      "balloon_touch_populate",
      "host_swap_outs",
      "pages_merged",
      "cow_breaks",
    ],
  );
}

/** PV direct paging: the hypercalls, the page updates they made, validations and refusals. */
function pvGroup(d: DomainReport): Group {
  const c = d.counters;
  const calls = c.calls_to_mmu_update ?? 0;
  return group(
    "PV",
    c,
    [
      { counter: "calls_to_mmu_update" },
      {
        counter: "num_page_updates",
        note: `${formatRatio(c.num_page_updates ?? 0, calls)} per mmu_update (with update_va_mapping's)`,
      },
      { counter: "writable_mmu_updates", optional: true },
      { counter: "calls_to_update_va", note: "direct map: tables read-only, balloon pages" },
      { counter: "calls_to_mmuext_op", note: "pin, unpin, base pointer, TLB flushes" },
      { counter: "ptwr_emulations", note: "trapped stores into L1 tables", optional: true },
      { counter: "pv_page_validations", note: "whole tables validated (type count 0 -> 1)" },
      { counter: "need_flush_tlb_flush", note: "TLB flushes before a page became a table" },
      { counter: "pv_validation_failures", optional: true },
      { counter: "pv_hypercall_errors", optional: true },
      { counter: "pv_pt_pages", note: "page tables of the guest, read-only to it", optional: true },
      { counter: "m2p_pages", note: "the host's m2p, mapped read-only", optional: true },
    ],
    ["calls_to_mmu_update", "calls_to_mmuext_op"],
  );
}

/** Shadow paging: faults by outcome, emulation, the shadow pool and its reclaim. */
function shadowGroup(d: DomainReport): Group {
  const c = d.counters;
  const faults = c.shadow_fault ?? 0;
  const of = (n: DomainCounterName) => formatPercent(c[n] ?? 0, faults);
  const peak = c.shadow_pages_peak ?? 0;
  const perLevel = SHADOW_VALIDATE_COUNTERS.map((name) => c[name] ?? 0);
  const validated = perLevel.reduce((a, b) => a + b, 0);
  const validates = perLevel.map((n, i) => `l${i + 1} ${formatInt(n)}`).join(" ");
  return group(
    "shadow",
    c,
    [
      { counter: "shadow_fault" },
      { counter: "shadow_fault_fixed", note: `hidden, ${of("shadow_fault_fixed")}` },
      {
        counter: "shadow_fault_bail_real_fault",
        note: `true faults, ${of("shadow_fault_bail_real_fault")}`,
      },
      {
        counter: "shadow_fault_emulate",
        note: `page-table writes, ${of("shadow_fault_emulate")}`,
      },
      { counter: "shadow_emulate_write" },
      {
        label: "shadow_validate_*",
        value: formatInt(validated),
        note: validates,
      },
      {
        counter: "shadow_writeable",
        note: "tables write-protected (rmap)",
        optional: true,
      },
      {
        counter: "shadow_writeable_bf",
        note: "tables write-protected (scan)",
        optional: true,
      },
      { counter: "shadow_unshadow", note: "tables unshadowed", optional: true },
      { counter: "shadow_early_unshadow", note: "by early unshadow", optional: true },
      { counter: "shadow_flood_unshadow", note: "by write flooding", optional: true },
      { counter: "shadow_invlpg", note: "leaves dropped by INVLPG", optional: true },
      { counter: "shadow_prefetch", optional: true },
      {
        counter: "shadow_unsync",
        note: `L1s left out of sync; ${formatInt(c.shadow_unsync_evict ?? 0)} evicted`,
        optional: true,
      },
      { counter: "shadow_resync", note: "out-of-sync L1s resynced", optional: true },
      {
        counter: "shadow_oos_fixup_add",
        note: `writable mappings remembered; ${formatInt(c.shadow_oos_fixup_evict ?? 0)} dropped`,
        optional: true,
      },
      {
        counter: "shadow_prealloc_1",
        note: "reclaims: unpin top levels",
        optional: true,
      },
      { counter: "shadow_prealloc_2", note: "reclaims: unhook all", optional: true },
      { counter: "shadow_alloc", note: `${formatInt(c.shadow_free ?? 0)} freed` },
      {
        counter: "shadow_pages_peak",
        note:
          `${formatSizeApprox(peak * PAGE_SIZE)} = ${formatPercent(peak, c.guest_frames ?? 0)} of RAM; ` +
          `pool ${formatInt(c.shadow_pool_pages ?? 0)}`,
      },
    ],
    ["shadow_fault", "shadow_alloc"],
  );
}

/** Hardware-assisted paging: the 2D walks' references and caches, the EPT. */
function hapGroup(d: DomainReport): Group {
  const c = d.counters;
  const rate = (hits: DomainCounterName, misses: DomainCounterName) => {
    const h = c[hits] ?? 0;
    return `${formatPercent(h, h + (c[misses] ?? 0))} of lookups hit`;
  };
  const eptPages = c.ept_pages ?? 0;
  return group(
    "HAP",
    c,
    [
      {
        counter: "ept_refs",
        note: `${formatPercent(c.ept_refs ?? 0, c.walk_refs ?? 0)} of walk references`,
      },
      { counter: "pwc_hits", note: rate("pwc_hits", "pwc_misses"), optional: true },
      { counter: "ept_pwc_hits", note: rate("ept_pwc_hits", "ept_pwc_misses"), optional: true },
      { counter: "ntlb_hits", note: rate("ntlb_hits", "ntlb_misses"), optional: true },
      { counter: "ept_fills", note: "EPT entries filled on violations" },
      { counter: "ept_invept", note: "INVEPTs after P2M changes", optional: true },
      { counter: "ept_splits", note: "2 MiB EPT leaves split", optional: true },
      {
        counter: "ept_pages",
        note: `${formatSizeApprox(eptPages * PAGE_SIZE)} = ${formatPercent(eptPages, c.guest_frames ?? 0)} of RAM`,
      },
    ],
    ["ept_refs", "ept_fills"],
  );
}

function memoryGroup(d: DomainReport): Group {
  const c = d.counters;
  const frames = c.guest_frames ?? 0;
  const used = c.guest_frames_used ?? 0;
  const pt = c.pt_pages ?? 0;
  return group(
    "memory",
    c,
    [
      { counter: "guest_frames", note: formatSizeApprox(frames * PAGE_SIZE) },
      {
        counter: "guest_frames_used",
        note: `${formatSizeApprox(used * PAGE_SIZE)}, ${formatPercent(used, frames)} of the guest`,
      },
      {
        counter: "pt_pages",
        note:
          `${formatSizeApprox(pt * PAGE_SIZE)}; ${formatInt(c.pt_pages_alloc ?? 0)} allocated, ` +
          `${formatInt(c.pt_pages_free ?? 0)} freed`,
      },
      { counter: "page_zero", note: "4KiB pages zeroed" },
      { counter: "page_copy", note: "4KiB pages copied", optional: true },
    ],
    ["guest_frames", "guest_frames_used", "pt_pages", "page_zero", "page_copy"],
  );
}

/** Cycles by event, largest first, each with its share and count x cycles per event. */
/** The work between accesses, and the field's rates per thousand instructions. */
function workGroup(d: DomainReport): Group {
  const c = d.counters;
  const r = d.rates;
  const rate = (x: number) => (x >= 10 ? x.toFixed(1) : x.toFixed(3));
  return group(
    "work",
    c,
    [
      {
        counter: "instructions",
        note: `CPI ${r.cpi.toFixed(2)} over the run, every cost included`,
      },
      {
        counter: "core_cycles",
        note: `CPI ${formatRatio(c.core_cycles, c.instructions)} of the work between accesses`,
      },
      { label: "page faults PKI", value: rate(r.page_faults_pki), note: "per 1,000 instructions" },
      { label: "TLB MPKI", value: rate(r.tlb_mpki), note: "TLB misses per 1,000 instructions" },
      { label: "walks PKI", value: rate(r.walks_pki), note: "page walks per 1,000 instructions" },
      { label: "exits PKI", value: rate(r.vmexits_pki), note: "VM exits per 1,000 instructions" },
    ],
    ["instructions"],
  );
}

function cyclesGroup(d: DomainReport): Group {
  const total = d.cycles.total;
  const rows: Row[] = [
    { label: "total", value: formatInt(total), note: `${d.cycles.seconds.toPrecision(3)} s` },
  ];
  const events = COST_EVENTS.map((event) => ({
    event,
    cycles: d.cycles.by_event[event] ?? 0,
    count: d.counters[COUNTER_NAMES[COST_COUNTERS[event]]] ?? 0,
  }))
    .filter((e) => e.cycles > 0)
    .sort((a, b) => b.cycles - a.cycles);
  for (const e of events) {
    // Costs may be fractional when a scenario overrides them.
    const each = e.count === 0 ? 0 : Math.round((100 * e.cycles) / e.count) / 100;
    const eachText = Number.isInteger(each) ? formatInt(each) : String(each);
    rows.push({
      label: e.event,
      value: formatInt(e.cycles),
      note: `${formatPercent(e.cycles, total)}, ${formatInt(e.count)} x ${eachText} cycle${each === 1 ? "" : "s"}`,
    });
  }
  return { title: "cycles", rows, any: total > 0 };
}
