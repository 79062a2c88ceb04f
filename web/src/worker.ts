/**
 * The simulation worker: owns one Simulation and answers the page's messages (messages.ts). A
 * run goes in slices of about SLICE_MS, with a state message after each, so a pause or a step
 * is handled within one slice and the page gets steady updates.
 */

import {
  checkCycleTotals,
  combineResults,
  modeResult,
  type PagingMode,
  type Simulation as Sim,
  Simulation,
  SimulationError,
  type StepEventKind,
  type StepRecord,
  VMEXIT_REASONS,
} from "../../src/api/index.js";
import type { ChartPoint, FromWorker, RunSettings, RunState, ToWorker } from "./messages.js";
import { loadScenario, PAGE_SCENARIOS } from "./scenarios.js";

const SLICE_MS = 40;

let sim: Sim | null = null;
let running = false;
/** The current chain of slices: a pause then a run must not leave two chains going. */
let chain = 0;

function post(message: FromWorker): void {
  const transfer = "state" in message ? [message.state.owners.buffer] : [];
  (self as unknown as Worker).postMessage(message, transfer as Transferable[]);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function create(settings: RunSettings): Sim {
  const scenario = loadScenario(settings.source);
  return new Simulation(scenario, {
    ...(settings.mode ? { mode: settings.mode } : {}),
    ...(settings.seed !== null ? { seed: settings.seed } : {}),
    ...(settings.accesses !== null ? { accesses: settings.accesses } : {}),
  });
}

function chartPoint(s: Sim): ChartPoint {
  const exits: Record<string, number> = {};
  for (const r of VMEXIT_REASONS) exits[r] = 0;
  const memory: Record<string, number> = {};
  const target: Record<string, number> = {};
  const ballooned: Record<string, number> = {};
  let shadowPages = 0;
  for (const d of s.domains) {
    const c = d.report().counters;
    for (const r of VMEXIT_REASONS) exits[r] += c[`vmexits_${r}`];
    shadowPages += c.shadow_pages ?? 0;
    // Natively a domain holds its machine's frames in use; virtualized, its host frames.
    memory[d.spec.name] = d.hostFramesUsed() * 4096;
    target[d.spec.name] = (c.balloon_target_pages ?? 0) * 4096;
    ballooned[d.spec.name] = c.balloon_pages ?? 0;
  }
  const sharing = s.host?.sharing;
  return {
    cycles: s.time(),
    exits,
    shadowPages,
    memory,
    target,
    ballooned,
    savedBytes: (sharing?.pagesSharing ?? 0) * 4096,
  };
}

function state(s: Sim): RunState {
  const map = s.frameMap();
  const ending = s.ending();
  const endedEarly =
    ending.status === "early"
      ? ending.reasons.map((r) => `domain ${r.domain}: ${r.detail}`).join("; ")
      : "";
  return {
    accessesDone: s.accessesDone,
    accesses: s.scenario.run.accesses,
    done: s.done || endedEarly !== "",
    endedEarly,
    running,
    owners: map.owners,
    ownerNames: map.names,
    ownerCounts: map.counts,
    framesTotal: map.owners.length,
    framesUsed: map.used,
    chart: chartPoint(s),
  };
}

function slice(token: number): void {
  if (!running || sim === null || token !== chain) return;
  const end = performance.now() + SLICE_MS;
  let more = true;
  while (more && performance.now() < end) more = sim.runTurn();
  if (!more) running = false;
  post({ type: "state", state: state(sim) });
  if (running) setTimeout(slice, 0, token);
}

/**
 * One mode of a comparison, run to the end in slices with its progress after each (the page
 * runs one worker per mode, and ends them to cancel). Its result carries no time series: the
 * page shows only the summaries.
 */
function compareMode(settings: RunSettings, mode: PagingMode): void {
  let s: Sim;
  try {
    s = create({ ...settings, mode });
  } catch (e) {
    if (!(e instanceof SimulationError)) throw e;
    post({ type: "compare-not-run", mode, reason: e.message });
    return;
  }
  const slice = (): void => {
    try {
      const end = performance.now() + SLICE_MS * 5;
      let more = true;
      while (more && performance.now() < end) more = s.runTurn();
      if (more) {
        post({
          type: "compare-progress",
          mode,
          fraction: s.accessesDone / s.scenario.run.accesses,
        });
        setTimeout(slice, 0);
        return;
      }
      const report = s.finish();
      checkCycleTotals(report);
      const result = modeResult(mode, report);
      result.report = { ...report, series: [] };
      post({ type: "compare-result", mode, result });
    } catch (e) {
      if (!(e instanceof SimulationError)) throw e;
      post({ type: "compare-not-run", mode, reason: e.message });
    }
  };
  slice();
}

/**
 * Step until an access has an event of `kind` (the step API's story), in slices like a run so
 * that a pause (or another message) stops it; `limit` accesses at most.
 */
function seek(token: number, kind: StepEventKind, limit: number, done: number): void {
  if (sim === null || token !== chain || !running) return;
  const end = performance.now() + SLICE_MS;
  let record: StepRecord | null = null;
  let steps = done;
  while (performance.now() < end && steps < limit) {
    record = sim.step();
    steps++;
    const found = record?.events.some((e) => e.kind === kind) ?? false;
    if (found || record === null || steps >= limit) {
      running = false;
      post({ type: "seek", record, found, steps, kind, state: state(sim) });
      return;
    }
  }
  post({ type: "seeking", steps, kind });
  setTimeout(seek, 0, token, kind, limit, steps);
}

function handle(msg: ToWorker): void {
  switch (msg.type) {
    case "load": {
      running = false;
      sim = null;
      const s = create(msg.settings);
      sim = s;
      post({
        type: "loaded",
        scenario: s.scenario.name,
        seed: s.scenario.seed,
        domains: s.domains.map((d) => ({
          name: d.spec.name,
          mode: d.spec.mode,
          balloon: d.kernel.balloon !== null,
        })),
        state: state(s),
      });
      return;
    }
    case "step": {
      if (sim === null) return;
      running = false;
      const record = sim.step();
      post({ type: "step", record, state: state(sim) });
      return;
    }
    case "seek":
      if (sim === null || sim.done) return;
      running = true;
      setTimeout(seek, 0, ++chain, msg.kind, msg.limit, 0);
      return;
    case "run":
      if (sim === null || running || sim.done) return;
      running = true;
      setTimeout(slice, 0, ++chain);
      return;
    case "pause":
      running = false;
      if (sim !== null) post({ type: "state", state: state(sim) });
      return;
    case "compare-mode":
      compareMode(msg.settings, msg.mode);
      return;
    case "combine": {
      const comparison = combineResults(msg.scenario, msg.modes, msg.results, msg.notRun);
      post({ type: "compare", comparison });
      return;
    }
  }
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  try {
    handle(e.data);
  } catch (err) {
    running = false;
    post({ type: "error", message: describe(err) });
  }
};

// The page lists the scenarios from here, so that its own bundle carries neither the scenario
// files nor their validator.
post({ type: "scenarios", list: PAGE_SCENARIOS });
