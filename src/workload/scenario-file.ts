/** Reading a scenario file from disk (Node only; scenario-load.ts is the browser-safe part). */
import { readFileSync } from "node:fs";
import type { Scenario } from "../api/types.js";
import { parseScenario, ScenarioError } from "./scenario-load.js";

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
  return parseScenario(text, path);
}
