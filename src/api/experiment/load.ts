/** An experiment file read and checked, with the figures of the results table known to its plots. */

import type { Experiment } from "../../workload/experiment/experiment.js";
import { loadExperimentFile } from "../../workload/experiment/file.js";
import { METRIC_COLUMNS } from "./row.js";

/** Reads an experiment file and its base scenario; throws ScenarioError naming file:line. */
export function loadExperiment(path: string): Experiment {
  return loadExperimentFile(path, METRIC_COLUMNS);
}
