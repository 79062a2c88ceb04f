/**
 * The built-in scenarios: their order and summaries here, their text in scenarios/NAME.yaml,
 * so that each is also an example of the file format. The build embeds those files
 * (builtin-yaml.gen.ts, written by scripts/embed-scenarios.mjs): the library reads no file.
 */
import type { Scenario } from "../../config/scenario.js";
import { BUILTIN_YAML, type BuiltinYamlName } from "./builtin-yaml.gen.js";
import { type ParseOptions, parseScenario } from "./parse.js";
import { ScenarioError } from "./problems.js";

export interface BuiltinScenario {
  name: string;
  /** One line for `memvisor scenarios`. */
  summary: string;
  /** The text of scenarios/NAME.yaml. */
  yaml: string;
}

export const DEFAULT_SCENARIO = "mixed" satisfies BuiltinYamlName;

/** The built-ins in the order `memvisor scenarios` lists them, each with its one-line summary. */
const SUMMARIES: readonly { name: BuiltinYamlName; summary: string }[] = [
  {
    name: "mixed",
    summary: "database + parallel build + mmap churn in one 1GiB guest (the default)",
  },
  {
    name: "database",
    summary: "one 1GiB hot/cold database working set in a 2GiB guest",
  },
  { name: "build", summary: "make -j4 of short-lived children in a 1GiB guest" },
  {
    name: "two-domains",
    summary: "two 512MiB guests, each with a 128MiB uniform database",
  },
  {
    name: "tlb-thrash",
    summary: "sequential scans over 64MiB, overflowing the TLB",
  },
  {
    name: "shadow-steady",
    summary: "shadow paging near native cost: a stable working set after warm-up",
  },
  {
    name: "fork-storm",
    summary: "shadow paging at its worst: very short-lived processes",
  },
  {
    name: "unshadow-policies",
    summary: "early unshadow, write flooding and none, under a small shadow pool",
  },
  {
    name: "overcommit",
    summary: "four 512MiB guests on a 1GiB host: the balloons meet lower targets",
  },
  {
    name: "overcommit-swap",
    summary: "the same targets met by host swapping only (no balloon drivers)",
  },
  {
    name: "balloon-auto",
    summary: "oVirt MOM's automatic targets moving memory between three guests",
  },
  {
    name: "sharing",
    summary: "four identical guests: page sharing merges their code, data and zero pages",
  },
  {
    name: "sort-trace",
    summary: "a recorded run of sort (valgrind lackey), replayed in a loop by two processes",
  },
  {
    name: "crossover",
    summary:
      "short- to long-lived processes with a TLB-thrashing working set: shadow paging against HAP (compare --vary)",
  },
  {
    name: "ept-large-pages",
    summary:
      "one database under HAP with 4KiB and with 2MiB EPT pages: 24 against 19 references a cold walk",
  },
  {
    name: "tour",
    summary:
      "the article's sequence in one small shadow-paged guest: shadows, faults, table writes, exits, balloon, sharing (the web page's guided tour)",
  },
];

export const BUILTIN_SCENARIOS: readonly BuiltinScenario[] = SUMMARIES.map(({ name, summary }) => ({
  name,
  summary,
  yaml: BUILTIN_YAML[name],
}));

/** A fresh copy of the built-in scenario `name`; throws ScenarioError naming the ones there are. */
export function builtinScenario(name: string, options: ParseOptions = {}): Scenario {
  const found = BUILTIN_SCENARIOS.find((b) => b.name === name);
  if (!found) {
    const names = BUILTIN_SCENARIOS.map((b) => b.name).join(", ");
    throw new ScenarioError(name, [
      { path: "", message: `not a built-in scenario (available: ${names})` },
    ]);
  }
  return parseScenario(found.yaml, `${found.name}.yaml`, options);
}
