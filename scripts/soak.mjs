// A long run with sampled checks (`npm run soak`): the default scenario under shadow paging for
// SOAK_ACCESSES user accesses (10^8 by default). Every tenth of the way it checks each domain's
// invariants in full (translations, isolation, shadow bookkeeping), that the host's frame
// accounting balances (every frame's owner kind against the allocator's counts), and records the
// process's resident memory; it ends with a table and exits 1 on a violation or when resident
// memory grew by more than a quarter between the first sample and the last (a leak).
// It uses the built library (dist/): `npm run soak` builds it first.

import { Simulation } from "../dist/api/simulation.js";
import { checkHostFrames } from "../dist/vmm/frames-check.js";
import { builtinScenario } from "../dist/workload/scenario/builtin.js";

const total = Number(process.env.SOAK_ACCESSES ?? 1e8);
const mode = process.env.SOAK_MODE ?? "shadow";
const name = process.env.SOAK_SCENARIO ?? "mixed";
const samples = 10;

const sim = new Simulation(builtinScenario(name), { mode, accesses: total });
const rows = [];
let failures = 0;
const start = process.hrtime.bigint();
const cpuStart = process.cpuUsage();

for (let k = 1; k <= samples; k++) {
  const until = Math.round((total * k) / samples);
  while (sim.accessesDone < until && sim.runTurn()) {}
  for (const d of sim.domains) d.runChecks(true);
  const violations = sim.domains.reduce((sum, d) => sum + d.violations, 0);
  const frames = sim.host ? checkHostFrames(sim.host.frames) : null;
  if (frames !== null) failures++;
  const first = sim.domains.find((d) => d.firstViolation !== "")?.firstViolation;
  rows.push({
    accesses: sim.accessesDone,
    rss_mib: Math.round(process.memoryUsage().rss / 2 ** 20),
    heap_mib: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
    violations,
    frames: frames ?? "balanced",
    ...(first ? { first } : {}),
  });
  if (sim.accessesDone >= total) break;
}

const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const cpu = process.cpuUsage(cpuStart);
console.table(rows);
const last = rows[rows.length - 1];
// The first sample is taken after the working sets are touched; growth after it is a leak.
const growth = last.rss_mib / rows[0].rss_mib;
console.log(
  `${name} under ${mode}: ${last.accesses.toLocaleString("en-US")} accesses in ${seconds.toFixed(1)} s ` +
    `(CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s); resident memory ${rows[0].rss_mib} -> ` +
    `${last.rss_mib} MiB (x${growth.toFixed(2)})`,
);
if (last.violations > 0 || failures > 0 || growth > 1.25) {
  console.log("soak FAILED");
  process.exit(1);
}
console.log("soak passed");
