/**
 * Reading a scenario file and the traces it names from disk (Node only; parse.ts is the
 * browser-safe part).
 */

import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { SCENARIO_FILE_MAX } from "../../config/limits.js";
import type { Scenario } from "../../config/scenario.js";
import { formatSizeApprox } from "../../config/sizes.js";
import { openTrace } from "../trace/stream.js";
import { builtinScenario } from "./builtin.js";
import { parseScenario } from "./parse.js";
import { ScenarioError } from "./problems.js";
import { decodeScenarioBytes } from "./text.js";

/**
 * The package's scenarios/ folder: built-in scenarios read their traces from paths relative
 * to it, as the same files under scenarios/ do (from src/workload/scenario or
 * dist/workload/scenario alike).
 */
export const SCENARIOS_DIR = fileURLToPath(new URL("../../../scenarios", import.meta.url));

const OS_REASONS: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "is a directory, not a scenario file",
  EIO: "an input/output error",
  ENOTDIR: "a part of the path is not a directory",
  ELOOP: "too many symbolic links",
  ENAMETOOLONG: "the file name is too long",
};

/** What a path that is not a regular file is, or "" for a file (a pipe is read, bounded). */
function notAFile(mode: { isDirectory(): boolean; isFile(): boolean; isFIFO(): boolean }): string {
  if (mode.isDirectory()) return "is a directory, not a scenario file";
  if (mode.isFile() || mode.isFIFO()) return "";
  return "is a device or socket, not a scenario file";
}

/**
 * A scenario file's bytes: at most SCENARIO_FILE_MAX of them (one more is read to tell a larger
 * file), never a directory or a device (/dev/zero would never end).
 */
export function readScenarioBytes(path: string): Uint8Array {
  const fail = (message: string): never => {
    throw new ScenarioError(path, [{ path: "", message }]);
  };
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    return fail(`cannot read the file: ${OS_REASONS[code] ?? (e as Error).message}`);
  }
  try {
    const what = notAFile(fstatSync(fd));
    if (what !== "") fail(`cannot read the file: ${what}`);
    const buf = new Uint8Array(SCENARIO_FILE_MAX + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n > SCENARIO_FILE_MAX) {
        fail(
          `the file is larger than ${formatSizeApprox(SCENARIO_FILE_MAX)}: not a scenario ` +
            "(the largest built-in is 3 KiB)",
        );
      }
    }
    return buf.subarray(0, n);
  } catch (e) {
    if (e instanceof ScenarioError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? "";
    return fail(`cannot read the file: ${OS_REASONS[code] ?? (e as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

/** Reads and parses a YAML or JSON scenario file; throws ScenarioError for every failure. */
export function loadScenarioFile(path: string): Scenario {
  const text = decodeScenarioBytes(readScenarioBytes(path));
  if (typeof text !== "string") throw new ScenarioError(path, [text]);
  return parseScenario(text, path, { loadTrace: (path) => openTrace(path) });
}

/** A built-in scenario with its traces read (what `memvisor run NAME` runs). */
export function loadBuiltinScenario(name: string): Scenario {
  return builtinScenario(name, { loadTrace: (path) => openTrace(path), baseDir: SCENARIOS_DIR });
}
