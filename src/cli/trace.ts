/**
 * `memvisor trace import FILE -o OUT`: a valgrind lackey trace (plain or gzip) into memvisor's
 * binary format. `memvisor trace record -o OUT -- COMMAND ARGS...`: run a command under valgrind
 * lackey and import what it traced. `memvisor trace info FILE`: what a trace holds and the
 * address space a trace process replaying it gets.
 */

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatSizeApprox, TRACE_KIND_NAMES, traceLayout, traceProblem } from "../api/index.js";
import {
  checkOutput,
  discardPendingOutputs,
  type ImportResult,
  importLackey,
  readTrace,
} from "../api/node.js";
import { EXIT_OK, UsageError } from "./errors.js";
import { formatInt, newTable } from "./format.js";
import { writeErr, writeJson, writeOut } from "./output.js";

export interface ImportOptions {
  output: string;
  skipBad?: boolean;
  force?: boolean;
}

function summary(from: string, out: string, r: ImportResult): string {
  const skipped = r.skipped > 0 ? `, ${formatInt(r.skipped)} bad lines skipped` : "";
  return (
    `${from}: ${formatInt(r.lines)} lines, ${formatInt(r.accessLines)} accesses${skipped} -> ` +
    `${out}: ${formatInt(r.records)} records (${formatSizeApprox(16 + r.records * 8)})\n`
  );
}

/**
 * Runs `work` with SIGINT and SIGTERM removing what it was writing (and `cleanup`) before the
 * process ends with 130 or 143, as a shell reports a death by those signals.
 */
async function interruptible<T>(work: () => Promise<T>, cleanup = () => {}): Promise<T> {
  const handlers = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const handler = () => {
      discardPendingOutputs();
      cleanup();
      writeErr(`interrupted (${signal}): nothing written`);
      process.exit(signal === "SIGINT" ? 130 : 143);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  try {
    return await work();
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }
}

export async function traceImportCommand(file: string, options: ImportOptions): Promise<number> {
  const r = await interruptible(() =>
    importLackey(file, options.output, { skipBad: options.skipBad, overwrite: options.force }),
  );
  writeOut(summary(file, options.output, r));
  return EXIT_OK;
}

/** Whether valgrind can be run here. */
function haveValgrind(): boolean {
  const r = spawnSync("valgrind", ["--version"], { encoding: "utf8" });
  return r.error === undefined && r.status === 0;
}

export async function traceRecordCommand(
  command: string[],
  options: Omit<ImportOptions, "skipBad">,
): Promise<number> {
  if (command.length === 0) throw new UsageError("trace record: give the command after --");
  checkOutput(options.output, options.force ?? false, []);
  if (!haveValgrind()) {
    throw new UsageError(
      "trace record needs valgrind, which is not installed (on Debian: apt-get install valgrind)",
    );
  }
  const dir = mkdtempSync(join(tmpdir(), "memvisor-trace-"));
  try {
    const log = join(dir, "lackey.log");
    const r = spawnSync(
      "valgrind",
      ["--tool=lackey", "--trace-mem=yes", `--log-file=${log}`, ...command],
      { stdio: ["inherit", "inherit", "inherit"] },
    );
    if (r.error !== undefined) throw new UsageError(`trace record: ${r.error.message}`);
    if (r.status !== 0) {
      writeErr(`note: ${command[0]} exited with status ${r.status}`);
    }
    const result = await importLackey(log, options.output, { overwrite: options.force });
    writeOut(summary(command.join(" "), options.output, result));
    return EXIT_OK;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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

export function traceInfo(file: string): TraceInfo {
  const trace = readTrace(file);
  const kinds = { load: 0, store: 0, fetch: 0 };
  for (let i = 0; i < trace.count; i++) kinds[TRACE_KIND_NAMES[trace.kind(i)]]++;
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
