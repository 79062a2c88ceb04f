/** `memvisor compare`: one scenario under several paging modes, side by side. */

import {
  type Comparison,
  compareModes,
  compareVarying,
  formatSizeApprox,
  PAGING_MODES,
  type PagingMode,
  type Variation,
} from "../api/index.js";
import { parseAccesses, parseSeed, parseVary } from "./args.js";
import { EXIT_CHECKS, EXIT_OK, UsageError } from "./errors.js";
import { formatInt, formatRatio, newTable } from "./format.js";
import { writeJson, writeOut } from "./output.js";

export interface CompareOptions {
  modes: string;
  seed?: string;
  accesses?: string;
  check?: boolean | "full";
  json?: boolean;
  vary?: string;
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

export function compareCommand(
  scenario: Parameters<typeof compareModes>[0],
  options: CompareOptions,
): number {
  const modes = parseModes(options.modes);
  const seed = options.seed === undefined ? undefined : parseSeed(options.seed);
  const accesses = options.accesses === undefined ? undefined : parseAccesses(options.accesses);
  if (options.vary !== undefined) {
    const { parameter, values } = parseVary(options.vary);
    const variation = compareVarying(scenario, modes, parameter, values, {
      seed,
      accesses,
      check: options.check ?? false,
    });
    const violations = variation.points.reduce(
      (s, p) => s + p.comparison.results.reduce((t, r) => t + r.report.checks.violations, 0),
      0,
    );
    if (options.json) writeJson(variation);
    else writeOut(formatVariation(variation, scenario.description));
    return violations > 0 ? EXIT_CHECKS : EXIT_OK;
  }
  const comparison = compareModes(scenario, modes, {
    seed,
    accesses,
    check: options.check ?? false,
  });
  const violations = comparison.results.reduce((s, r) => s + r.report.checks.violations, 0);
  if (options.json) {
    writeJson(comparison);
  } else {
    writeOut(formatComparison(comparison, scenario.description));
  }
  return violations > 0 ? EXIT_CHECKS : EXIT_OK;
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
      ? "every mode gave the guest the same page faults and the same data"
      : "WARNING: the modes disagree on what the guest saw (page faults or data read)",
  );
  return `${out.join("\n")}\n`;
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
  const base = v.modes[0];
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
    const value = v.parameter === "working_set" ? formatSizeApprox(p.value) : formatInt(p.value);
    table.push([
      value,
      ...results.map((r) =>
        r.mode === base
          ? formatRatio(r.cycles, r.user_accesses)
          : `${formatRatio(r.cycles, r.user_accesses)} (${r.overhead_pct >= 0 ? "+" : ""}${r.overhead_pct.toFixed(1)}%)`,
      ),
      ...(ranked ? [best] : []),
    ]);
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
  const disagree = v.points.filter((p) => !p.comparison.same_guest_view).map((p) => p.value);
  out.push(
    disagree.length === 0
      ? "at every value every mode gave the guest the same page faults and the same data"
      : `WARNING: the modes disagree on what the guest saw at ${v.parameter} ${disagree.join(", ")}`,
  );
  return `${out.join("\n")}\n`;
}
