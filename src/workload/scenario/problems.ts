import { PROBLEMS_SHOWN } from "../../config/limits.js";
import { quote } from "./text.js";

/**
 * What is wrong with a scenario, and where: one problem per mistake, each with its path in the
 * scenario and, when known, its line and column; ScenarioError carries them all.
 */

/** One thing wrong with a scenario file. line and column are 1-based, when known. */
export interface ScenarioProblem {
  /** Where in the scenario, e.g. "domains[0].processes[1].working_set"; "" for the whole file. */
  path: string;
  line?: number;
  column?: number;
  message: string;
}

/**
 * A scenario that cannot be read or is not valid. The message has one line per problem, the
 * first PROBLEMS_SHOWN of them, then a count of the rest.
 */
export class ScenarioError extends Error {
  override readonly name = "ScenarioError";
  readonly file: string;
  /** The first problem's path, line and column. */
  readonly path: string;
  readonly line: number | undefined;
  readonly column: number | undefined;
  /** Every problem, sorted by position. */
  readonly problems: readonly ScenarioProblem[];

  constructor(file: string, problems: ScenarioProblem[]) {
    const sorted = sortProblems(problems);
    const lines = sorted.slice(0, PROBLEMS_SHOWN).map((p) => formatProblem(file, p));
    const more = sorted.length - PROBLEMS_SHOWN;
    if (more > 0) {
      lines.push(`${file}: and ${more.toLocaleString("en-US")} more problems`);
    }
    super(lines.join("\n"));
    this.file = file;
    this.problems = sorted;
    this.path = sorted[0]?.path ?? "";
    this.line = sorted[0]?.line;
    this.column = sorted[0]?.column;
  }
}

/** FILE:LINE:COL: PATH: MESSAGE, leaving out the parts that are unknown or empty. */
export function formatProblem(file: string, p: ScenarioProblem): string {
  const where = p.line === undefined ? file : `${file}:${p.line}:${p.column ?? 1}`;
  return p.path === "" ? `${where}: ${p.message}` : `${where}: ${p.path}: ${p.message}`;
}

function sortProblems(problems: ScenarioProblem[]): ScenarioProblem[] {
  const key = (p: ScenarioProblem) => [p.line ?? Infinity, p.column ?? 0];
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => {
      const [la, ca] = key(a.p);
      const [lb, cb] = key(b.p);
      return la - lb || ca - cb || a.i - b.i;
    })
    .map(({ p }) => p);
}

/** A step of a path into the scenario: a key, or an index in a list. */
export type Segment = PropertyKey;

/** ["domains", 0, "memory"] -> "domains[0].memory". */
export function formatPath(path: readonly Segment[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(String(seg)))
      out += out === "" ? String(seg) : `.${String(seg)}`;
    else out += `[${quote(String(seg))}]`;
  }
  return out;
}
