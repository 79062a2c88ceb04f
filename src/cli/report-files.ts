/**
 * A report as files for other tools: its time series as CSV (one row per sample, a column per
 * series value, named as the JSON names it) and its counters as flat stats, one
 * `name value # description` line each (the shape of gem5's stats.txt).
 */

import {
  COST_EVENTS,
  COUNTER_DOCS,
  type DomainCounterName,
  HOST_COUNTER_DOCS,
  HOST_COUNTER_NAMES,
  type Report,
  SERIES_COUNTERS,
  walkRefsDoc,
} from "../api/index.js";
import type { Provenance } from "./provenance.js";

/** The host's series values, in their order in a sample. */
const HOST_SERIES = [
  "frames_free",
  "frames_used",
  "swapped_out",
  "pages_shared",
  "pages_sharing",
  "sharing_cycles",
] as const;

/**
 * The time series: a header `time,<domain>.cycles,<domain>.<counter>,...,host.<value>,...`, then
 * one row per sample (host columns only when the host is virtualized).
 */
export function seriesCsv(report: Report): string {
  const names = report.domains.map((d) => d.name);
  const domainColumns = ["cycles", ...SERIES_COUNTERS] as const;
  const hasHost = report.series.some((s) => s.host !== undefined);
  const header = [
    "time",
    ...names.flatMap((n) => domainColumns.map((c) => `${n}.${c}`)),
    ...(hasHost ? HOST_SERIES.map((c) => `host.${c}`) : []),
  ];
  const rows = report.series.map((s) => [
    s.time,
    ...names.flatMap((n) => domainColumns.map((c) => s.domains[n]?.[c] ?? 0)),
    ...(hasHost ? HOST_SERIES.map((c) => s.host?.[c] ?? 0) : []),
  ]);
  return `${[header, ...rows].map((r) => r.join(",")).join("\n")}\n`;
}

/** A stat's description: the counter's line, or the walk histogram's. */
function counterDoc(name: string): string {
  const walk = /^walk_refs_(\d+)$/.exec(name);
  if (walk) return walkRefsDoc(Number(walk[1]));
  return COUNTER_DOCS[name as keyof typeof COUNTER_DOCS] ?? "";
}

/** A number as stats print it: exactly (JavaScript's shortest form that reads back the same). */
function statValue(v: number): string {
  return String(v);
}

/**
 * Every number of the report, `name value # description`: the run, the host, then each domain's
 * counters, cycles by event, rates and processes (`<domain>.<counter>`), then the cost model.
 * Comment lines (#) first say what ran and how to run it again.
 */
export function formatStats(report: Report, prov: Provenance): string {
  const lines: [string, number, string][] = [];
  const add = (name: string, value: number, doc: string) => lines.push([name, value, doc]);
  add("sim_seconds", report.seconds, `simulated seconds at the CPU's clock (${report.cpu.hz} Hz)`);
  add("sim_cpu_hz", report.cpu.hz, `the clock of the CPU profile ${report.cpu.profile}`);
  add("seed", report.seed, "the random seed");
  add("host.frames_total", report.host.frames_total, "host frames");
  add("host.frames_used", report.host.frames_used, "host frames in use at the end");
  add("host.frames_used_peak", report.host.frames_used_peak, "host frames in use at the peak");
  for (const name of HOST_COUNTER_NAMES) {
    const v = report.host.counters[name];
    if (v !== undefined) add(`host.${name}`, v, HOST_COUNTER_DOCS[name]);
  }
  add("checks.violations", report.checks.violations, "invariant violations found (--check)");
  for (const d of report.domains) {
    for (const [name, v] of Object.entries(d.counters)) {
      if (v !== undefined) add(`${d.name}.${name}`, v, counterDoc(name as DomainCounterName));
    }
    add(`${d.name}.cycles.total`, d.cycles.total, "the domain's simulated cycles");
    for (const event of COST_EVENTS) {
      const v = d.cycles.by_event[event];
      if (v) add(`${d.name}.cycles.${event}`, v, `cycles of ${event} events`);
    }
    for (const [rate, v] of Object.entries(d.rates)) {
      add(`${d.name}.rates.${rate}`, v, RATE_DOCS[rate] ?? "");
    }
    for (const p of d.processes) {
      const at = `${d.name}.processes.${p.name}`;
      add(`${at}.started`, p.started, "processes started");
      add(`${at}.alive`, p.alive, "processes alive at the end");
      add(`${at}.accesses`, p.accesses, "user accesses made");
      add(`${at}.guest_page_faults`, p.guest_page_faults, "true page faults taken");
    }
  }
  for (const event of COST_EVENTS) {
    add(`cost_model.${event}`, report.cost_model[event], `cycles one ${event} event costs`);
  }
  const width = Math.max(...lines.map(([n]) => n.length)) + 2;
  const valueWidth = Math.max(...lines.map(([, v]) => statValue(v).length)) + 2;
  const head = [
    `# memvisor ${report.memvisor} stats: scenario ${report.scenario}, seed ${report.seed}, ` +
      `${report.ending.status}`,
    `# commit ${prov.commit ?? "unknown (not a git checkout)"}; wall time ${prov.wall_seconds} s; ` +
      `command: ${prov.command}`,
  ];
  const body = lines.map(
    ([n, v, doc]) => `${n.padEnd(width)}${statValue(v).padEnd(valueWidth)}# ${doc}`,
  );
  return `${[...head, ...body].join("\n")}\n`;
}

const RATE_DOCS: Record<string, string> = {
  cpi: "cycles per instruction, every cost included",
  page_faults_pki: "guest page faults per thousand instructions",
  tlb_mpki: "TLB misses per thousand instructions",
  walks_pki: "page walks per thousand instructions",
  vmexits_pki: "VM exits per thousand instructions",
};
