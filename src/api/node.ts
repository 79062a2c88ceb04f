/** The library for Node: everything in index.ts, plus loading scenario files from disk. */

export { loadBuiltinScenario, loadScenarioFile } from "../workload/scenario/file.js";
export { readTrace } from "../workload/trace/file.js";
export * from "./index.js";
