/** `memvisor compare`: one scenario under several paging modes, side by side. */

import {
  type Comparison,
  compareTasks,
  comparisonOf,
  formatSizeApprox,
  PAGING_MODES,
  type PagingMode,
  parameterProblem,
  type Scenario,
  type Variation,
  variationOf,
  varyingTasks,
} from "../api/index.js";
import { runAll } from "../api/node.js";
import { parseAccesses, parseJobs, parseSeed, parseVary } from "./args.js";
import { EXIT_CHECKS, EXIT_USAGE, runsCode, UsageError } from "./errors.js";
import { formatInt, formatRatio, newTable } from "./format.js";
import { writeErr, writeJson, writeOut } from "./output.js";
import { withProvenance } from "./provenance.js";
import { endingLines } from "./report-table.js";

export interface CompareOptions {
  modes: string;
  seed?: string;
  accesses?: string;
  check?: boolean | "full";
  json?: boolean;
  vary?: string;
  jobs?: string;
}

export function parseModes(text: string): PagingMode[] {
  const modes = text.split(",").map((m) => m.trim());
  for (const m of modes) {
    if (!(PAGING_MODES as readonly string[]).includes(m)) {
      throw new UsageError(
        `--modes: expected a list of ${PAGING_MODES.join(", ")}, got ${JSON.stringify(m)}`,
      );
    }
  }
  if (new Set(modes).size !== modes.length)
    throw new UsageError(`--modes: a mode is listed twice in "${text}"`);
  return modes as PagingMode[];
}

/**
 * Runs the command; returns the exit code: 3 for violations, else 2 when a mode could not run the
 * scenario (the others are printed), else 5 for an unexpected early end, else 0.
 */
export async function compareCommand(scenario: Scenario, options: CompareOptions): Promise<number> {
  const modes = parseModes(options.modes);
  const seed = options.seed === undefined ? undefined : parseSeed(options.seed);
  const accesses = options.accesses === undefined ? undefined : parseAccesses(options.accesses);
  const runOptions = { seed, accesses, check: options.check ?? false };
  const jobs = parseJobs(options.jobs);
  let comparisons: Comparison[];
  if (options.vary !== undefined) {
    const { parameter, values } = parseVary(options.vary);
    const absent = parameterProblem(scenario, parameter);
    if (absent !== "") throw new UsageError(`--vary ${parameter}: ${absent}`);
    // The runs go to every core; the report is assembled in their order, as a serial run's.
    const tasks = varyingTasks(scenario, modes, parameter, values, runOptions);
    const outcomes = await runAll(tasks, jobs);
    const variation = variationOf(scenario, modes, parameter, values, outcomes);
    comparisons = variation.points.map((p) => p.comparison);
    if (options.json) writeJson(withProvenance(variation));
    else writeOut(formatVariation(variation, scenario.description));
  } else {
    const tasks = compareTasks(scenario, modes, runOptions);
    const comparison = comparisonOf(scenario, modes, await runAll(tasks, jobs));
    comparisons = [comparison];
    if (options.json) writeJson(withProvenance(comparison));
    else writeOut(formatComparison(comparison, scenario.description));
  }
  return warnings(comparisons, options.json ?? false);
}

/**
 * On stderr: what each mode dropped from the scenario; with --json, whose text has no place for
 * them, the runs that ended early and the modes that could not run. Returns the exit code.
 */
function warnings(comparisons: Comparison[], json: boolean): number {
  const results = comparisons.flatMap((c) => c.results);
  const said = new Set<string>();
  const once = (text: string) => {
    if (!said.has(text)) writeErr(text);
    said.add(text);
  };
  for (const r of results) {
    const dropped = r.report.dropped_settings;
    if (dropped.length > 0) {
      once(`warning: mode ${r.mode} drops what the scenario sets: ${dropped.join("; ")}`);
    }
  }
  for (const r of json ? results : []) {
    if (r.report.ending.status === "early" && !r.report.ending.may_end_early) {
      once(`mode ${r.mode}: ${endingLines(r.report).join("\n")}`);
    }
  }
  const notRun = comparisons.flatMap((c) => c.not_run);
  if (json) for (const n of notRun) once(`mode ${n.mode} could not run the scenario: ${n.reason}`);
  // Invariant violations are the worst news: they win over a mode that could not run.
  const code = runsCode(results.map((r) => r.report));
  return code !== EXIT_CHECKS && notRun.length > 0 ? EXIT_USAGE : code;
}

export function formatComparison(c: Comparison, description: string): string {
  const out = [`memvisor ${c.memvisor} · compare · scenario ${c.scenario} · seed ${c.seed}`];
  if (description !== "") out.push(description);
  const base = c.results[0];
  const table = newTable({
    head: ["", ...c.results.map((r) => r.mode)],
    colAligns: ["left", ...c.results.map(() => "right" as const)],
  });
  const row = (label: string, f: (r: Comparison["results"][number]) => string) =>
    table.push([label, ...c.results.map(f)]);
  row("user accesses", (r) => formatInt(r.user_accesses));
  row("cycles", (r) => formatInt(r.cycles));
  if (c.results.some((r) => r.host_thread_cycles > 0))
    row("  of the sharing scanner", (r) => formatInt(r.host_thread_cycles));
  row(`overhead vs ${base.mode}`, (r) =>
    r === base ? "-" : `${r.overhead_pct >= 0 ? "+" : ""}${r.overhead_pct.toFixed(1)}%`,
  );
  row("cycles per access", (r) => formatRatio(r.cycles, r.user_accesses));
  row("guest page faults", (r) => formatInt(r.guest_page_faults));
  row("TLB misses", (r) => formatInt(r.tlb_misses));
  row("walk refs per walk", (r) => formatRatio(r.walk_refs, r.walks));
  row("VM exits", (r) => formatInt(r.vmexits.total));
  for (const reason of ["pf", "cr3", "invlpg", "ept_violation", "hypercall"]) {
    if (c.results.some((r) => r.vmexits[reason] > 0))
      row(`  ${reason}`, (r) => formatInt(r.vmexits[reason]));
  }
  row("shadow faults", (r) => formatInt(r.shadow_fault));
  row("emulated PT writes", (r) => formatInt(r.shadow_emulate_write));
  row("VMM memory (peak)", (r) => formatSizeApprox(r.vmm_memory_bytes));
  row("  shadow pages", (r) => formatInt(r.shadow_pages_peak));
  row("  EPT pages", (r) => formatInt(r.ept_pages));
  row("  P2M pages", (r) => formatInt(r.p2m_pages));
  out.push(table.toString());
  out.push(
    c.same_guest_view
      ? `every mode${c.not_run.length > 0 ? " that ran" : ""} gave the guest the same page faults and the same data`
      : "WARNING: the modes disagree on what the guest saw (page faults or data read)",
  );
  out.push(...notes(c));
  return `${out.join("\n")}\n`;
}

/** The modes that ended early (and why) or could not run (and why). */
function notes(c: Comparison): string[] {
  const out: string[] = [];
  for (const r of c.results) {
    const lines = endingLines(r.report);
    if (lines.length > 0) out.push(`${r.mode}: ${lines[0]}`, ...lines.slice(1));
  }
  for (const n of c.not_run) out.push(`${n.mode}: NOT RUN: ${n.reason}`);
  return out;
}

/**
 * One row per value of the varied parameter: each mode's cycles per user access and its
 * overhead against the first mode, and the cheapest of the others; then where that changes.
 */
export function formatVariation(v: Variation, description: string): string {
  const first = v.points[0].comparison;
  const out = [
    `memvisor ${v.memvisor} · compare · scenario ${v.scenario} · seed ${first.seed} · varying ${v.parameter}`,
  ];
  if (description !== "") out.push(description);
  // The contenders: the virtualized modes (native is the reference, not a way to run a guest).
  const contenders = v.modes.filter((m) => m !== "native");
  const ranked = contenders.length >= 2;
  const table = newTable({
    head: [
      v.parameter,
      ...v.modes.map((m) => `${m} cycles/access`),
      ...(ranked ? ["cheapest"] : []),
    ],
    colAligns: ["right", ...v.modes.map(() => "right" as const), "left"],
  });
  const cheapest: string[] = [];
  for (const p of v.points) {
    const results = p.comparison.results;
    const cycles = (mode: string) =>
      results.find((r) => r.mode === mode)?.cycles ?? Number.POSITIVE_INFINITY;
    const best = contenders.reduce((a, b) => (cycles(b) < cycles(a) ? b : a), contenders[0]);
    cheapest.push(best);
    const value =
      v.parameter === "working_set"
        ? formatSizeApprox(p.value)
        : Number.isInteger(p.value)
          ? formatInt(p.value)
          : String(p.value);
    const cell = (mode: PagingMode) => {
      const r = results.find((x) => x.mode === mode);
      if (r === undefined) return "not run";
      const perAccess = formatRatio(r.cycles, r.user_accesses);
      if (r === results[0]) return perAccess;
      return `${perAccess} (${r.overhead_pct >= 0 ? "+" : ""}${r.overhead_pct.toFixed(1)}%)`;
    };
    table.push([value, ...v.modes.map(cell), ...(ranked ? [best] : [])]);
  }
  out.push(table.toString());
  if (ranked) {
    const changes: string[] = [];
    for (let i = 1; i < cheapest.length; i++) {
      if (cheapest[i] !== cheapest[i - 1]) {
        changes.push(
          `${cheapest[i]} overtakes ${cheapest[i - 1]} between ${v.parameter} ${v.points[i - 1].value} and ${v.points[i].value}`,
        );
      }
    }
    out.push(
      changes.length > 0
        ? `crossover: ${changes.join("; ")}`
        : `no crossover: ${cheapest[0]} is the cheapest of ${contenders.join(", ")} at every value`,
    );
  }
  for (const p of v.points) {
    for (const line of notes(p.comparison)) out.push(`${v.parameter} ${p.value}: ${line}`);
  }
  const disagree = v.points.filter((p) => !p.comparison.same_guest_view).map((p) => p.value);
  out.push(
    disagree.length === 0
      ? "at every value every mode gave the guest the same page faults and the same data"
      : `WARNING: the modes disagree on what the guest saw at ${v.parameter} ${disagree.join(", ")}`,
  );
  return `${out.join("\n")}\n`;
}
