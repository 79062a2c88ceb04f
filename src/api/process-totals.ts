/**
 * A domain's processes in its report: per ProcessSpec, the figures of every process it started
 * (its instances and, for a build, every forked child), those retired added up as they go and
 * the live ones added at report time.
 */

import type { ProcessSpec } from "../config/scenario.js";
import type { ProcessDriver } from "../workload/driver.js";
import type { ProcessReport } from "./types.js";

export class ProcessTotals {
  /** Totals of retired processes, by spec name. */
  private readonly retired = new Map<string, ProcessReport>();
  /** Processes started, by spec name. */
  private readonly startedBy = new Map<string, number>();

  /** A process of spec `name` started. */
  started(name: string): void {
    this.startedBy.set(name, (this.startedBy.get(name) ?? 0) + 1);
  }

  /** A process left the run: its figures join its spec's totals. */
  retire(driver: ProcessDriver): void {
    addProcess(totalsIn(this.retired, driver.spec.name, driver.spec.kind), driver);
  }

  /** One total per spec, in the specs' order: the retired processes and the `live` ones. */
  report(specs: readonly ProcessSpec[], live: Iterable<ProcessDriver>): ProcessReport[] {
    const totals = new Map<string, ProcessReport>();
    for (const [name, r] of this.retired) totals.set(name, { ...r });
    for (const driver of live)
      addProcess(totalsIn(totals, driver.spec.name, driver.spec.kind), driver);
    return specs.map((p) => {
      const t = totalsIn(totals, p.name, p.kind);
      t.started = this.startedBy.get(p.name) ?? 0;
      return t;
    });
  }
}

/** The totals of processes named `name` in `map`, created empty on first use. */
function totalsIn(
  map: Map<string, ProcessReport>,
  name: string,
  kind: ProcessReport["kind"],
): ProcessReport {
  let total = map.get(name);
  if (!total) {
    total = {
      name,
      kind,
      started: 0,
      alive: 0,
      accesses: 0,
      guest_page_faults: 0,
      segv: 0,
      oom_killed: 0,
      read_hash: 0,
    };
    map.set(name, total);
  }
  return total;
}

function addProcess(total: ProcessReport, driver: ProcessDriver): void {
  const p = driver.proc;
  if (p.alive) total.alive++;
  total.accesses += p.accesses;
  total.guest_page_faults += p.faults;
  if (p.killedBy === "segv") total.segv++;
  if (p.killedBy === "oom") total.oom_killed++;
  total.read_hash = (Math.imul(total.read_hash ^ p.readHash, 0x01000193) + p.pid) >>> 0;
}
