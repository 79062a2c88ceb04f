/**
 * `--once`: the named benchmarks run once each, one after another in this process, printed as
 * every checkout prints them (the harness's children, and any checkout's `--json NAME`).
 */

import type { BenchResult } from "./access.js";
import { nativeOf, nativeRate } from "./stats.js";
import type { BenchDef } from "./suite.js";

/** A benchmark's figures on one line (numbers with thousands separators), as `NAME  a=1  b=2`. */
export function figureLine(name: string, figures: Record<string, number | string>): string {
  const text = Object.entries(figures)
    .filter(([k]) => k !== "name")
    .map(([k, v]) => `${k}=${typeof v === "number" ? v.toLocaleString("en-US") : v}`)
    .join("  ");
  return `${name.padEnd(14)} ${text}`;
}

export function runOnce(benches: readonly BenchDef[], json: boolean): void {
  const results: BenchResult[] = [];
  for (const b of benches) {
    const r = b.run();
    // A virtualized run is compared with the native one measured in the same invocation.
    const native = results.find((x) => x.name === nativeOf(b.name));
    // By CPU time where both have it: on a shared machine the wall clock counts others' work.
    const rate = nativeRate(r);
    if (b.name !== native?.name && native && typeof native[rate] === "number") {
      r.ratio_to_native =
        Math.round((1000 * (r[rate] as number)) / (native[rate] as number)) / 1000;
    }
    results.push(r);
    if (!json) {
      process.stdout.write(`${figureLine(b.name, r)}\n${"".padEnd(14)} target: ${b.target}\n`);
    }
  }
  if (json) process.stdout.write(`${JSON.stringify({ results }, null, 2)}\n`);
}
