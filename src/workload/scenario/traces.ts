/** Reading the traces that trace processes name, and checking that their domains hold them. */

import { fitProblem } from "../../config/fit.js";
import type { Scenario } from "../../config/scenario.js";
import type { TraceRecords } from "../../config/trace.js";
import { traceLayout, traceProblem } from "../trace/layout.js";
import type { Segment } from "./problems.js";
import type { ScenarioFile } from "./schema.js";

/** `file` as read from `baseDir`: absolute paths stay as they are. */
export function resolveTracePath(file: string, baseDir: string): string {
  if (baseDir === "" || file.startsWith("/") || /^[A-Za-z]:[\\/]/.test(file)) return file;
  return `${baseDir}/${file}`;
}

/**
 * Reads the trace of every trace process into its spec (one read per file), then checks that
 * each domain holds what its traces touch. Returns the problems, by path in the file.
 */
export function readTraces(
  scenario: Scenario,
  file: ScenarioFile,
  loadTrace: (path: string) => TraceRecords,
  baseDir: string,
): { path: Segment[]; message: string }[] {
  const problems: { path: Segment[]; message: string }[] = [];
  const read = new Map<string, TraceRecords | string>();
  scenario.domains.forEach((domain, i) => {
    const traceBytes: number[] = [];
    domain.processes.forEach((spec, j) => {
      if (spec.trace === null) return;
      const path = resolveTracePath(spec.trace.file, baseDir);
      let got = read.get(path);
      if (got === undefined) {
        try {
          got = loadTrace(path);
          const problem = traceProblem(got);
          if (problem !== "") got = `${path}: ${problem}`;
        } catch (e) {
          got = e instanceof Error ? e.message : String(e);
        }
        read.set(path, got);
      }
      if (typeof got === "string") {
        problems.push({
          path: ["domains", i, "processes", j, "trace"],
          message: `cannot replay this trace: ${got}`,
        });
        return;
      }
      spec.trace.data = got;
      spec.trace.path = path;
      spec.workingSet = traceLayout(got).pages * 4096;
      traceBytes[j] = spec.workingSet;
    });
    const fit = fitProblem(domain.memory, file.domains[i].processes, traceBytes);
    if (fit !== "") problems.push({ path: ["domains", i, "processes"], message: fit });
  });
  return problems;
}
