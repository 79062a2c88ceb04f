/**
 * The human-readable form of a Report: a header, then per domain a table of the counters that
 * matter grouped by layer (counter-groups.ts) and a table of its processes. Everything printed
 * comes from the report, so the same run prints the same text.
 */

import { type DomainReport, formatSizeApprox, PAGE_SIZE, type Report } from "../api/index.js";
import { counterGroups } from "./counter-groups.js";
import { formatInt, newTable } from "./format.js";

export function formatReport(report: Report, description = ""): string {
  const out: string[] = [];
  const modes = [...new Set(report.domains.map((d) => d.mode))];
  const modeText =
    modes.length === 1
      ? `mode ${modes[0]}`
      : `modes ${report.domains.map((d) => `${d.name} ${d.mode}`).join(", ")}`;
  out.push(
    `memvisor ${report.memvisor} · scenario ${report.scenario} · seed ${report.seed} · ${modeText}`,
  );
  if (description !== "") out.push(description);
  out.push(...endingLines(report));
  const host = report.host;
  out.push(
    `${formatInt(host.counters.user_accesses ?? 0)} user accesses in ` +
      `${formatInt(host.counters.cycles ?? 0)} simulated cycles ` +
      `(${formatSeconds(report.seconds)} on ${report.cpu.profile})`,
  );
  const swapped = host.counters.host_swapped_out ?? 0;
  out.push(
    `host memory: ${formatInt(host.frames_used)} of ${formatInt(host.frames_total)} frames in use ` +
      `(${formatSizeApprox(host.frames_used * PAGE_SIZE)}), peak ${formatInt(host.frames_used_peak)}` +
      (swapped > 0 ? `; ${formatInt(swapped)} pages swapped out` : ""),
  );
  if (host.counters.pages_shared !== undefined) {
    const c = host.counters;
    out.push(
      `page sharing: ${formatInt(c.pages_shared ?? 0)} shared frames, ` +
        `${formatInt(c.pages_sharing ?? 0)} more pages on them: ${formatSizeApprox(c.memory_saved_bytes ?? 0)} saved ` +
        `(${formatInt(c.zero_pages_sharing ?? 0)} zero pages)`,
      `  scanner: ${(c.full_scans ?? 0) > 0 ? `${formatInt(c.full_scans ?? 0)} full scans, ` : ""}` +
        `${formatInt(c.sharing_pages_scanned ?? 0)} pages scanned, ${formatInt(c.sharing_volatile ?? 0)} ` +
        `volatile, ${formatInt(c.pages_unshared ?? 0)} candidates; ${formatInt(c.sharing_cycles ?? 0)} cycles`,
    );
  }
  for (const domain of report.domains) {
    const memory = formatSizeApprox((domain.counters.guest_frames ?? 0) * PAGE_SIZE);
    const o = domain.overcommit;
    const policies = o
      ? `; ${o.balloon_driver ? "balloon driver" : "no balloon driver"}, on_touch ${o.on_touch}, ` +
        `${o.target_policy} targets${o.host_swap ? ", host swapping" : ""}`
      : "";
    out.push("", `domain ${domain.name} (${domain.mode}, ${memory}${policies})`);
    if (domain.crashed !== undefined) out.push(`CRASHED by the VMM: ${domain.crashed}`);
    out.push(counterTable(domain), "", processTable(domain));
  }
  if (report.checks.enabled) out.push("", checksLine(report));
  return `${out.join("\n")}\n`;
}

/**
 * How the run ended, when it did not make its accesses: "ENDED EARLY" and each stopped domain's
 * reason, or "PARTIAL REPORT"; nothing for a complete run.
 */
export function endingLines(report: Report): string[] {
  const e = report.ending;
  const made = `${formatInt(report.host.counters.user_accesses)} of ${formatInt(e.planned_accesses)} user accesses`;
  const warmup = e.during_warmup ? " (in the warm-up)" : "";
  if (e.status === "partial") {
    return [`PARTIAL REPORT: the run was stopped after ${made}${warmup}`];
  }
  if (e.status === "complete") return [];
  const expected = e.may_end_early ? "; the scenario expects it (run.may_end_early)" : "";
  return [
    `ENDED EARLY after ${made}${warmup}${expected}:`,
    ...e.reasons.map((r) => `  domain ${r.domain}: ${r.detail}`),
  ];
}

/** "invariant checks: 0 violations", or the count and the first. */
export function checksLine(report: Report): string {
  const { violations, first } = report.checks;
  const count = `${formatInt(violations)} violation${violations === 1 ? "" : "s"}`;
  return first === undefined
    ? `invariant checks: ${count}`
    : `invariant checks: ${count}; first: ${first}`;
}

function counterTable(domain: DomainReport): string {
  const groups = counterGroups(domain);
  // Each group is one row of multi-line cells, so separators fall between groups only.
  const table = newTable({
    colAligns: ["left", "left", "right", "left"],
    style: { compact: false },
  });
  for (const g of groups) {
    if (!g.any) continue;
    table.push([
      g.title,
      g.rows.map((r) => r.label).join("\n"),
      g.rows.map((r) => r.value).join("\n"),
      g.rows.map((r) => r.note).join("\n"),
    ]);
  }
  return table.toString();
}

function processTable(domain: DomainReport): string {
  const table = newTable({
    head: ["process", "kind", "started", "alive", "accesses", "faults", "killed"],
    colAligns: ["left", "left", "right", "right", "right", "right", "left"],
  });
  for (const p of domain.processes) {
    const killed = [
      p.segv > 0 ? `${formatInt(p.segv)} segv` : "",
      p.oom_killed > 0 ? `${formatInt(p.oom_killed)} oom` : "",
    ].filter((s) => s !== "");
    table.push([
      p.name,
      p.kind,
      formatInt(p.started),
      formatInt(p.alive),
      formatInt(p.accesses),
      formatInt(p.guest_page_faults),
      killed.length === 0 ? "0" : killed.join(", "),
    ]);
  }
  return table.toString();
}

/** Simulated time in the unit that reads best: "1.23 s", "45.6 ms", "789 us". */
export function formatSeconds(seconds: number): string {
  if (seconds >= 1) return `${seconds.toFixed(2)} s`;
  if (seconds >= 1e-3) return `${(seconds * 1e3).toFixed(1)} ms`;
  return `${(seconds * 1e6).toFixed(0)} us`;
}
