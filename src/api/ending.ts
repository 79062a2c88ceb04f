/**
 * How a run ended, for its report: complete, early or partial, and for an early end why each
 * domain short of its share stopped, in words a report can print: the VMM crashed it, its
 * processes are all gone (and how each went), or those left cannot run. The run loop knows only
 * that every domain went idle; this says why.
 */

import type { ProcessSpec, RunSpec } from "../config/scenario.js";
import type { DomainRuntime } from "./domain.js";
import type { EndingReason, ProcessReport, RunEnding } from "./types.js";

/** The report's ending: `stopped` are the domains short of their share when the run ended. */
export function runEnding(
  status: RunEnding["status"],
  run: RunSpec,
  duringWarmup: boolean,
  stopped: DomainRuntime[],
): RunEnding {
  return {
    status,
    planned_accesses: run.accesses,
    during_warmup: status !== "complete" && duringWarmup,
    may_end_early: run.mayEndEarly ?? false,
    reasons: status === "early" ? stopped.map(stopReason) : [],
  };
}

export function stopReason(d: DomainRuntime): EndingReason {
  const domain = d.spec.name;
  if (d.crashed !== "") {
    const when = d.crashedAtBoot ? " at boot" : "";
    return { domain, cause: "crashed", detail: `the VMM crashed it${when}: ${d.crashed}` };
  }
  const processes = d.report().processes;
  const alive = processes.reduce((n, p) => n + p.alive, 0);
  if (alive > 0) {
    const names = processes.filter((p) => p.alive > 0).map((p) => `${p.name} (${p.alive})`);
    return {
      domain,
      cause: "blocked",
      detail: `${plural(alive, "process", "processes")} left, none can run: ${names.join(", ")}`,
    };
  }
  const fates = processes
    .map((p, i) => fate(p, d.spec.processes[i]))
    .filter((f) => f !== "")
    .join("; ");
  return { domain, cause: "exited", detail: `every process is gone: ${fates}` };
}

/** "db: 1 killed by the OOM killer", "sort: 2 came to the end of the trace (no loop)". */
function fate(p: ProcessReport, spec: ProcessSpec): string {
  const exited = p.started - p.alive - p.segv - p.oom_killed;
  const parts: string[] = [];
  if (exited > 0) parts.push(`${exited} ${normalExit(spec)}`);
  if (p.oom_killed > 0) parts.push(`${p.oom_killed} killed by the OOM killer`);
  if (p.segv > 0) parts.push(`${p.segv} killed by a segmentation fault`);
  return parts.length === 0 ? "" : `${p.name}: ${parts.join(", ")}`;
}

/** How a process of this spec exits by itself. */
function normalExit(spec: ProcessSpec): string {
  if (spec.kind === "trace") return "came to the end of the trace (no loop)";
  if (spec.kind === "database" && spec.lifetime > 0) {
    return `reached the lifetime (${spec.lifetime} accesses)`;
  }
  return "exited";
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}
