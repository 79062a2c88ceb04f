/**
 * The scenarios the page offers: every built-in but those that replay a recorded trace (their
 * trace files are read from disk, which a browser cannot do), and scenario files the user loads.
 */

import {
  BUILTIN_SCENARIOS,
  builtinScenario,
  DEFAULT_SCENARIO,
  parseScenario,
  type Scenario,
} from "../../src/api/index.js";
import type { ScenarioSource } from "./messages.js";

/** Whether a built-in's YAML names a trace process (kind: trace). */
function replaysTrace(yaml: string): boolean {
  return /kind:\s*trace\b/.test(yaml);
}

/** Built-ins the page can run: name and summary, the default first. */
export const PAGE_SCENARIOS = BUILTIN_SCENARIOS.filter((b) => !replaysTrace(b.yaml))
  .map((b) => ({ name: b.name, summary: b.summary }))
  .sort((a, b) => Number(b.name === DEFAULT_SCENARIO) - Number(a.name === DEFAULT_SCENARIO));

/** Parse a source; throws ScenarioError (with every problem, file:line:col) for a bad file. */
export function loadScenario(source: ScenarioSource): Scenario {
  if (source.kind === "builtin") return builtinScenario(source.name);
  const scenario = parseScenario(source.text, source.name);
  for (const d of scenario.domains) {
    for (const p of d.processes) {
      if (p.kind === "trace") {
        throw new Error(
          `${source.name}: domain ${d.name}, process ${p.name}: trace processes read their trace from disk and cannot run in the browser (use \`memvisor run\`)`,
        );
      }
    }
  }
  return scenario;
}
