/** `memvisor sweep`: the scenario's first domain cloned 1..N times, memory saved against N. */

import { formatSizeApprox, type Scenario, type Sweep, sweepOf, sweepTasks } from "../api/index.js";
import { runAll } from "../api/node.js";
import { parseAccesses, parseDomains, parseJobs, parseSeed } from "./args.js";
import { runsCode } from "./errors.js";
import { formatInt, newTable } from "./format.js";
import { writeErr, writeJson, writeOut } from "./output.js";
import { withProvenance } from "./provenance.js";
import { endingLines } from "./report-table.js";

export interface SweepOptions {
  domains: string;
  seed?: string;
  accesses?: string;
  check?: boolean | "full";
  json?: boolean;
  jobs?: string;
}

export async function sweepCommand(scenario: Scenario, options: SweepOptions): Promise<number> {
  const sweepOptions = {
    seed: options.seed === undefined ? undefined : parseSeed(options.seed),
    accessesPerDomain: options.accesses === undefined ? undefined : parseAccesses(options.accesses),
    check: options.check ?? false,
  };
  const jobs = parseJobs(options.jobs);
  // The runs go to every core; the sweep is assembled in their order, as a serial run's.
  const tasks = sweepTasks(scenario, parseDomains(options.domains), sweepOptions);
  const sweep = sweepOf(scenario, sweepOptions, await runAll(tasks, jobs));
  if (options.json) {
    writeJson(withProvenance(sweep));
    for (const r of sweep.results) {
      const lines = endingLines(r.report);
      if (lines.length > 0 && !r.report.ending.may_end_early) {
        writeErr(`${domainsText(r.domains)}: ${lines.join("\n")}`);
      }
    }
  } else {
    writeOut(formatSweep(sweep, scenario.description));
  }
  return runsCode(sweep.results.map((r) => r.report));
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
  for (const r of s.results) {
    for (const line of endingLines(r.report)) out.push(`${domainsText(r.domains)}: ${line}`);
  }
  out.push(
    "shared: shared frames; sharing: pages mapped to them beyond the first (the frames saved);",
    "saved %: of the memory the guests would hold without sharing; zero: saved pages that are zero",
  );
  return `${out.join("\n")}\n`;
}

function domainsText(n: number): string {
  return `${n} domain${n === 1 ? "" : "s"}`;
}
