/**
 * Scenario text (YAML or JSON, which is YAML) to a typed Scenario, with errors that name the
 * file, line, column and path of every problem. YAML's merge keys are on (`<<: *anchor` copies
 * an anchored mapping's keys, which the mapping's own keys override), and a problem inside a
 * merged value is reported where that value is written. No node imports: this file runs in
 * browsers too (file.ts reads files from disk).
 */

import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  LineCounter,
  visit,
  type Node as YamlNode,
} from "yaml";
import type { Scenario } from "../../config/scenario.js";
import type { TraceRecords } from "../../config/trace.js";
import { composeOne } from "./compose.js";
import { describe, isPlainMapping, issueProblems } from "./issues.js";
import { jsonMistake } from "./json-syntax.js";
import { aliasErrorOffset, isMergeKey, mergeSources, offsetAt, type Pos } from "./positions.js";
import { formatPath, ScenarioError, type ScenarioProblem } from "./problems.js";
import { scenarioFileSchema } from "./schema.js";
import { textProblem } from "./text.js";
import { toScenario } from "./to-scenario.js";
import { readTraces } from "./traces.js";

/** How parseScenario reads the trace files that trace processes name. */
export interface ParseOptions {
  /**
   * Reads a trace file (a path already resolved against baseDir); throws to refuse it. Node:
   * openTrace in memvisor/node. Without it, trace processes' data stays null.
   */
  loadTrace?: (path: string) => TraceRecords;
  /** The folder relative trace paths start from (default: the scenario file's folder). */
  baseDir?: string;
}

/**
 * Parses and validates a scenario. fileName is used in messages, as the default name and for
 * the folder relative trace paths start from. Throws ScenarioError listing every problem found.
 */
export function parseScenario(
  text: string,
  fileName: string,
  options: ParseOptions = {},
): Scenario {
  const source = readYamlMapping(text, fileName, EMPTY_SCENARIO);
  return scenarioFromData(source, source.data, fileName, options);
}

/** What an empty scenario file is told. */
export const EMPTY_SCENARIO =
  "the file is empty; a scenario is a mapping with at least a domains key";

/** A YAML or JSON file read as a mapping: its document, its data and how offsets become lines. */
export interface YamlMapping {
  doc: Document;
  data: Record<string, unknown>;
  pos: Pos;
}

/**
 * Text to a mapping of plain data, with every syntax, key and alias mistake named by file,
 * line and column (ScenarioError); `empty` says what the file should have held.
 */
export function readYamlMapping(text: string, fileName: string, empty: string): YamlMapping {
  const problem = textProblem(text);
  if (problem !== null) throw new ScenarioError(fileName, [problem]);
  const source = text.replace(/^\uFEFF/, "");
  const lineCounter = new LineCounter();
  const pos = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  if (/\.json$/i.test(fileName)) {
    const mistake = jsonMistake(source);
    if (mistake !== null) {
      const lines = source.slice(0, mistake.offset).split("\n");
      throw new ScenarioError(fileName, [
        {
          path: "",
          line: lines.length,
          column: lines[lines.length - 1].length + 1,
          message: `JSON syntax error: ${mistake.message}`,
        },
      ]);
    }
  }
  const doc = composeOne(source, lineCounter.addNewLine, { uniqueKeys: true, merge: true });
  if (!("contents" in doc)) {
    throw new ScenarioError(fileName, [{ path: "", ...pos(doc.offset), message: doc.message }]);
  }

  if (doc.errors.length > 0) {
    throw new ScenarioError(
      fileName,
      doc.errors.map((e) => ({
        path: "",
        ...(e.linePos ? { line: e.linePos[0].line, column: e.linePos[0].col } : pos(e.pos[0])),
        message: `YAML syntax error: ${firstLine(e.message)}`,
      })),
    );
  }
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) {
    throw new ScenarioError(fileName, [{ path: "", line: 1, column: 1, message: empty }]);
  }
  const keyProblems = keyProblemsOf(doc, pos);
  if (keyProblems.length > 0) throw new ScenarioError(fileName, keyProblems);

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    throw new ScenarioError(fileName, [
      { path: "", ...pos(aliasErrorOffset(doc)), message: `YAML error: ${firstLine(String(e))}` },
    ]);
  }
  if (!isPlainMapping(data)) {
    throw new ScenarioError(fileName, [
      {
        path: "",
        ...pos(root.range?.[0] ?? 0),
        message: `expected a mapping (key: value lines) at the top level, got ${describe(data)}`,
      },
    ]);
  }
  return { doc, data, pos };
}

/**
 * A scenario's data (a file's, or one an experiment changed) checked by the schema and typed,
 * its traces read; problems are placed in `source`, the file the data came from.
 */
export function scenarioFromData(
  source: Omit<YamlMapping, "data">,
  data: Record<string, unknown>,
  fileName: string,
  options: ParseOptions = {},
): Scenario {
  const { doc, pos } = source;
  const result = scenarioFileSchema.safeParse(data);
  if (!result.success) {
    const problems = result.error.issues.flatMap((issue) => issueProblems(issue, data, doc, pos));
    throw new ScenarioError(fileName, problems);
  }
  const scenario = toScenario(result.data, fileName);
  if (options.loadTrace) {
    const baseDir = options.baseDir ?? dirName(fileName);
    const problems = readTraces(scenario, result.data, options.loadTrace, baseDir).map((p) => ({
      path: formatPath(p.path),
      ...pos(offsetAt(doc, p.path, "value")),
      message: p.message,
    }));
    if (problems.length > 0) throw new ScenarioError(fileName, problems);
  }
  return scenario;
}

/** Keys that are not plain names, and merge keys that name something other than mappings. */
function keyProblemsOf(doc: Document, pos: Pos): ScenarioProblem[] {
  const problems: ScenarioProblem[] = [];
  visit(doc, {
    Pair(_, pair) {
      if (pair.key !== null && !isScalar(pair.key)) {
        const node = pair.key as YamlNode;
        problems.push({
          path: "",
          ...pos(node.range?.[0] ?? 0),
          message: "a key must be a plain name, not a list or mapping",
        });
      } else if (isMergeKey(pair.key)) {
        for (const { node, source } of mergeSources(doc, pair.value)) {
          if (isMap(source)) continue;
          const at = pos(((node ?? pair.key) as YamlNode).range?.[0] ?? 0);
          const message = isAlias(node)
            ? `YAML error: no anchor &${node.source} before the alias *${node.source}`
            : "a merge key (<<) takes a mapping, an alias of one or a list of them";
          problems.push({ path: "", ...at, message });
        }
      }
    },
  });
  return problems;
}

/** "dir/sub/file.yaml" -> "dir/sub"; "file.yaml" -> "". */
function dirName(fileName: string): string {
  const cut = Math.max(fileName.lastIndexOf("/"), fileName.lastIndexOf("\\"));
  return cut < 0 ? "" : fileName.slice(0, cut);
}

function firstLine(message: string): string {
  return message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
}
