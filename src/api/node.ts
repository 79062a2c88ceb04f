/** The library for Node: everything in index.ts, plus loading scenario files from disk. */

export { loadScenarioFile } from "../workload/scenario-file.js";
export * from "./index.js";
