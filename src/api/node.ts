/**
 * The library for Node: everything in index.ts, plus what reads and writes files: scenario
 * files and the traces they name, memvisor's trace files, and importing valgrind lackey traces.
 */

export { loadBuiltinScenario, loadScenarioFile } from "../workload/scenario/file.js";
export {
  checkOutput,
  discardPendingOutputs,
  type ImportResult,
  importLackey,
  OutputError,
  readTrace,
} from "../workload/trace/file.js";
export * from "./index.js";
