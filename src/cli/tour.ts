/**
 * `memvisor run` with no scenario, --mode, --from, --json or --format (what `npm start` shows
 * first): the default scenario under shadow paging beside native, the comparison's table
 * (compare's), a line on the overhead and on each shadow-paging counter, and the commands to try
 * next. A shorter run than the scenario's, so that it takes seconds; --seed, --accesses and
 * --check apply as to any run. With any of those options, `run` prints the default scenario's
 * report as it always has.
 */

import {
  COST_EVENTS,
  type Comparison,
  type CostEvent,
  compareModes,
  formatSizeApprox,
  type ModeResult,
  PAGE_SIZE,
  type Scenario,
} from "../api/index.js";
import { formatComparison } from "./compare.js";
import { EXIT_USAGE, runsCode } from "./errors.js";
import { formatInt } from "./format.js";
import { writeOut } from "./output.js";

/** User accesses of the first run: a tenth of the default scenario's, a few seconds. */
export const TOUR_ACCESSES = 200_000;

/** The commands the tour suggests, each with what it shows. */
export const TRY_NEXT: readonly [string, string][] = [
  ["memvisor compare --modes native,shadow,hap,pv", "the four ways side by side, the whole run"],
  ["memvisor compare fork-storm", "shadow paging at its worst: short-lived processes"],
  ["memvisor run mixed --mode shadow", "one run's whole report (--json, --format stats)"],
  ["memvisor scenarios", "the other built-in scenarios"],
  ["memvisor ui", "the web page: watch a translation happen"],
];

/** What the costliest events are called in the overhead's line. */
const EVENT_WORDS: Partial<Record<CostEvent, string>> = {
  vmexit: "VM exits",
  shadow_fault: "shadow faults",
  emulate: "emulated page-table writes",
  shadow_unsync: "out-of-sync L1 snapshots",
  shadow_resync: "resyncs",
  p2m_populate: "first touches of guest frames",
  tlb_flush: "TLB flushes",
  shadow_alloc: "shadow allocations",
};

/** Cycles by event, summed over a result's domains. */
function byEvent(r: ModeResult): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of r.report.domains) {
    for (const e of COST_EVENTS) out[e] = (out[e] ?? 0) + (d.cycles.by_event[e] ?? 0);
  }
  return out;
}

/** The events that cost shadow paging the most cycles more than native, costliest first. */
function extraCosts(native: ModeResult, shadow: ModeResult): [CostEvent, number][] {
  const a = byEvent(native);
  const b = byEvent(shadow);
  return COST_EVENTS.map((e): [CostEvent, number] => [e, (b[e] ?? 0) - (a[e] ?? 0)])
    .filter(([, extra]) => extra > 0)
    .sort((x, y) => y[1] - x[1]);
}

/** A domain counter summed over a result's domains. */
function sum(r: ModeResult, name: "shadow_fault_fixed" | "shadow_fault_bail_real_fault"): number {
  return r.report.domains.reduce((s, d) => s + (d.counters[name] ?? 0), 0);
}

/** The lines under the table: the overhead and each shadow counter, one line each. */
export function explanations(c: Comparison): string[] {
  const [native, shadow] = c.results;
  const pct = `${shadow.overhead_pct >= 0 ? "+" : ""}${shadow.overhead_pct.toFixed(1)}%`;
  const top = extraCosts(native, shadow)
    .slice(0, 2)
    .map(([e]) => EVENT_WORDS[e] ?? e);
  const rows: [string, string][] = [
    ["overhead", `${pct} cycles against native, most of them ${top.join(" and ")}`],
    [
      "shadow_fault",
      `${formatInt(shadow.shadow_fault)} #PF exits: ${formatInt(sum(shadow, "shadow_fault_fixed"))} ` +
        `hidden (the VMM's), ${formatInt(sum(shadow, "shadow_fault_bail_real_fault"))} true ` +
        "(the guest's)",
    ],
    [
      "shadow_emulate_write",
      `${formatInt(shadow.shadow_emulate_write)} writes to the guest's page tables (read-only ` +
        "to it), emulated",
    ],
    [
      "vmexits",
      `${formatInt(shadow.vmexits.total)} entries into the VMM: ${formatInt(shadow.vmexits.pf)} ` +
        `#PFs, ${formatInt(shadow.vmexits.cr3)} CR3 writes, ${formatInt(shadow.vmexits.invlpg)} INVLPGs`,
    ],
    [
      "shadow_pages_peak",
      `${formatInt(shadow.shadow_pages_peak)} (${formatSizeApprox(shadow.shadow_pages_peak * PAGE_SIZE)}) ` +
        "shadow tables at the peak: the memory it costs",
    ],
  ];
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  return rows.map(([label, text]) => `  ${label.padEnd(width)}${text}`);
}

/** The tour's text, from a comparison of native and shadow. */
export function formatTour(c: Comparison, scenario: Scenario, planned: number): string {
  const out = [
    formatComparison(c, scenario.description).trimEnd(),
    "",
    `The same guest work twice (${formatInt(c.results[0].user_accesses)} user accesses of the ` +
      `scenario's ${formatInt(planned)}):`,
    "on the bare hardware (native), and under Xen-style shadow paging, where the VMM builds",
    "the tables the hardware walks from the guest's own, which it write-protects:",
    "",
    ...explanations(c),
    "",
    "Try next:",
  ];
  const width = Math.max(...TRY_NEXT.map(([command]) => command.length)) + 2;
  for (const [command, what] of TRY_NEXT) out.push(`  ${command.padEnd(width)}${what}`);
  return `${out.join("\n")}\n`;
}

/** Runs the tour on the default scenario; returns the exit code (as compare's). */
export function tourCommand(
  scenario: Scenario,
  options: { seed?: number; accesses?: number; check: boolean | "full" },
): number {
  const c = compareModes(scenario, ["native", "shadow"], {
    seed: options.seed,
    accesses: options.accesses ?? TOUR_ACCESSES,
    check: options.check,
  });
  if (c.results.length < 2) {
    // Shadow paging could not run the scenario: the table says why.
    writeOut(formatComparison(c, scenario.description));
    return EXIT_USAGE;
  }
  writeOut(formatTour(c, scenario, scenario.run.accesses));
  return runsCode(c.results.map((r) => r.report));
}
