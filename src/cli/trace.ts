/**
 * `memvisor trace import FILE -o OUT`: a valgrind lackey trace (plain or gzip) into memvisor's
 * binary format (record.ts runs a command under valgrind lackey and imports its trace).
 * `memvisor trace info FILE`: what a trace holds and the address space a trace process
 * replaying it gets.
 */

import {
  formatSizeApprox,
  type TRACE_KIND_NAMES,
  traceLayout,
  traceProblem,
} from "../api/index.js";
import { type ImportResult, importLackey, openTrace } from "../api/node.js";
import { EXIT_OK } from "./errors.js";
import { formatInt, newTable } from "./format.js";
import { interruptible } from "./interrupt.js";
import { writeJson, writeOut } from "./output.js";

export interface ImportOptions {
  output: string;
  skipBad?: boolean;
  force?: boolean;
}

export function summary(from: string, out: string, r: ImportResult): string {
  const skipped = r.skipped > 0 ? `, ${formatInt(r.skipped)} bad lines skipped` : "";
  return (
    `${from}: ${formatInt(r.lines)} lines, ${formatInt(r.accessLines)} accesses${skipped} -> ` +
    `${out}: ${formatInt(r.records)} records (${formatSizeApprox(16 + r.records * 8)})\n`
  );
}

export async function traceImportCommand(file: string, options: ImportOptions): Promise<number> {
  const r = await interruptible(() =>
    importLackey(file, options.output, { skipBad: options.skipBad, overwrite: options.force }),
  );
  writeOut(summary(file, options.output, r));
  return EXIT_OK;
}

/** What `trace info` reports. */
export interface TraceInfo {
  file: string;
  records: number;
  /** Records by kind: load, store, fetch. */
  kinds: Record<(typeof TRACE_KIND_NAMES)[number], number>;
  /** Distinct 4 KiB pages touched. */
  pages: number;
  /** Why a trace process cannot replay it ("" when it can). */
  problem: string;
  regions: { start: string; end: string; bytes: number; prot: string; kind: string }[];
}

/** What a trace holds, from one reading of it in chunks (memory: a chunk and the pages). */
export function traceInfo(file: string): TraceInfo {
  const trace = openTrace(file);
  const [load, store, fetch] = trace.facts.kinds;
  const kinds = { load, store, fetch };
  const problem = traceProblem(trace);
  const layout = problem === "" ? traceLayout(trace) : { regions: [], pages: 0 };
  return {
    file,
    records: trace.count,
    kinds,
    pages: layout.pages,
    problem,
    regions: layout.regions.map((r) => ({
      start: `0x${r.start.toString(16)}`,
      end: `0x${r.end.toString(16)}`,
      bytes: r.end - r.start,
      prot: `${r.prot & 1 ? "r" : "-"}${r.prot & 2 ? "w" : "-"}${r.prot & 4 ? "x" : "-"}`,
      kind: r.kind,
    })),
  };
}

export function traceInfoCommand(file: string, options: { json?: boolean }): number {
  const info = traceInfo(file);
  if (options.json) {
    writeJson(info);
    return EXIT_OK;
  }
  const out = [
    `${file}: ${formatInt(info.records)} records (${formatInt(info.kinds.load)} loads, ` +
      `${formatInt(info.kinds.store)} stores, ${formatInt(info.kinds.fetch)} fetches)`,
  ];
  if (info.problem !== "") {
    out.push(`a trace process cannot replay it: ${info.problem}`);
  } else {
    out.push(
      `${formatInt(info.pages)} pages touched (${formatSizeApprox(info.pages * 4096)}), ` +
        `in ${info.regions.length} regions: the address space a trace process replaying it gets`,
    );
    const table = newTable({
      head: ["start", "end", "size", "rights", "kind"],
      colAligns: ["right", "right", "right", "left", "left"],
    });
    for (const r of info.regions) {
      table.push([r.start, r.end, formatSizeApprox(r.bytes), r.prot, r.kind]);
    }
    out.push(table.toString());
  }
  writeOut(`${out.join("\n")}\n`);
  return EXIT_OK;
}
