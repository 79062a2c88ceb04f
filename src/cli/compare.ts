/** `memvisor compare`: one scenario under several paging modes, side by side. */

import { type Comparison, compareModes } from "../api/compare.js";
import type { PagingMode } from "../api/types.js";
import { formatSizeApprox } from "../workload/scenario-load.js";
import { PAGING_MODES } from "../workload/scenario-schema.js";
import { parseAccesses, parseSeed } from "./args.js";
import { EXIT_CHECKS, EXIT_OK, UsageError } from "./errors.js";
import { formatInt, formatRatio, newTable } from "./format.js";

export interface CompareOptions {
  modes: string;
  seed?: string;
  accesses?: string;
  check?: boolean;
  json?: boolean;
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
  const comparison = compareModes(scenario, modes, {
    seed,
    accesses,
    check: options.check ?? false,
  });
  const violations = comparison.results.reduce((s, r) => s + r.report.checks.violations, 0);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(comparison, null, 2)}\n`);
  } else {
    process.stdout.write(formatComparison(comparison, scenario.description));
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
  row(`overhead vs ${base.mode}`, (r) =>
    r === base ? "-" : `${r.overhead_pct >= 0 ? "+" : ""}${r.overhead_pct.toFixed(1)}%`,
  );
  row("cycles per access", (r) => formatRatio(r.cycles, r.user_accesses));
  row("guest page faults", (r) => formatInt(r.guest_page_faults));
  row("TLB misses", (r) => formatInt(r.tlb_misses));
  row("walk refs per miss", (r) => formatRatio(r.walk_refs, r.tlb_misses));
  row("VM exits", (r) => formatInt(r.vmexits.total));
  for (const reason of ["pf", "cr3", "invlpg", "ept_violation", "hypercall"]) {
    if (c.results.some((r) => r.vmexits[reason] > 0))
      row(`  ${reason}`, (r) => formatInt(r.vmexits[reason]));
  }
  row("shadow faults", (r) => formatInt(r.shadow_fault));
  row("emulated PT writes", (r) => formatInt(r.shadow_emulate_write));
  row("VMM memory (peak)", (r) => formatSizeApprox(r.vmm_memory_bytes));
  out.push(table.toString());
  out.push(
    c.same_guest_view
      ? "every mode gave the guest the same page faults and the same data"
      : "WARNING: the modes disagree on what the guest saw (page faults or data read)",
  );
  return `${out.join("\n")}\n`;
}
