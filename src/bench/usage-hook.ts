/**
 * Loaded with `node --import` into every benchmark process the harness starts, this checkout's
 * or another's: when the process exits, its whole CPU time and peak memory go to descriptor 3,
 * which the harness reads. Node gives a parent no resource usage of its children, and the
 * benchmark's own cpu_seconds covers only its timed loop.
 */

import { writeSync } from "node:fs";

process.on("exit", () => {
  const u = process.resourceUsage();
  const usage = { user_us: u.userCPUTime, system_us: u.systemCPUTime, max_rss_kib: u.maxRSS };
  try {
    writeSync(3, JSON.stringify(usage));
  } catch {
    // Descriptor 3 is the harness's pipe; loaded by hand without one, there is no one to tell.
  }
});
