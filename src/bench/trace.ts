/** The trace benchmarks: parsing a real lackey file (lines per second). */

import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { LackeyReader } from "../workload/trace/lackey.js";
import { type BenchResult, round, timeIt } from "./access.js";

/** The committed fixture: valgrind lackey on `sort /etc/services`, 1.3 million lines. */
const FIXTURE = new URL("../../test/fixtures/sort-services.lackey.gz", import.meta.url);

export function benchLackeyParse(): BenchResult {
  const bytes = new Uint8Array(gunzipSync(readFileSync(FIXTURE)));
  const parse = (): number => {
    let records = 0;
    const reader = new LackeyReader({ file: "fixture" }, (b) => {
      records += b.count;
    });
    // 1 MiB chunks, as a file is streamed.
    for (let at = 0; at < bytes.length; at += 1 << 20)
      reader.push(bytes.subarray(at, at + (1 << 20)));
    reader.end();
    return reader.lines + records * 0;
  };
  parse(); // warm-up: JIT
  let lines = 0;
  const rounds = 5;
  const seconds = timeIt(() => {
    for (let r = 0; r < rounds; r++) lines += parse();
  });
  return {
    name: "lackey-parse",
    lines,
    seconds: round(seconds),
    lines_per_s: Math.round(lines / seconds),
    mib_per_s: Math.round((rounds * bytes.length) / 2 ** 20 / seconds),
  };
}
