/**
 * Reading a scenario file and the traces it names from disk (Node only; parse.ts is the
 * browser-safe part).
 */

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Scenario } from "../../config/scenario.js";
import { readTrace } from "../trace/file.js";
import { builtinScenario } from "./builtin.js";
import { parseScenario } from "./parse.js";
import { ScenarioError } from "./problems.js";

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
  ENOTDIR: "a part of the path is not a directory",
  ELOOP: "too many symbolic links",
  ENAMETOOLONG: "the file name is too long",
};

/** Reads and parses a YAML or JSON scenario file; throws ScenarioError for every failure. */
export function loadScenarioFile(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    const reason = OS_REASONS[code] ?? (e instanceof Error ? e.message : String(e));
    throw new ScenarioError(path, [{ path: "", message: `cannot read the file: ${reason}` }]);
  }
  return parseScenario(text, path, { loadTrace: readTrace });
}

/** A built-in scenario with its traces read (what `memvisor run NAME` runs). */
export function loadBuiltinScenario(name: string): Scenario {
  return builtinScenario(name, { loadTrace: readTrace, baseDir: SCENARIOS_DIR });
}
