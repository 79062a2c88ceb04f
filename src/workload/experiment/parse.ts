/**
 * Experiment text (YAML or JSON) to an Experiment whose every grid point is a valid scenario,
 * checked before anything runs. A mistake in the experiment file, or a grid value the scenario
 * schema refuses, is a ScenarioError naming the experiment file, the line of the setting and
 * what was expected, as a scenario file's mistakes are named. No node imports (file.ts reads).
 */

import { MAX_DOMAINS } from "../../config/limits.js";
import type { Scenario } from "../../config/scenario.js";
import { issueProblems } from "../scenario/issues.js";
import {
  type ParseOptions,
  readYamlMapping,
  scenarioFromData,
  type YamlMapping,
} from "../scenario/parse.js";
import { offsetAt } from "../scenario/positions.js";
import { ScenarioError, type ScenarioProblem } from "../scenario/problems.js";
import { quote } from "../scenario/text.js";
import { type Experiment, type GridSetting, gridCombos, type PlotSpec } from "./experiment.js";
import { EXPERIMENT_MAX_RUNS, type ExperimentFile, experimentFileSchema } from "./schema.js";
import { cloneFirstDomain, DOMAIN_COUNT, parseSettingPath, setSetting } from "./setting.js";

/** The base scenario an experiment names, as text (a built-in's or a file's). */
export interface BaseScenario {
  text: string;
  /** Its file name, for messages and its default name. */
  fileName: string;
  /** How its trace processes' files are read. */
  options: ParseOptions;
}

/** Finds the base scenario from the experiment's `scenario` value; throws to refuse it. */
export type ResolveScenario = (ref: string) => BaseScenario;

const EMPTY = "the file is empty; an experiment is a mapping with at least a scenario key";

/**
 * Parses and checks an experiment (`metrics`: the figures a plot may show); throws
 * ScenarioError listing what is wrong, and where.
 */
export function parseExperiment(
  text: string,
  fileName: string,
  resolve: ResolveScenario,
  metrics: readonly string[],
): Experiment {
  const source = readYamlMapping(text, fileName, EMPTY);
  const result = experimentFileSchema.safeParse(source.data);
  if (!result.success) {
    throw new ScenarioError(
      fileName,
      result.error.issues.flatMap((i) => issueProblems(i, source.data, source.doc, source.pos)),
    );
  }
  const file = result.data;
  const at = (path: (string | number)[], what: "key" | "value" = "value") =>
    source.pos(offsetAt(source.doc, path, what));
  const problem = (path: (string | number)[], message: string, where = at(path)) => ({
    path: path.map((p) => (typeof p === "number" ? `[${p}]` : p)).join("."),
    ...where,
    message,
  });

  const problems: ScenarioProblem[] = [];
  const grid: GridSetting[] = [];
  for (const [key, values] of Object.entries(file.grid)) {
    const path = key === DOMAIN_COUNT ? null : parseSettingPath(key);
    if (typeof path === "string") {
      problems.push(problem(["grid", key], path, at(["grid", key], "key")));
      continue;
    }
    if (path === null) {
      values.forEach((v, i) => {
        if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > MAX_DOMAINS) {
          problems.push(
            problem(
              ["grid", key, i],
              `expected a number of domains from 1 to ${MAX_DOMAINS}, got ${JSON.stringify(v)}`,
            ),
          );
        }
      });
    }
    if (new Set(values).size !== values.length) {
      problems.push(problem(["grid", key], "a value is listed twice"));
    }
    grid.push({ key, path, values });
  }
  const plots: PlotSpec[] = file.plots.map((p, i) => {
    if (!grid.some((g) => g.key === p.x)) {
      const keys = grid.map((g) => g.key).join(", ") || "none: the grid is empty";
      problems.push(
        problem(["plots", i, "x"], `expected a setting of the grid (${keys}), got ${quote(p.x)}`),
      );
    }
    if (!metrics.includes(p.y)) {
      problems.push(
        problem(
          ["plots", i, "y"],
          `expected a figure of the results table such as cycles_per_access, tlb_mpki or vmexits, got ${quote(p.y)}`,
        ),
      );
    }
    return { x: p.x, y: p.y, title: p.title ?? "", logX: p.log_x };
  });
  const runs =
    grid.reduce((n, g) => n * g.values.length, 1) *
    (file.modes?.length ?? 1) *
    (file.seeds?.length ?? 1);
  if (runs > EXPERIMENT_MAX_RUNS) {
    problems.push(
      problem(
        ["grid"],
        `the experiment has ${runs} runs; at most ${EXPERIMENT_MAX_RUNS} are allowed`,
        at(["grid"], "key"),
      ),
    );
  }
  if (problems.length > 0) throw new ScenarioError(fileName, problems);

  let base: BaseScenario;
  let baseSource: YamlMapping;
  try {
    base = resolve(file.scenario);
    baseSource = readYamlMapping(base.text, base.fileName, EMPTY);
  } catch (e) {
    const reason = e instanceof ScenarioError ? e.message : (e as Error).message;
    throw new ScenarioError(fileName, [problem(["scenario"], reason)]);
  }
  // The base alone first: its own mistakes are named in its own file.
  const baseScenario = scenarioFromData(baseSource, baseSource.data, base.fileName, base.options);
  const scenarios = gridScenarios(file, grid, base, baseSource, baseScenario, at, fileName);
  return {
    name: file.name ?? baseName(fileName),
    description: file.description,
    file: fileName,
    scenario: baseScenario.name,
    modes: file.modes ?? null,
    seeds: file.seeds ?? [baseScenario.seed],
    grid,
    plots,
    scenarios,
  };
}

/**
 * The scenario of every combination of the grid's values; a combination the scenario schema
 * refuses is named at the line of the setting the problem is in (else of the grid).
 */
function gridScenarios(
  file: ExperimentFile,
  grid: GridSetting[],
  base: BaseScenario,
  baseSource: YamlMapping,
  baseScenario: Scenario,
  at: (path: (string | number)[], what?: "key" | "value") => { line: number; column: number },
  fileName: string,
): Scenario[] {
  const problems = new Map<string, ScenarioProblem>();
  /** A problem at the setting's key, or at one of its values (`index`). */
  const add = (key: string, message: string, index?: number) => {
    const where =
      key === ""
        ? at(["grid"], "key")
        : index === undefined
          ? at(["grid", key], "key")
          : at(["grid", key, index]);
    const path = key === "" ? "grid" : `grid.${key}`;
    const id = `${path}\n${message}`;
    if (!problems.has(id)) problems.set(id, { path, ...where, message });
  };
  const combos = gridCombos(grid);
  const domainCount = grid.findIndex((g) => g.path === null);
  const perDomain = Math.ceil(
    (file.accesses ?? baseScenario.run.accesses) / baseScenario.domains.length,
  );
  const scenarios: Scenario[] = [];
  for (const values of combos) {
    const data = structuredClone(baseSource.data);
    const run = (data.run ?? {}) as Record<string, unknown>;
    if (file.accesses !== undefined) data.run = { ...run, accesses: file.accesses };
    let failed = false;
    if (domainCount >= 0) {
      const problem = cloneFirstDomain(data, values[domainCount] as number, perDomain);
      if (problem !== "") {
        add(DOMAIN_COUNT, problem);
        failed = true;
      }
    }
    grid.forEach((g, i) => {
      if (g.path === null) return;
      const problem = setSetting(data, g.path, values[i]);
      if (problem !== "") {
        add(g.key, problem);
        failed = true;
      }
    });
    if (failed) continue;
    try {
      scenarios.push(scenarioFromData(baseSource, data, base.fileName, base.options));
    } catch (e) {
      if (!(e instanceof ScenarioError)) throw e;
      const combo = grid.map((g, i) => `${g.key}=${String(values[i])}`).join(", ");
      for (const p of e.problems) {
        const setting = settingOf(grid, p.path);
        if (setting < 0) {
          // Not inside a setting (the processes no longer fit the domain): the whole point's doing.
          add(
            grid[0]?.key ?? "",
            `with ${combo}: the scenario's ${p.path || "file"}: ${p.message}`,
          );
          continue;
        }
        const g = grid[setting];
        const index = g.values.indexOf(values[setting]);
        add(g.key, `${String(values[setting])}: the scenario's ${p.path}: ${p.message}`, index);
      }
    }
  }
  if (problems.size > 0) throw new ScenarioError(fileName, [...problems.values()]);
  return scenarios;
}

/** The index of the grid setting whose path a scenario problem's path is in, or -1. */
function settingOf(grid: readonly GridSetting[], problemPath: string): number {
  return grid.findIndex((g) => {
    if (g.path === null) return false;
    const pattern = g.key
      .replace(/[.[\]*]/g, (c) => `\\${c}`)
      .replaceAll("\\[\\*\\]", "\\[\\d+\\]");
    return new RegExp(`^${pattern}(?:$|[.[])`).test(problemPath);
  });
}

/** "dir/modes.yaml" -> "modes". */
function baseName(fileName: string): string {
  const cut = Math.max(fileName.lastIndexOf("/"), fileName.lastIndexOf("\\"));
  return fileName.slice(cut + 1).replace(/\.(ya?ml|json)$/i, "");
}
