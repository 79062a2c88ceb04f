/**
 * Reading an experiment file and the base scenario it names (Node only; parse.ts is the part
 * without files). The base is a built-in's name, or a scenario file's path relative to the
 * experiment file's folder; a trace a scenario names is read once for all the grid's points.
 */

import { dirname, isAbsolute, join } from "node:path";
import type { TraceRecords } from "../../config/trace.js";
import { BUILTIN_SCENARIOS } from "../scenario/builtin.js";
import { readScenarioBytes, SCENARIOS_DIR } from "../scenario/file.js";
import { ScenarioError } from "../scenario/problems.js";
import { decodeScenarioBytes } from "../scenario/text.js";
import { openTrace } from "../trace/stream.js";
import type { Experiment } from "./experiment.js";
import { type BaseScenario, parseExperiment } from "./parse.js";

const PATH_LIKE = /[/\\]|\.(ya?ml|json)$/i;

/** A file's text, or a ScenarioError naming it and what is wrong. */
function readText(path: string): string {
  const text = decodeScenarioBytes(readScenarioBytes(path));
  if (typeof text !== "string") throw new ScenarioError(path, [text]);
  return text;
}

/** openTrace, each path read once. */
function tracesOnce(): (path: string) => TraceRecords {
  const read = new Map<string, TraceRecords>();
  return (path) => {
    let trace = read.get(path);
    if (trace === undefined) {
      trace = openTrace(path);
      read.set(path, trace);
    }
    return trace;
  };
}

/**
 * Reads and checks an experiment file and its base scenario (`metrics`: the figures a plot may
 * show); throws ScenarioError.
 */
export function loadExperimentFile(path: string, metrics: readonly string[]): Experiment {
  const loadTrace = tracesOnce();
  const resolve = (ref: string): BaseScenario => {
    const builtin = BUILTIN_SCENARIOS.find((b) => b.name === ref);
    if (builtin !== undefined && !PATH_LIKE.test(ref)) {
      return {
        text: builtin.yaml,
        fileName: `${builtin.name}.yaml`,
        options: { loadTrace, baseDir: SCENARIOS_DIR },
      };
    }
    if (!PATH_LIKE.test(ref)) {
      const names = BUILTIN_SCENARIOS.map((b) => b.name).join(", ");
      throw new Error(
        `unknown scenario "${ref}": neither a built-in (${names}) nor a path (a file is named with a / or a .yaml, .yml or .json extension)`,
      );
    }
    const file = isAbsolute(ref) ? ref : join(dirname(path), ref);
    return { text: readText(file), fileName: file, options: { loadTrace } };
  };
  return parseExperiment(readText(path), path, resolve, metrics);
}
