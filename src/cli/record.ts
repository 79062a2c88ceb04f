/**
 * `memvisor trace record -o OUT -- COMMAND ARGS...`: run a command under valgrind lackey and
 * import the trace of the program it runs. A command is often a wrapper (a pyenv shim, the gcc
 * driver) that execs or forks the real program, so valgrind follows children (--trace-children)
 * with one log per process; the trace kept is the process that made the most accesses (or the
 * one --program names), and the output says which it was and what else ran.
 */

import { spawnSync } from "node:child_process";
import {
  accessSync,
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, delimiter, join } from "node:path";
import { formatSizeApprox } from "../api/index.js";
import { checkOutput, importLackey } from "../api/node.js";
import { EXIT_OK, UsageError } from "./errors.js";
import { interruptible } from "./interrupt.js";
import { writeErr, writeOut } from "./output.js";
import { summary } from "./trace.js";

export interface RecordOptions {
  output: string;
  force?: boolean;
  /** Follow the processes the command starts (valgrind --trace-children; default true). */
  followChildren?: boolean;
  /** Keep the trace of the process whose program has this name (its file name, e.g. cc1). */
  program?: string;
  /** Options passed to valgrind as they are (e.g. --trace-children-skip=*git*). */
  valgrindOption?: string[];
}

/** Options memvisor sets itself: passing them through would break what it reads. */
const OWN_OPTIONS = [
  "--tool",
  "--trace-mem",
  "--log-file",
  "--log-fd",
  "--log-socket",
  "--trace-children",
];

/** Whether valgrind can be run here. */
function haveValgrind(): boolean {
  const r = spawnSync("valgrind", ["--version"], { encoding: "utf8" });
  return r.error === undefined && r.status === 0;
}

/** Whether `name` is an executable file, by its path or on PATH. */
function findProgram(name: string): boolean {
  const executable = (path: string) => {
    try {
      accessSync(path, constants.X_OK);
      return statSync(path).isFile();
    } catch {
      return false;
    }
  };
  if (name.includes("/")) return executable(name);
  return (process.env.PATH ?? "")
    .split(delimiter)
    .some((dir) => dir !== "" && executable(join(dir, name)));
}

/** One process valgrind traced: its log, pid, command line and the log's size. */
interface Traced {
  log: string;
  pid: number;
  command: string;
  bytes: number;
}

/** The command line a lackey log names in its header ("==PID== Command: ..."). */
function commandOf(log: string): string {
  const fd = openSync(log, "r");
  try {
    const head = new Uint8Array(4096);
    const n = readSync(fd, head, 0, head.length, 0);
    const m = /^==\d+== Command: (.*)$/m.exec(new TextDecoder().decode(head.subarray(0, n)));
    return m ? m[1] : "?";
  } finally {
    closeSync(fd);
  }
}

/** The processes valgrind traced, largest log first. */
function tracedProcesses(dir: string): Traced[] {
  return readdirSync(dir)
    .map((name) => /^lackey\.(\d+)\.log$/.exec(name))
    .filter((m) => m !== null)
    .map((m) => {
      const log = join(dir, m[0]);
      return { log, pid: Number(m[1]), command: commandOf(log), bytes: statSync(log).size };
    })
    .sort((a, b) => b.bytes - a.bytes || a.pid - b.pid);
}

/** The program of a command line: its first word's file name. */
const programOf = (command: string) => basename(command.split(" ")[0]);

export async function traceRecordCommand(
  command: string[],
  options: RecordOptions,
): Promise<number> {
  if (command.length === 0) throw new UsageError("trace record: give the command after --");
  checkOutput(options.output, options.force ?? false, []);
  const passed = options.valgrindOption ?? [];
  for (const opt of passed) {
    const own = OWN_OPTIONS.find((o) => opt === o || opt.startsWith(`${o}=`));
    if (!opt.startsWith("--")) {
      throw new UsageError(
        `--valgrind-option ${JSON.stringify(opt)}: expected a valgrind option such as --trace-children-skip=*git*`,
      );
    }
    if (own !== undefined) {
      throw new UsageError(
        `--valgrind-option ${JSON.stringify(opt)}: memvisor sets ${own} itself` +
          (own === "--trace-children" ? " (use --no-follow-children)" : ""),
      );
    }
  }
  if (!findProgram(command[0])) {
    throw new UsageError(
      `trace record: no program ${JSON.stringify(command[0])}: not an executable file` +
        (command[0].includes("/") ? "" : " on PATH"),
    );
  }
  if (!haveValgrind()) {
    throw new UsageError(
      "trace record needs valgrind, which is not installed (on Debian: apt-get install valgrind)",
    );
  }
  const dir = mkdtempSync(join(tmpdir(), "memvisor-trace-"));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    return await interruptible(async () => {
      const follow = options.followChildren ?? true;
      const r = spawnSync(
        "valgrind",
        [
          "--tool=lackey",
          "--trace-mem=yes",
          `--trace-children=${follow ? "yes" : "no"}`,
          `--log-file=${join(dir, "lackey.%p.log")}`,
          ...passed,
          ...command,
        ],
        { stdio: ["inherit", "inherit", "inherit"] },
      );
      if (r.error !== undefined) throw new UsageError(`trace record: ${r.error.message}`);
      if (r.signal === "SIGINT" || r.signal === "SIGTERM") {
        // valgrind was interrupted: so is memvisor (the handler removes what it wrote).
        process.kill(process.pid, r.signal);
        await new Promise(() => {});
      }
      if (r.status !== 0) writeErr(`note: ${command[0]} exited with status ${r.status}`);
      const traced = tracedProcesses(dir);
      const chosen =
        options.program === undefined
          ? traced[0]
          : traced.find((t) => programOf(t.command) === options.program);
      if (chosen === undefined) {
        const ran = traced.map((t) => programOf(t.command)).join(", ");
        throw new UsageError(
          options.program === undefined
            ? "trace record: valgrind wrote no trace (did the command start?)"
            : `trace record: no process ran ${JSON.stringify(options.program)} (the processes ran: ${ran})`,
        );
      }
      const result = await importLackey(chosen.log, options.output, { overwrite: options.force });
      writeOut(summary(`pid ${chosen.pid} (${chosen.command})`, options.output, result));
      const others = traced.filter((t) => t !== chosen);
      if (others.length > 0) {
        const shown = others
          .slice(0, 5)
          .map(
            (t) => `${programOf(t.command)} (pid ${t.pid}, ${formatSizeApprox(t.bytes)} of log)`,
          );
        const more = others.length > 5 ? ` and ${others.length - 5} more` : "";
        writeOut(
          `recorded the ${options.program === undefined ? "process with the most accesses" : `process that ran ${options.program}`} ` +
            `of ${traced.length}; the others: ${shown.join(", ")}${more} (choose one with --program NAME)\n`,
        );
      }
      if (!result.complete) {
        writeErr(
          `warning: the lackey log of pid ${chosen.pid} has no end-of-run summary: ` +
            "the program did not run to its end (killed by a signal?); the trace holds what it did until then",
        );
      }
      return EXIT_OK;
    }, cleanup);
  } finally {
    cleanup();
  }
}
