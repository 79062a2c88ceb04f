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
  EMPTY_SCENARIO,
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
    // grid.domains[*].memory, plots[0].x: a grid key is shown as written, not quoted.
    path: path.reduce<string>(
      (text, p) => (typeof p === "number" ? `${text}[${p}]` : text === "" ? p : `${text}.${p}`),
      "",
    ),
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
  const fixed: GridSetting[] = [];
  for (const [key, value] of Object.entries(file.set)) {
    const path =
      key === DOMAIN_COUNT
        ? "domain_count clones domains: give it in the grid"
        : parseSettingPath(key);
    if (typeof path === "string")
      problems.push(problem(["set", key], path, at(["set", key], "key")));
    else fixed.push({ key, path, values: [value] });
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
    baseSource = readYamlMapping(base.text, base.fileName, EMPTY_SCENARIO);
  } catch (e) {
    const reason = e instanceof ScenarioError ? e.message : (e as Error).message;
    throw new ScenarioError(fileName, [problem(["scenario"], reason)]);
  }
  // The base alone first: its own mistakes are named in its own file.
  const baseScenario = scenarioFromData(baseSource, baseSource.data, base.fileName, base.options);
  const settings = [
    ...fixed.map((g) => ({ section: "set" as const, g })),
    ...grid.map((g) => ({ section: "grid" as const, g })),
  ];
  const scenarios = gridScenarios(file, settings, base, baseSource, baseScenario, at, fileName);
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

/** A setting of the experiment: fixed (`set`, one value) or varied (`grid`). */
interface Placed {
  section: "set" | "grid";
  g: GridSetting;
}

/**
 * The scenario of every combination of the grid's values, with the fixed settings; a
 * combination the scenario schema refuses is named at the value of the setting the problem is
 * in (else at the grid's first setting).
 */
function gridScenarios(
  file: ExperimentFile,
  settings: Placed[],
  base: BaseScenario,
  baseSource: YamlMapping,
  baseScenario: Scenario,
  at: (path: (string | number)[], what?: "key" | "value") => { line: number; column: number },
  fileName: string,
): Scenario[] {
  const problems = new Map<string, ScenarioProblem>();
  /** A problem at a setting's key, or at one of its values (`index`); the grid's without one. */
  const add = (s: Placed | undefined, message: string, index?: number) => {
    const where =
      s === undefined
        ? at(["grid"], "key")
        : index === undefined || s.section === "set"
          ? at([s.section, s.g.key], "key")
          : at([s.section, s.g.key, index]);
    const path = s === undefined ? "grid" : `${s.section}.${s.g.key}`;
    const id = `${path}\n${message}`;
    if (!problems.has(id)) problems.set(id, { path, ...where, message });
  };
  const grid = settings.filter((s) => s.section === "grid").map((s) => s.g);
  const combos = gridCombos(grid);
  const perDomain = Math.ceil(
    (file.accesses ?? baseScenario.run.accesses) / baseScenario.domains.length,
  );
  const scenarios: Scenario[] = [];
  for (const combo of combos) {
    // Each setting's value at this point: a fixed one's only value, a grid one's in the combo.
    const values = settings.map((s) =>
      s.section === "set" ? s.g.values[0] : combo[grid.indexOf(s.g)],
    );
    const data = structuredClone(baseSource.data);
    const run = (data.run ?? {}) as Record<string, unknown>;
    if (file.accesses !== undefined) data.run = { ...run, accesses: file.accesses };
    let failed = false;
    // Cloning first, so that domains[*] settings reach every clone.
    settings.forEach((s, i) => {
      if (s.g.path !== null) return;
      const problem = cloneFirstDomain(data, values[i] as number, perDomain);
      if (problem !== "") {
        add(s, problem);
        failed = true;
      }
    });
    settings.forEach((s, i) => {
      if (s.g.path === null) return;
      const problem = setSetting(data, s.g.path, values[i]);
      if (problem !== "") {
        add(s, problem);
        failed = true;
      }
    });
    if (failed) continue;
    try {
      scenarios.push(scenarioFromData(baseSource, data, base.fileName, base.options));
    } catch (e) {
      if (!(e instanceof ScenarioError)) throw e;
      for (const p of e.problems) {
        const i = settingOf(settings, p.path);
        if (i < 0) {
          // Not inside a setting (the processes no longer fit the domain): the point's doing.
          const point = grid.map((g, j) => `${g.key}=${String(combo[j])}`).join(", ");
          const first = settings.find((s) => s.section === "grid") ?? settings[0];
          add(
            first,
            `with ${point || "the settings"}: the scenario's ${p.path || "file"}: ${p.message}`,
          );
          continue;
        }
        const s = settings[i];
        const index = s.g.values.indexOf(values[i]);
        add(s, `${String(values[i])}: the scenario's ${p.path}: ${p.message}`, index);
      }
    }
  }
  if (problems.size > 0) throw new ScenarioError(fileName, [...problems.values()]);
  return scenarios;
}

/** The index of the setting whose path a scenario problem's path is in, or -1. */
function settingOf(settings: readonly Placed[], problemPath: string): number {
  return settings.findIndex(({ g }) => {
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
