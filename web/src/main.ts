/**
 * The page: the controls, the worker that runs the simulation, and the panels it feeds. The
 * page keeps no simulation state of its own: each worker message is rendered as it comes.
 */

import type { PagingMode } from "../../src/api/index.js";
import { byId, h } from "./dom.js";
import type { FromWorker, RunSettings, RunState, ScenarioSource, ToWorker } from "./messages.js";
import { Charts } from "./panels/charts.js";
import { renderCompare } from "./panels/compare.js";
import { renderFrames } from "./panels/frames.js";
import { renderStep } from "./panels/step.js";
import { PAGE_SCENARIOS } from "./scenarios.js";

const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
const charts = new Charts(byId("charts"));

const scenarioSelect = byId<HTMLSelectElement>("scenario");
const fileInput = byId<HTMLInputElement>("file");
const modeSelect = byId<HTMLSelectElement>("mode");
const seedInput = byId<HTMLInputElement>("seed");
const accessesInput = byId<HTMLInputElement>("accesses");
const stepButton = byId<HTMLButtonElement>("step");
const runButton = byId<HTMLButtonElement>("run");
const errorBox = byId("error");
const status = byId("status");
const progress = byId("progress");

/** The loaded scenario file, if the user picked one (it replaces the built-in choice). */
let file: { name: string; text: string } | null = null;
let loaded = false;
let running = false;
let done = false;
let scenarioName = "";
/** Each domain's paging mode, by name, in the loaded run. */
let modes: Record<string, PagingMode> = {};
/** A load was sent and not yet answered: an error now means nothing is loaded. */
let loading = false;

for (const s of PAGE_SCENARIOS) {
  scenarioSelect.append(h("option", { value: s.name, title: s.summary }, s.name));
}

function send(msg: ToWorker): void {
  worker.postMessage(msg);
}

function settings(): RunSettings {
  const source: ScenarioSource =
    file !== null
      ? { kind: "file", name: file.name, text: file.text }
      : { kind: "builtin", name: scenarioSelect.value };
  const number = (input: HTMLInputElement) =>
    input.value.trim() === "" ? null : Number(input.value);
  return {
    source,
    mode: modeSelect.value === "" ? null : (modeSelect.value as PagingMode),
    seed: number(seedInput),
    accesses: number(accessesInput),
  };
}

function showError(message: string | null): void {
  errorBox.hidden = message === null;
  errorBox.textContent = message ?? "";
}

function setBusy(text: string): void {
  status.textContent = text;
  document.body.dataset.state = "busy";
}

function showState(s: RunState): void {
  running = s.running;
  done = s.done;
  renderFrames(
    byId<HTMLCanvasElement>("frames"),
    byId("frames-legend"),
    s.owners,
    s.ownerNames,
    s.ownerCounts,
    s.framesUsed,
    s.chart.ballooned,
  );
  charts.push(s.chart);
  stepButton.disabled = !loaded || done;
  runButton.disabled = !loaded || done;
  runButton.firstChild!.textContent = running ? "Pause " : "Run ";
  // The live region changes only with the phase, so that a screen reader is not told every
  // slice's count; the count is beside it.
  const ended = s.endedEarly !== "" ? `ended early (${s.endedEarly})` : "done";
  const phase = `${scenarioName}: ${done ? ended : running ? "running" : "paused"}`;
  if (status.textContent !== phase) status.textContent = phase;
  progress.textContent = `${s.accessesDone} of ${s.accesses} accesses`;
  document.body.dataset.state = done ? "done" : running ? "running" : "ready";
  document.body.dataset.accesses = String(s.accessesDone);
}

worker.onmessage = (e: MessageEvent<FromWorker>) => {
  const msg = e.data;
  switch (msg.type) {
    case "loaded":
      showError(null);
      loaded = true;
      loading = false;
      modes = Object.fromEntries(msg.domains.map((d) => [d.name, d.mode]));
      document.body.dataset.loads = String(Number(document.body.dataset.loads ?? 0) + 1);
      scenarioName = `${msg.scenario} (seed ${msg.seed}; ${msg.domains
        .map((d) => `${d.name}: ${d.mode}`)
        .join(", ")})`;
      charts.reset(msg.domains.map((d) => d.name));
      byId("step-body").replaceChildren(h("p", {}, "Press Step (s) to make one access."));
      showState(msg.state);
      return;
    case "step":
      renderStep(byId("step-body"), msg.record, modes);
      showState(msg.state);
      document.body.dataset.steps = String(Number(document.body.dataset.steps ?? 0) + 1);
      return;
    case "state":
      showState(msg.state);
      return;
    case "compare":
      renderCompare(byId("compare-body"), msg.comparison);
      document.body.dataset.state = "compared";
      status.textContent = `compared ${msg.comparison.modes.join(", ")}`;
      return;
    case "error":
      running = false;
      if (loading) {
        loading = false;
        loaded = false;
        stepButton.disabled = true;
        runButton.disabled = true;
      }
      showError(msg.message);
      document.body.dataset.state = "error";
      status.textContent = "error";
      return;
  }
};

function load(): void {
  loaded = false;
  loading = true;
  document.body.dataset.steps = "0";
  setBusy("loading...");
  send({ type: "load", settings: settings() });
}

function step(): void {
  if (!loaded || done) return;
  send({ type: "step" });
}

function runOrPause(): void {
  if (!loaded || done) return;
  send({ type: running ? "pause" : "run" });
  running = !running;
}

function selectView(which: "run" | "compare"): void {
  byId("view-run").hidden = which !== "run";
  byId("view-compare").hidden = which !== "compare";
  byId("tab-run").setAttribute("aria-selected", String(which === "run"));
  byId("tab-compare").setAttribute("aria-selected", String(which === "compare"));
}

byId("controls").addEventListener("submit", (e) => {
  e.preventDefault();
  load();
});
stepButton.addEventListener("click", step);
runButton.addEventListener("click", runOrPause);
scenarioSelect.addEventListener("change", () => {
  file = null;
  fileInput.value = "";
});
fileInput.addEventListener("change", async () => {
  const f = fileInput.files?.[0];
  file = f ? { name: f.name, text: await f.text() } : null;
  if (file !== null) load();
});
byId("tab-run").addEventListener("click", () => selectView("run"));
byId("tab-compare").addEventListener("click", () => selectView("compare"));
byId("compare-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const modes = [...document.querySelectorAll<HTMLInputElement>("input[name=cmode]:checked")].map(
    (i) => i.value as PagingMode,
  );
  if (modes.length === 0) {
    showError("pick at least one mode to compare");
    return;
  }
  showError(null);
  setBusy(`comparing ${modes.join(", ")}...`);
  send({ type: "compare", settings: settings(), modes });
});

document.addEventListener("keydown", (e) => {
  const target = e.target as HTMLElement;
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName)) return;
  // A focused button already answers space and Enter itself.
  if (target.tagName === "BUTTON" && (e.key === " " || e.key === "Enter")) return;
  if (e.key === "s" || e.key === "ArrowRight") step();
  else if (e.key === "r" || e.key === " ") runOrPause();
  else if (e.key === "c") selectView("compare");
  else if (e.key === "v") selectView("run");
  else return;
  e.preventDefault();
});

load();
