/**
 * The SCENARIO argument of `memvisor run`: a built-in name or a scenario file. A word that names
 * a built-in is the built-in (so that a stray file or folder called "build" in the current
 * directory does not shadow it; write ./build for the file); anything with a slash or a
 * .yaml/.yml/.json extension, or naming an existing file, is a path.
 */

import { statSync } from "node:fs";
import type { Scenario } from "../api/types.js";
import { BUILTIN_SCENARIOS, DEFAULT_SCENARIO } from "../workload/scenario/builtin.js";
import { loadBuiltinScenario, loadScenarioFile } from "../workload/scenario/file.js";
import { UsageError } from "./errors.js";

const FILE_EXTENSION = /\.(ya?ml|json)$/i;

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Whether the argument is to be read as a path rather than a built-in name. */
export function isScenarioPath(arg: string): boolean {
  if (arg.includes("/") || arg.includes("\\") || FILE_EXTENSION.test(arg)) return true;
  if (BUILTIN_SCENARIOS.some((b) => b.name === arg)) return false;
  return isFile(arg);
}

/** The scenario the argument names; throws ScenarioError for a bad file, UsageError for a bad name. */
export function resolveScenario(arg: string | undefined): Scenario {
  const name = arg ?? DEFAULT_SCENARIO;
  if (isScenarioPath(name)) return loadScenarioFile(name);
  if (!BUILTIN_SCENARIOS.some((b) => b.name === name)) {
    const names = BUILTIN_SCENARIOS.map((b) => b.name).join(", ");
    throw new UsageError(
      `unknown scenario ${JSON.stringify(name)}: neither a built-in nor a file\n` +
        `built-in scenarios: ${names} (see \`memvisor scenarios\`)\n` +
        "a scenario file is named by a path with a / or a .yaml, .yml or .json extension",
    );
  }
  return loadBuiltinScenario(name);
}
