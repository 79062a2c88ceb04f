/** The fork/exit storm benchmark of the shadow issue: forks per second and shadow pages. */

import { fork } from "../guest/fork.js";
import { USER_HEAP_BASE } from "../guest/layout.js";
import { KIND_USER_WRITE } from "../hw/access.js";
import type { VmmReportCounters } from "../metrics/counters.js";
import { C_FORKS } from "../metrics/counters.js";
import { ProcessDriver } from "../workload/driver.js";
import { Rng } from "../workload/rng.js";
import { type BenchResult, populate, round, timeIt } from "./access.js";
import { benchGuest, benchProcess } from "./guest.js";

/**
 * A fork/exit storm: a parent with 4 MiB of touched heap forks a child that writes 16 of its
 * pages (copy-on-write) and exits, again and again.
 */
export function benchShadowFork(count = 2000): BenchResult {
  const g = benchGuest("shadow", 256 * 2 ** 20, 1024);
  populate(g.driver, 1024);
  const parent = g.driver.proc;
  const storm = (n: number) => {
    for (let i = 0; i < n; i++) {
      const child = fork(g.kernel, parent);
      if (child === null) throw new Error("bench: fork failed");
      g.kernel.switchTo(child);
      const d = new ProcessDriver(
        g.kernel,
        g.sched,
        benchProcess(1024 * 4096),
        child,
        new Rng(i),
        "database",
      );
      for (let p = 0; p < 16; p++) d.access(USER_HEAP_BASE + p * 64 * 4096, KIND_USER_WRITE, p);
      g.kernel.exit(child);
      g.kernel.switchTo(parent);
    }
  };
  storm(count / 10); // warm-up
  const before = g.counters[C_FORKS];
  const s = timeIt(() => storm(count));
  const forks = g.counters[C_FORKS] - before;
  const report: VmmReportCounters = {};
  g.host?.domains[0].paging.report(report);
  return {
    name: "shadow-fork",
    forks,
    seconds: round(s),
    forks_per_s: Math.round(forks / s),
    shadow_pages_peak: report.shadow_pages_peak ?? 0,
  };
}
