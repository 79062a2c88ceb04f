/**
 * `npm run bench [-- --json] [-- --repeat N] [-- --compare REF] [-- NAME...]`: the simulator's
 * speed. Benchmarks are not tests: nothing here asserts a time; the figures go in issue notes and
 * are compared with the targets printed beside them. The list is here; how they are run (each in
 * its own process, repeated, beside another checkout) is in suite.ts.
 */

import { benchAccess, benchFault } from "./access.js";
import { benchFootprint, FOOTPRINT_CASES } from "./footprint.js";
import { benchShadowFork } from "./shadow.js";
import { type BenchDef, benchMain } from "./suite.js";
import { benchLackeyParse, benchTraceReplay, benchTraceReplayStream } from "./trace.js";
import { benchYardstick } from "./yardstick.js";

const BENCHES: BenchDef[] = [
  {
    name: "native-local",
    target: "accesses_per_s >= 15,000,000",
    run: () => benchAccess("native", "native-local", 0.9, 20_000_000, { contents: false }),
  },
  {
    name: "native-local-contents",
    target: "(report accesses_per_cpu_s: native-local with the page-contents model on)",
    run: () => benchAccess("native", "native-local-contents", 0.9, 20_000_000),
  },
  {
    name: "native-local-timed",
    target:
      "accesses_per_s >= 60% of native-local (the timing model on: data caches, instructions)",
    run: () => benchAccess("native", "native-local-timed", 0.9, 20_000_000, { timing: true }),
  },
  {
    name: "native-random",
    target: "accesses_per_s >= 5,000,000, rss_mib <= 300",
    run: () => benchAccess("native", "native-random", 0, 5_000_000, { contents: false }),
  },
  {
    name: "native-random-contents",
    target: "(report accesses_per_cpu_s: native-random with the page-contents model on)",
    run: () => benchAccess("native", "native-random-contents", 0, 5_000_000),
  },
  {
    name: "port-local",
    target: "(the yardstick: native-local's model as a plain typed-array program; ratio_to_native)",
    run: () => benchYardstick("port-local", 0.9, 20_000_000),
  },
  {
    name: "port-random",
    target:
      "(the yardstick: native-random's model as a plain typed-array program; ratio_to_native)",
    run: () => benchYardstick("port-random", 0, 5_000_000),
  },
  {
    name: "native-fault",
    target: "faults_per_s >= 500,000",
    run: () => benchFault("native", "native-fault"),
  },
  {
    name: "shadow-local",
    target: "accesses_per_s >= 90% of native-local",
    run: () => benchAccess("shadow", "shadow-local", 0.9, 20_000_000, { contents: false }),
  },
  {
    name: "shadow-random",
    target: "accesses_per_s >= 90% of native-random",
    run: () => benchAccess("shadow", "shadow-random", 0, 5_000_000, { contents: false }),
  },
  {
    name: "shadow-fault",
    target: "faults_per_s >= 150,000",
    run: () => benchFault("shadow", "shadow-fault"),
  },
  {
    name: "hap-local",
    target: "(report ratio_to_native and walk_refs_per_miss)",
    run: () => benchAccess("hap", "hap-local", 0.9, 20_000_000, { contents: false }),
  },
  {
    name: "hap-random",
    target: "(report ratio_to_native and walk_refs_per_miss)",
    run: () => benchAccess("hap", "hap-random", 0, 5_000_000, { contents: false }),
  },
  {
    name: "pv-fault",
    target: "faults_per_s >= 150,000 (as shadow-fault)",
    run: () => benchFault("pv", "pv-fault"),
  },
  {
    name: "lackey-parse",
    target: "lines_per_s >= 10,000,000",
    run: () => benchLackeyParse(),
  },
  {
    name: "trace-replay-native",
    target: "accesses_per_s >= 80% of native-local",
    run: () => benchTraceReplay("native", "trace-replay-native"),
  },
  {
    name: "trace-replay-stream",
    target: "accesses_per_s close to trace-replay-native's (the chunks' reading is small)",
    run: () => benchTraceReplayStream(),
  },
  {
    name: "trace-replay-shadow",
    target: "(report accesses_per_s; compare with trace-replay-native)",
    run: () => benchTraceReplay("shadow", "trace-replay-shadow"),
  },
  {
    name: "shadow-fork",
    target: "(report forks_per_s and shadow_pages_peak)",
    run: () => benchShadowFork(),
  },
  ...Object.entries(FOOTPRINT_CASES).map(([name, c]) => ({
    name,
    target: c.target,
    run: () => benchFootprint(name),
  })),
];

benchMain(BENCHES, process.argv.slice(2));
