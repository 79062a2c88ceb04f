/**
 * `memvisor trace import FILE -o OUT`: a valgrind lackey trace (plain or gzip) into memvisor's
 * binary format. `memvisor trace record -o OUT -- COMMAND ARGS...`: run a command under valgrind
 * lackey and import what it traced.
 */

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatSizeApprox } from "../workload/scenario-load.js";
import { type ImportResult, importLackey } from "../workload/trace/file.js";
import { EXIT_OK, UsageError } from "./errors.js";
import { formatInt } from "./format.js";

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

export async function traceImportCommand(file: string, options: ImportOptions): Promise<number> {
  const r = await importLackey(file, options.output, {
    skipBad: options.skipBad,
    overwrite: options.force,
  });
  process.stdout.write(summary(file, options.output, r));
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
      process.stderr.write(`memvisor: note: ${command[0]} exited with status ${r.status}\n`);
    }
    const result = await importLackey(log, options.output, { overwrite: options.force });
    process.stdout.write(summary(command.join(" "), options.output, result));
    return EXIT_OK;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
