/**
 * memvisor's library entry point: build a Simulation from a Scenario, run it or step it, and
 * read its Report. Works in Node and in the browser (nothing here touches the file system;
 * loadScenarioFile, for Node, is exported from "memvisor/node").
 */

export { formatSize, parseSize } from "../config/sizes.js";
export { COST_DEFAULTS } from "../metrics/cost.js";
export { COUNTER_NAMES } from "../metrics/counters.js";
export {
  BUILTIN_SCENARIOS,
  builtinScenario,
  DEFAULT_SCENARIO,
} from "../workload/scenario/builtin.js";
export { parseScenario } from "../workload/scenario/parse.js";
export { ScenarioError } from "../workload/scenario/problems.js";
export { type Comparison, compareModes, type ModeResult } from "./compare.js";
export { SimulationError } from "./domain.js";
export {
  FRAME_DOMAIN,
  FRAME_FREE,
  FRAME_SHADOW,
  FRAME_SHARED,
  FRAME_VMM,
  type FrameMap,
  type GuestLevel,
  type GuestWalk,
  type P2mLookup,
  type TlbSet,
  type TlbWay,
} from "./inspect.js";
export {
  DOMAIN_QUANTUM,
  SERIES_COUNTERS,
  Simulation,
  type SimulationOptions,
} from "./simulation.js";
export type { StepExit, StepLevel, StepRecord, StepWalk } from "./step.js";
export { cloneDomains, type Sweep, type SweepPoint, sweepDomains } from "./sweep.js";
export * from "./types.js";
export { VERSION } from "./version.js";
