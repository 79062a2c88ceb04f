/**
 * memvisor's library entry point: build a Simulation from a Scenario, run it or step it, and
 * read its Report; compare paging modes, vary a parameter, sweep the number of domains; read a
 * trace's records and the address space its replay gets. Works in Node and in the browser
 * (nothing here touches the file system: reading scenario and trace files, and importing
 * lackey traces, is in "memvisor/node"). The CLI and the web page use only these two entry
 * points.
 */

export {
  CPU_NAMES,
  CPU_PROFILES,
  type CpuName,
  type CpuProfile,
  DEFAULT_CPU,
} from "../config/cpu.js";
export { LIMITS } from "../config/limits.js";
export { formatSize, formatSizeApprox, parseSize } from "../config/sizes.js";
export { Trace, type TraceRecords } from "../config/trace.js";
export { PAGE_SIZE } from "../hw/addr.js";
export { COST_COUNTERS } from "../metrics/cost.js";
export { COUNTER_NAMES, VMEXIT_REASONS } from "../metrics/counters.js";
export {
  BUILTIN_SCENARIOS,
  builtinScenario,
  DEFAULT_SCENARIO,
} from "../workload/scenario/builtin.js";
export { type ParseOptions, parseScenario } from "../workload/scenario/parse.js";
export { ScenarioError, type ScenarioProblem } from "../workload/scenario/problems.js";
export { escapeControls } from "../workload/scenario/text.js";
export { type ScenarioFileInput, scenarioToFile } from "../workload/scenario/to-file.js";
export { decodeTrace } from "../workload/trace/format.js";
export { TRACE_KIND_NAMES, TraceError } from "../workload/trace/lackey.js";
export { type TraceLayout, traceLayout, traceProblem } from "../workload/trace/layout.js";
export {
  type Comparison,
  combineResults,
  compareModes,
  compareTasks,
  compareVarying,
  comparisonOf,
  type ModeResult,
  modeResult,
  parameterProblem,
  VARIABLE_PARAMETERS,
  type VariableParameter,
  type Variation,
  variationOf,
  variationProblem,
  varyingTasks,
  withParameter,
} from "./compare.js";
export { COUNTER_DOCS, HOST_COUNTER_DOCS, walkRefsDoc } from "./counter-docs.js";
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
export { checkCycleTotals, OptionsError, SEED_MAX, SWEEP_MAX_DOMAINS } from "./options.js";
export { type RunOutcome, type RunTask, reportOf, runTask } from "./run-task.js";
export { DOMAIN_QUANTUM, Simulation, type SimulationOptions } from "./simulation.js";
export type { StepExit, StepLevel, StepNestedRef, StepRecord, StepWalk } from "./step.js";
export { decodeErrorCode, STEP_EVENT_KINDS, type StepEvent, type StepEventKind } from "./story.js";
export {
  cloneDomains,
  type Sweep,
  type SweepOptions,
  type SweepPoint,
  sweepDomains,
  sweepOf,
  sweepTasks,
} from "./sweep.js";
export * from "./types.js";
export {
  agrees,
  type Published,
  VALIDATION_ROWS,
  type Validation,
  type ValidationResult,
  type ValidationRow,
  type ValidationSize,
  validate,
} from "./validate.js";
export { VERSION } from "./version.js";
