/** `memvisor scenarios`: the built-in scenarios as a table, or as JSON for scripts. */

import { BUILTIN_SCENARIOS, builtinScenario, DEFAULT_SCENARIO } from "../api/index.js";
import { formatInt, newTable } from "./format.js";

/** Summary column width: keeps the table within OUTPUT_WIDTH. */
const SUMMARY_WIDTH = 44;

export interface ScenarioListEntry {
  name: string;
  summary: string;
  default: boolean;
}

export function scenarioList(): ScenarioListEntry[] {
  return BUILTIN_SCENARIOS.map((b) => ({
    name: b.name,
    summary: b.summary,
    default: b.name === DEFAULT_SCENARIO,
  }));
}

export function formatScenarioList(): string {
  const table = newTable({
    head: ["scenario", "summary", "domains", "modes", "accesses"],
    colAligns: ["left", "left", "right", "left", "right"],
    colWidths: [null, SUMMARY_WIDTH + 2, null, null, null],
    wordWrap: true,
  });
  for (const b of BUILTIN_SCENARIOS) {
    const s = builtinScenario(b.name);
    const modes = [...new Set(s.domains.map((d) => d.mode))].join(", ");
    const name = b.name === DEFAULT_SCENARIO ? `${b.name} *` : b.name;
    table.push([name, b.summary, s.domains.length, modes, formatInt(s.run.accesses)]);
  }
  return (
    `${table.toString()}\n` +
    "* the default: `memvisor run` runs it. A scenario can also be a .yaml, .yml or .json file.\n"
  );
}
