/**
 * The page: the controls, the worker that runs the simulation, and the panels it feeds. The
 * page keeps no simulation state of its own: each worker message is rendered as it comes.
 */

import type { ModeResult, PagingMode, StepEventKind, StepRecord } from "../../src/api/index.js";
import { byId, h } from "./dom.js";
import type { FromWorker, RunSettings, RunState, ScenarioSource, ToWorker } from "./messages.js";
import { Charts } from "./panels/charts.js";
import { renderCompare } from "./panels/compare.js";
import { renderFrames } from "./panels/frames.js";
import { EVENT_LABELS, renderStep } from "./panels/step.js";
import { TOUR_SCENARIO, TOUR_STOPS } from "./tour.js";

const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
const charts = new Charts(byId("charts"));

const scenarioSelect = byId<HTMLSelectElement>("scenario");
const fileInput = byId<HTMLInputElement>("file");
const modeSelect = byId<HTMLSelectElement>("mode");
const seedInput = byId<HTMLInputElement>("seed");
const accessesInput = byId<HTMLInputElement>("accesses");
const stepButton = byId<HTMLButtonElement>("step");
const runButton = byId<HTMLButtonElement>("run");
const seekButton = byId<HTMLButtonElement>("seek");
const seekKind = byId<HTMLSelectElement>("seek-kind");
const tourBox = byId("tour-box");
const tourTitle = byId("tour-title");
const tourText = byId("tour-text");
const tourNext = byId<HTMLButtonElement>("tour-next");
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
/**
 * Loads sent and not yet answered (each changed setting sends one): only the answer to the
 * last counts, and an error then means nothing is loaded.
 */
let pending = 0;

/** One load answered: true if it is the last one sent (the page shows it). */
function settle(): boolean {
  pending = Math.max(0, pending - 1);
  document.body.dataset.pending = String(pending);
  return pending === 0;
}
/** The tour's next stop (its index in TOUR_STOPS), or -1 when no tour is on. */
let tourStop = -1;
/** The access number the step panel shows (-1: none), to mark it stale once the run moves on. */
let shownAccess = -1;

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
  seekButton.disabled = !loaded || done;
  // The step panel shows one access: once the run has gone past it, say so rather than keep
  // showing it as "the current access".
  if (shownAccess >= 0 && s.accessesDone !== shownAccess) {
    byId("step-body").replaceChildren(
      h(
        "p",
        { "data-field": "stale" },
        `The run has made ${s.accessesDone} accesses since the one shown (access ${shownAccess}). Press Step (s) to see the next one.`,
      ),
    );
    shownAccess = -1;
  }
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
    case "scenarios":
      for (const s of msg.list) {
        scenarioSelect.append(h("option", { value: s.name, title: s.summary }, s.name));
      }
      load();
      return;
    case "loaded":
      if (!settle()) return;
      showError(null);
      loaded = true;
      modes = Object.fromEntries(msg.domains.map((d) => [d.name, d.mode]));
      document.body.dataset.loads = String(Number(document.body.dataset.loads ?? 0) + 1);
      scenarioName = `${msg.scenario} (seed ${msg.seed}; ${msg.domains
        .map((d) => `${d.name}: ${d.mode}`)
        .join(", ")})`;
      charts.reset(msg.domains);
      shownAccess = -1;
      byId("step-body").replaceChildren(h("p", {}, "Press Step (s) to make one access."));
      if (tourStop === 0) {
        tourNext.disabled = false;
        tourNext.focus();
      }
      showState(msg.state);
      return;
    case "step":
      showStep(msg.record, msg.state);
      return;
    case "seeking":
      progress.textContent = `looking for the next ${EVENT_LABELS[msg.kind]}: ${msg.steps} accesses so far`;
      return;
    case "seek":
      showStep(msg.record, msg.state);
      if (tourStop >= 0 && TOUR_STOPS[tourStop].kind === msg.kind) {
        tourTitle.textContent = `Stop ${tourStop + 1} of ${TOUR_STOPS.length}: ${EVENT_LABELS[msg.kind]}`;
        tourText.textContent = TOUR_STOPS[tourStop].text;
        tourStop++;
        tourNext.disabled = tourStop >= TOUR_STOPS.length;
        tourNext.focus();
      }
      status.textContent = msg.found
        ? `${scenarioName}: ${EVENT_LABELS[msg.kind]} found after ${msg.steps} accesses.`
        : `${scenarioName}: no ${EVENT_LABELS[msg.kind]} in ${msg.steps} accesses.`;
      if (msg.found) {
        // Mark the event sought in the story, and bring it into view.
        const li = document.querySelector<HTMLElement>(`#step-body li[data-event='${msg.kind}']`);
        li?.classList.add("sought");
        li?.scrollIntoView({ block: "nearest" });
      }
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
      if (pending > 0) {
        if (!settle()) return;
        // Nothing is loaded: no panel may go on showing the previous run.
        loaded = false;
        stepButton.disabled = true;
        runButton.disabled = true;
        seekButton.disabled = true;
        shownAccess = -1;
        byId("step-body").replaceChildren(h("p", {}, "Nothing is loaded."));
        byId("frames-legend").replaceChildren();
        const canvas = byId<HTMLCanvasElement>("frames");
        canvas.height = 1;
        canvas.setAttribute("aria-label", "Host frames: nothing is loaded");
        charts.reset([]);
        progress.textContent = "";
      }
      showError(msg.message);
      document.body.dataset.state = "error";
      status.textContent = "error";
      return;
  }
};

function load(): void {
  loaded = false;
  // A comparison made with other settings no longer applies.
  cancelCompare();
  byId("compare-body").replaceChildren();
  pending++;
  document.body.dataset.pending = String(pending);
  document.body.dataset.steps = "0";
  setBusy("loading...");
  send({ type: "load", settings: settings() });
}

function showStep(record: StepRecord | null, s: RunState): void {
  shownAccess = -1;
  showState(s);
  const mode = record ? modes[record.domain] : undefined;
  renderStep(byId("step-body"), record, mode, s.accessesDone);
  shownAccess = record ? s.accessesDone : -1;
  document.body.dataset.steps = String(Number(document.body.dataset.steps ?? 0) + 1);
}

function step(): void {
  if (!loaded || done) return;
  send({ type: "step" });
}

/** Accesses a seek may step before it gives up. */
const SEEK_LIMIT = 200_000;

/** Start the guided tour: the tour scenario under shadow paging, from its start. */
function startTour(): void {
  file = null;
  fileInput.value = "";
  scenarioSelect.value = TOUR_SCENARIO;
  modeSelect.value = "shadow";
  seedInput.value = "";
  accessesInput.value = "";
  load();
  tourStop = 0;
  tourBox.hidden = false;
  tourTitle.textContent = "Guided tour";
  tourText.textContent =
    "the article's sequence, one stop at a time. Press Next stop: the page steps to the next access where it happens, and the story below shows it.";
  // Enabled once the tour scenario is loaded.
  tourNext.disabled = true;
}

function endTour(): void {
  tourStop = -1;
  tourBox.hidden = true;
}

function nextTourStop(): void {
  if (tourStop < 0 || tourStop >= TOUR_STOPS.length) return;
  seekKind.value = TOUR_STOPS[tourStop].kind;
  seekNext();
}

function seekNext(): void {
  if (!loaded || done) return;
  running = true;
  setBusy(`looking for the next ${EVENT_LABELS[seekKind.value as StepEventKind]}...`);
  send({ type: "seek", kind: seekKind.value as StepEventKind, limit: SEEK_LIMIT });
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
  // Space and Enter now go to Step, not to another restart.
  stepButton.focus();
});
stepButton.addEventListener("click", step);
runButton.addEventListener("click", runOrPause);
seekButton.addEventListener("click", seekNext);
byId("tour").addEventListener("click", startTour);
tourNext.addEventListener("click", nextTourStop);
byId("tour-end").addEventListener("click", endTour);
// A changed setting applies at once.
scenarioSelect.addEventListener("change", () => {
  endTour();
  file = null;
  fileInput.value = "";
  load();
});
modeSelect.addEventListener("change", load);
for (const input of [seedInput, accessesInput]) {
  input.addEventListener("change", () => {
    if (input.checkValidity()) load();
  });
}
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
  compare(modes);
});
byId("compare-cancel").addEventListener("click", () => {
  cancelCompare();
  status.textContent = "comparison cancelled";
  document.body.dataset.state = "cancelled";
});

/** The workers of the comparison in progress, one per mode; ended when done or cancelled. */
let comparing: Worker[] = [];

function cancelCompare(): void {
  for (const w of comparing) w.terminate();
  comparing = [];
  byId("compare-cancel").hidden = true;
  byId("compare-progress").replaceChildren();
}

/**
 * Run the scenario under each mode, each in a worker of its own (they run at once, on as many
 * cores as the browser gives), with a progress bar each; the page's worker then sets the
 * results side by side.
 */
function compare(modes: PagingMode[]): void {
  cancelCompare();
  const run = settings();
  const results = new Map<PagingMode, ModeResult>();
  const notRun: { mode: PagingMode; reason: string }[] = [];
  const bars = new Map(
    modes.map((m) => [m, h("progress", { max: 1, value: 0, "aria-label": `${m}: progress` })]),
  );
  byId("compare-progress").replaceChildren(
    ...modes.map((m) => h("label", {}, `${m} `, bars.get(m))),
  );
  byId("compare-cancel").hidden = false;
  setBusy(`comparing ${modes.join(", ")}...`);
  const finishIfDone = (): void => {
    if (results.size + notRun.length < modes.length) return;
    cancelCompare();
    send({
      type: "combine",
      scenario: run.source.name,
      modes,
      results: modes.flatMap((m) => results.get(m) ?? []),
      notRun,
    });
  };
  for (const mode of modes) {
    const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
    comparing.push(w);
    w.onmessage = (e: MessageEvent<FromWorker>) => {
      const msg = e.data;
      if (msg.type === "compare-progress") {
        bars.get(mode)?.setAttribute("value", String(msg.fraction));
      } else if (msg.type === "compare-result") {
        bars.get(mode)?.setAttribute("value", "1");
        results.set(mode, msg.result);
        finishIfDone();
      } else if (msg.type === "compare-not-run") {
        notRun.push({ mode, reason: msg.reason });
        finishIfDone();
      } else if (msg.type === "error") {
        cancelCompare();
        showError(msg.message);
        status.textContent = "error";
        document.body.dataset.state = "error";
      }
    };
    w.postMessage({ type: "compare-mode", settings: run, mode } satisfies ToWorker);
  }
}

/** The page's single-letter keys. */
const SHORTCUTS = ["s", "r", "n", "c", "v"];

document.addEventListener("keydown", (e) => {
  const target = e.target as HTMLElement;
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  // Inside a form control the page's keys do nothing; in a menu they do not pick an option by
  // its first letter either (typing "s" for Step must not switch the mode to shadow).
  if (target.tagName === "SELECT" && SHORTCUTS.includes(e.key)) {
    e.preventDefault();
    return;
  }
  if (["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName) || target.isContentEditable) return;
  // A focused button already answers space and Enter itself.
  if (target.tagName === "BUTTON" && (e.key === " " || e.key === "Enter")) return;
  if (e.key === "s" || e.key === "ArrowRight") step();
  else if (e.key === "n") seekNext();
  else if (e.key === "r" || e.key === " ") runOrPause();
  else if (e.key === "c") selectView("compare");
  else if (e.key === "v") selectView("run");
  else return;
  e.preventDefault();
});
