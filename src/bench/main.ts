/**
 * `npm run bench [-- --json] [-- NAME...]`: the simulator's speed. Benchmarks are not tests:
 * nothing here asserts a time; the figures go in issue notes and are compared with the targets
 * printed beside them.
 */

import { type BenchResult, benchAccess, benchFault } from "./access.js";
import { benchShadowFork } from "./shadow.js";
import { benchLackeyParse, benchTraceReplay } from "./trace.js";

interface Bench {
  name: string;
  target: string;
  run: () => BenchResult;
}

const BENCHES: Bench[] = [
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
    name: "trace-replay-shadow",
    target: "(report accesses_per_s; compare with trace-replay-native)",
    run: () => benchTraceReplay("shadow", "trace-replay-shadow"),
  },
  {
    name: "shadow-fork",
    target: "(report forks_per_s and shadow_pages_peak)",
    run: () => benchShadowFork(),
  },
];

function main(argv: string[]): void {
  const json = argv.includes("--json");
  const names = argv.filter((a) => !a.startsWith("--"));
  const unknown = names.filter((n) => !BENCHES.some((b) => b.name === n));
  if (unknown.length > 0) {
    process.stderr.write(
      `bench: unknown benchmark ${unknown.join(", ")}; have ${BENCHES.map((b) => b.name).join(", ")}\n`,
    );
    process.exitCode = 2;
    return;
  }
  const results: BenchResult[] = [];
  for (const b of BENCHES) {
    if (names.length > 0 && !names.includes(b.name)) continue;
    const r = b.run();
    // A virtualized run is compared with the native one measured in the same invocation.
    const base = b.name.replace(/^(shadow|hap)-/, "native-").replace(/-timed$/, "");
    const native = results.find((x) => x.name === base);
    // By CPU time where both have it: on a shared machine the wall clock counts others' work.
    const rate = typeof r.accesses_per_cpu_s === "number" ? "accesses_per_cpu_s" : "accesses_per_s";
    if (b.name !== native?.name && native && typeof native[rate] === "number") {
      r.ratio_to_native =
        Math.round((1000 * (r[rate] as number)) / (native[rate] as number)) / 1000;
    }
    results.push(r);
    if (!json) {
      const figures = Object.entries(r)
        .filter(([k]) => k !== "name")
        .map(([k, v]) => `${k}=${typeof v === "number" ? v.toLocaleString("en-US") : v}`)
        .join("  ");
      process.stdout.write(
        `${b.name.padEnd(14)} ${figures}\n${"".padEnd(14)} target: ${b.target}\n`,
      );
    }
  }
  if (json) process.stdout.write(`${JSON.stringify({ results }, null, 2)}\n`);
}

main(process.argv.slice(2));
