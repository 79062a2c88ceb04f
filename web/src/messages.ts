/**
 * The messages between the page and the simulation worker. The worker owns the Simulation; the
 * page only renders what it is sent, so a long run never blocks the page.
 */

import type {
  Comparison,
  ModeResult,
  PagingMode,
  StepEventKind,
  StepRecord,
} from "../../src/api/index.js";

/** A built-in scenario by name, or the text of a scenario file the user loaded. */
export type ScenarioSource =
  | { kind: "builtin"; name: string }
  | { kind: "file"; name: string; text: string };

export interface RunSettings {
  source: ScenarioSource;
  /** Every domain in this mode, or null for the scenario's own modes. */
  mode: PagingMode | null;
  /** null: the scenario's seed. */
  seed: number | null;
  /** null: the scenario's length. */
  accesses: number | null;
}

export type ToWorker =
  | { type: "load"; settings: RunSettings }
  | { type: "step" }
  /** Step until an access whose story has an event of `kind`, at most `limit` accesses. */
  | { type: "seek"; kind: StepEventKind; limit: number }
  | { type: "run" }
  | { type: "pause" }
  /** Run the scenario under one mode to the end (a compare worker: one per mode). */
  | { type: "compare-mode"; settings: RunSettings; mode: PagingMode }
  /** Set the modes' results side by side, the first mode the baseline. */
  | {
      type: "combine";
      scenario: string;
      modes: PagingMode[];
      results: ModeResult[];
      notRun: { mode: PagingMode; reason: string }[];
    };

/** What the charts plot at one instant: cumulative counters, summed over domains unless keyed. */
export interface ChartPoint {
  /** Simulated cycles of the host. */
  cycles: number;
  /** VM exits so far by reason (pf, cr3, invlpg, ept_violation, hypercall). */
  exits: Record<string, number>;
  /** Shadow pages in use, all domains. */
  shadowPages: number;
  /** Bytes of host memory each domain holds, and its balloon target (bytes; 0: none). */
  memory: Record<string, number>;
  target: Record<string, number>;
  /** Guest pages each domain's balloon holds (given back to the host: no host frame). */
  ballooned: Record<string, number>;
  /** Bytes saved by page sharing. */
  savedBytes: number;
}

/** The run's state after a step or a slice of a run. */
export interface RunState {
  accessesDone: number;
  accesses: number;
  /** The run is over: every access made, or it ended early (`endedEarly` says why). */
  done: boolean;
  /** Why the run ended before its accesses, domain by domain; "" when it did not. */
  endedEarly: string;
  running: boolean;
  /** Owner code of each host frame (see FrameMap), its names and counts. */
  owners: Uint8Array;
  ownerNames: string[];
  ownerCounts: number[];
  /** The report's host counters, for the frame map's totals. */
  framesTotal: number;
  framesUsed: number;
  chart: ChartPoint;
}

export type FromWorker =
  /** The built-in scenarios the page can run (the worker's first message): name and summary. */
  | { type: "scenarios"; list: { name: string; summary: string }[] }
  | {
      type: "loaded";
      scenario: string;
      seed: number;
      /** Each domain: its name, mode, and whether it runs a balloon driver. */
      domains: { name: string; mode: PagingMode; balloon: boolean }[];
      state: RunState;
    }
  | { type: "error"; message: string }
  | { type: "step"; record: StepRecord | null; state: RunState }
  /** A seek's answer: the access found (or the last one made: `found` false), and how many. */
  | {
      type: "seek";
      record: StepRecord | null;
      found: boolean;
      steps: number;
      kind: StepEventKind;
      state: RunState;
    }
  /** A seek in progress: accesses stepped so far. */
  | { type: "seeking"; steps: number; kind: StepEventKind }
  | { type: "state"; state: RunState }
  | { type: "compare"; comparison: Comparison }
  /** A compare worker's progress (fraction of its accesses), its result, or why it cannot run. */
  | { type: "compare-progress"; mode: PagingMode; fraction: number }
  | { type: "compare-result"; mode: PagingMode; result: ModeResult }
  | { type: "compare-not-run"; mode: PagingMode; reason: string };
