/**
 * The library for Node: everything in index.ts, plus what reads and writes files: scenario
 * files and the traces they name, memvisor's trace files, importing valgrind lackey traces,
 * experiments (files, tables, summaries, plots) and the pool of worker threads that runs them.
 */

export {
  type Experiment,
  type ExperimentPoint,
  experimentPoints,
  type GridSetting,
  type GridValue,
  type PlotSpec,
} from "../workload/experiment/experiment.js";
export { loadBuiltinScenario, loadScenarioFile } from "../workload/scenario/file.js";
export {
  checkOutput,
  discardPendingOutputs,
  type ImportResult,
  importLackey,
  OutputError,
  readTrace,
} from "../workload/trace/file.js";
export { FileTrace, openTrace } from "../workload/trace/stream.js";
export { loadExperiment } from "./experiment/load.js";
export { plotSpec, type RenderedPlot, renderPlots } from "./experiment/plot.js";
export {
  type Cell,
  HEADLINE_METRICS,
  METRIC_COLUMNS,
  type ResultRow,
  resultRow,
  rowColumns,
} from "./experiment/row.js";
export { parseShard, type Shard, shardPoints, WHOLE } from "./experiment/shard.js";
export {
  meanInterval,
  summarize,
  summaryColumns,
  summaryMetrics,
  tQuantile975,
} from "./experiment/summary.js";
export { csvHeader, csvLine, jsonLine, parseJsonLines, toCsv } from "./experiment/table.js";
export * from "./index.js";
export { defaultJobs, PoolClosedError, RunPool, runAll } from "./pool.js";
