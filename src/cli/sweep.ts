/** `memvisor sweep`: the scenario's first domain cloned 1..N times, memory saved against N. */

import { formatSizeApprox, type Scenario, type Sweep, sweepDomains } from "../api/index.js";
import { parseAccesses, parseDomains, parseSeed } from "./args.js";
import { EXIT_CHECKS, EXIT_OK } from "./errors.js";
import { formatInt, newTable } from "./format.js";
import { writeJson, writeOut } from "./output.js";

export interface SweepOptions {
  domains: string;
  seed?: string;
  accesses?: string;
  check?: boolean | "full";
  json?: boolean;
}

export function sweepCommand(scenario: Scenario, options: SweepOptions): number {
  const sweep = sweepDomains(scenario, parseDomains(options.domains), {
    seed: options.seed === undefined ? undefined : parseSeed(options.seed),
    accessesPerDomain: options.accesses === undefined ? undefined : parseAccesses(options.accesses),
    check: options.check ?? false,
  });
  const violations = sweep.results.reduce((s, r) => s + r.report.checks.violations, 0);
  if (options.json) writeJson(sweep);
  else writeOut(formatSweep(sweep, scenario.description));
  return violations > 0 ? EXIT_CHECKS : EXIT_OK;
}

export function formatSweep(s: Sweep, description: string): string {
  const out = [
    `memvisor ${s.memvisor} · sweep of domains · scenario ${s.scenario} · seed ${s.seed}`,
  ];
  if (description !== "") out.push(description);
  const table = newTable({
    head: [
      "domains",
      "guest memory",
      "host in use",
      "shared",
      "sharing",
      "saved",
      "saved %",
      "zero",
    ],
    colAligns: ["right", "right", "right", "right", "right", "right", "right", "right"],
  });
  for (const r of s.results) {
    table.push([
      formatInt(r.domains),
      formatSizeApprox(r.guest_memory_bytes),
      formatSizeApprox(r.frames_used * 4096),
      formatInt(r.pages_shared),
      formatInt(r.pages_sharing),
      formatSizeApprox(r.memory_saved_bytes),
      `${r.saved_pct.toFixed(1)}%`,
      formatInt(r.zero_pages_sharing),
    ]);
  }
  out.push(table.toString());
  out.push(
    "shared: shared frames; sharing: pages mapped to them beyond the first (the frames saved);",
    "saved %: of the memory the guests would hold without sharing; zero: saved pages that are zero",
  );
  return `${out.join("\n")}\n`;
}
