/**
 * `tiny`: native-local's access mix on a 4 MiB heap, a million accesses: a benchmark small enough
 * (a tenth of a second) for the harness's own test. Run only when named.
 */

import { USER_HEAP_BASE } from "../guest/layout.js";
import { KIND_USER_READ, KIND_USER_WRITE } from "../hw/access.js";
import { Rng } from "../workload/rng.js";
import { type BenchResult, round } from "./access.js";
import { benchGuest } from "./guest.js";

const PAGES = 1024;
const HOT_PAGES = 64;

export function benchTiny(count = 1_000_000): BenchResult {
  const g = benchGuest("native", 64 * 2 ** 20, PAGES);
  for (let p = 0; p < PAGES; p++) g.driver.access(USER_HEAP_BASE + p * 4096, KIND_USER_WRITE, p);
  const rng = new Rng(11);
  const loop = (n: number) => {
    for (let i = 0; i < n; i++) {
      const page = rng.nextFloat() < 0.9 ? rng.nextBelow(HOT_PAGES) * 13 : rng.nextBelow(PAGES);
      const kind = rng.nextFloat() < 0.25 ? KIND_USER_WRITE : KIND_USER_READ;
      g.driver.access(USER_HEAP_BASE + page * 4096 + ((i * 8) & 4095), kind, i);
    }
  };
  loop(count / 4); // warm-up: JIT and TLB
  const cpuBefore = process.cpuUsage();
  const t0 = performance.now();
  loop(count);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  // The kernel counts CPU time in ticks: a loop this short can read as none.
  const cpuSeconds = Math.max((cpu.user + cpu.system) / 1e6, 1e-6);
  return {
    name: "tiny",
    accesses: count,
    seconds: round(seconds),
    accesses_per_s: Math.round(count / seconds),
    cpu_seconds: round(cpuSeconds),
    accesses_per_cpu_s: Math.round(count / cpuSeconds),
  };
}
