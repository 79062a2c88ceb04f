/**
 * `memvisor run --from REPORT.json`: the scenario a printed report ran, read back from its
 * resolved_scenario through the scenario file's validation. A run report holds one; a comparison
 * holds one per mode, chosen with --mode; a comparison over values (--vary) and a sweep hold
 * many runs, and the message says how to take one out. Every failure names the file and what was
 * expected, as a UsageError or a ScenarioError (exit 2).
 */

import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import {
  type PagingMode,
  parseScenario,
  type Scenario,
  ScenarioError,
  VERSION,
} from "../api/index.js";
import { openTrace } from "../api/node.js";
import { UsageError } from "./errors.js";

/** The largest report read: a compare report with long series is tens of MiB. */
const REPORT_MAX = 1024 * 1024 * 1024;

const WHAT =
  "a report that memvisor run, compare or sweep printed with --json " +
  '(a JSON object with "memvisor" and a resolved_scenario)';

const OS_REASONS: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "is a directory",
};

function readReportText(path: string): string {
  const fail = (why: string): never => {
    throw new UsageError(`--from ${path}: cannot read the file: ${why}`);
  };
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    return fail(OS_REASONS[code] ?? (e as Error).message);
  }
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) fail("is a directory, not a report");
    if (!stat.isFile()) fail("is not a regular file");
    if (stat.size > REPORT_MAX) fail("it is larger than 1 GiB: not a memvisor report");
    const buf = Buffer.alloc(stat.size);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    return buf.subarray(0, n).toString("utf8");
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? "";
    return fail(OS_REASONS[code] ?? (e as Error).message);
  } finally {
    closeSync(fd);
  }
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The run a report file holds: its resolved scenario and where it is in the file (a JSON path).
 * `mode` chooses among a comparison's modes.
 */
function pickRun(path: string, data: Json, mode: PagingMode | undefined): [Json, string] {
  const bad = (why: string): never => {
    throw new UsageError(`--from ${path}: ${why}`);
  };
  if (Array.isArray(data.points)) {
    return bad(
      `a comparison over values (compare --vary) holds ${data.points.length} values' runs; ` +
        "--from takes one run's report: take one out, e.g. " +
        `jq '.points[0].comparison.results[1].report' ${path} > run.json`,
    );
  }
  if (Array.isArray(data.results)) {
    const results = data.results.filter(isObject);
    if (results.some((r) => typeof r.domains === "number")) {
      return bad(
        `a sweep holds ${results.length} runs (1 to ${results.length} domains); --from takes ` +
          `one run's report: take one out, e.g. jq '.results[1].report' ${path} > run.json`,
      );
    }
    const modes = results.map((r) => String(r.mode));
    const i = results.length === 1 && mode === undefined ? 0 : modes.indexOf(mode ?? "");
    if (i < 0) {
      const which = mode === undefined ? "" : `; it has no run under ${mode}`;
      return bad(
        `a comparison holds the runs of ${results.length} mode${results.length === 1 ? "" : "s"} ` +
          `(${modes.join(", ")}): ` +
          `choose one with --mode${which}`,
      );
    }
    const report = results[i].report;
    if (!isObject(report)) return bad(`results[${i}].report: expected ${WHAT}`);
    return [report, `results[${i}].report.`];
  }
  return [data, ""];
}

/**
 * The scenario a report file ran (with --mode, a comparison's run under that mode), ready for a
 * Simulation; the run's options (seed, length, mode) are in it.
 */
export function scenarioFromReport(path: string, mode: PagingMode | undefined): Scenario {
  const text = readReportText(path);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--from ${path}: not JSON (${(e as Error).message}); expected ${WHAT}`);
  }
  if (!isObject(data) || typeof data.memvisor !== "string") {
    throw new UsageError(`--from ${path}: not a memvisor report; expected ${WHAT}`);
  }
  if (data.memvisor !== VERSION) {
    throw new UsageError(
      `--from ${path}: written by memvisor ${JSON.stringify(data.memvisor).slice(0, 40)}, and ` +
        `this is memvisor ${VERSION}: a report is rerun by the version that wrote it ` +
        "(another may count differently)",
    );
  }
  const [report, at] = pickRun(path, data, mode);
  const resolved = report.resolved_scenario;
  if (!isObject(resolved)) {
    throw new UsageError(
      `--from ${path}: ${at}resolved_scenario: missing; expected ${WHAT} ` +
        "(a report of memvisor run, not its text output)",
    );
  }
  try {
    return parseScenario(JSON.stringify(resolved), `${path}.json`, {
      loadTrace: (path) => openTrace(path),
      baseDir: "",
    });
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    // Positions in the text made from the report mean nothing to its reader: paths only.
    throw new ScenarioError(
      path,
      e.problems.map((p) => ({
        path: `${at}resolved_scenario${p.path === "" ? "" : `.${p.path}`}`,
        message: p.message,
      })),
    );
  }
}
