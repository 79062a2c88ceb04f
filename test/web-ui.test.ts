/**
 * The web visualizer in a real browser: the page served by `memvisor ui` runs the simulator in
 * its worker, and what its panels show must be exactly what the library gives for the same
 * scenario, mode and seed in Node. Screenshots of each view go to test-artifacts/.
 */

import { existsSync } from "node:fs";
import { AxeBuilder } from "@axe-core/playwright";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { compareModes } from "../src/api/compare.js";
import { Simulation } from "../src/api/simulation.js";
import type { StepRecord } from "../src/api/step.js";
import { BUILTIN_SCENARIOS, builtinScenario } from "../src/workload/scenario/builtin.js";
import {
  ARTIFACTS,
  CHROMIUM,
  fields,
  type Harness,
  loadScenario,
  openPage,
  settled,
} from "./support/browser.js";

const hex = (n: number) => (n < 0 ? "-" : `0x${n.toString(16)}`);

/** What the step panel must show for a record: field name to text. */
function expected(r: StepRecord): Record<string, string> {
  const e: Record<string, string> = {
    domain: r.domain,
    process: r.process,
    pid: String(r.pid),
    access: r.access,
    gva: r.gva,
    offset: hex(r.offset),
    gfn: hex(r.guest.gfn),
    gpa: r.guest.gpa,
    "gpa-top": r.guest.gpa,
    "guest-root": hex(r.guest.rootGfn),
    tlb: r.tlb,
    walks: String(r.walks.length),
    exits: String(r.exits.length),
    mfn: hex(r.mfn),
    hpa: r.hpa,
    "guest-faults": String(r.guestFaults),
    cycles: String(Math.round(r.cycles * 10) / 10),
  };
  r.indices.forEach((idx, i) => {
    e[`index-${4 - i}`] = String(idx);
  });
  for (const l of r.guest.levels) {
    e[`gpte-${l.level}`] = l.entry;
    e[`gpte-flags-${l.level}`] = l.flags;
    e[`gpte-table-${l.level}`] = hex(l.tableGfn);
    e[`gpte-index-${l.level}`] = String(l.index);
  }
  if (r.p2m !== null) {
    e["p2m-gfn"] = hex(r.p2m.gfn);
    e["p2m-mfn"] = hex(r.p2m.mfn);
    e["p2m-type"] = r.p2m.type;
  }
  r.walks.forEach((w, i) => {
    e[`walk-${i}-root`] = hex(w.rootMfn);
    e[`walk-${i}-result`] = w.result;
    if (w.nested) return;
    for (const l of w.levels) {
      e[`walk-${i}-entry-${l.level}`] = l.entry;
      e[`walk-${i}-flags-${l.level}`] = l.flags;
      e[`walk-${i}-table-${l.level}`] = hex(l.tableMfn);
      e[`walk-${i}-index-${l.level}`] = String(l.index);
    }
  });
  for (const set of r.tlbSets) {
    const key = set.array.toLowerCase().replace(/ /g, "-");
    const current = set.ways.find((w) => w.current);
    if (current) e[`tlb-${key}-current`] = `${current.gva} -> ${hex(current.mfn)}`;
  }
  r.exits.forEach((x, i) => {
    e[`exit-${i}-reason`] = x.reason;
    if (x.gva !== "") e[`exit-${i}-gva`] = x.gva;
    e[`exit-${i}-outcome`] = x.outcome;
    for (const l of x.guestWalk?.levels ?? []) {
      e[`exit-${i}-walk-entry-${l.level}`] = l.entry;
      e[`exit-${i}-walk-flags-${l.level}`] = l.flags;
      e[`exit-${i}-walk-table-${l.level}`] = hex(l.tableMfn);
      e[`exit-${i}-walk-index-${l.level}`] = String(l.index);
    }
  });
  r.events.forEach((ev, n) => {
    e[`event-${n}-text`] = ev.text;
    // The badge's words are the page's (EVENT_LABELS); the kind is checked by data-event.
    e[`event-${n}-kind`] = ANY;
  });
  return e;
}

/** A field whose text is checked elsewhere. */
const ANY = "\u0000any";

/** Check what the step panel shows against a record of the step API. */
async function checkStep(page: Page, record: StepRecord, what: string): Promise<void> {
  const shown = await fields(page, "#step-body");
  const want = expected(record);
  for (const [k, v] of Object.entries(want)) {
    if (v !== ANY) expect(shown[k], `${what}: ${k}`).toBe(v);
  }
  // Nothing shown that the record does not have (a stale row from an earlier step).
  for (const k of Object.keys(shown)) expect(want, `${what}: ${k}`).toHaveProperty(k);
  const kinds = await page.$$eval("#step-body li[data-event]", (lis) =>
    lis.map((li) => li.getAttribute("data-event")),
  );
  expect(kinds, what).toEqual(record.events.map((e) => e.kind));
}

/** Step `sim` as the page's Next button does: until an access has an event of `kind`. */
function seek(sim: Simulation, kind: string, limit = 200_000): StepRecord {
  for (let i = 0; i < limit; i++) {
    const r = sim.step();
    if (r === null) throw new Error("the library's run ended early");
    if (r.events.some((e) => e.kind === kind)) return r;
  }
  throw new Error(`no ${kind} in ${limit} accesses`);
}

const haveChromium = existsSync(CHROMIUM);

describe.skipIf(!haveChromium)("the web visualizer in Chromium", () => {
  let h: Harness;

  beforeAll(async () => {
    h = await openPage();
  }, 120_000);

  afterAll(async () => {
    await h?.close();
  });

  test("the first load is under shadow; settings apply at once; keys never fire in form controls", async () => {
    const { page } = h;
    expect(await page.textContent("#status")).toMatch(/^mixed \(seed \d+; guest: shadow\)/);
    // A changed mode applies at once: no Load button to press.
    let loads = Number(await page.getAttribute("body", "data-loads"));
    await page.selectOption("#mode", "hap");
    await settled(page, loads);
    expect(await page.textContent("#status")).toMatch(/guest: hap\)/);
    // "s" in the mode menu neither steps nor picks shadow; in the seed field it does nothing.
    await page.focus("#mode");
    await page.keyboard.press("s");
    await page.focus("#seed");
    await page.keyboard.press("s");
    await page.keyboard.press("r");
    expect(await page.inputValue("#mode")).toBe("hap");
    expect(await page.getAttribute("body", "data-steps")).toBe("0");
    // A card opened stays open from step to step.
    await page.keyboard.press("Escape");
    await page.click("h1");
    await page.keyboard.press("s");
    await page.waitForSelector("body[data-steps='1']");
    expect(await page.getAttribute("details[data-key='tlb']", "open")).toBeNull();
    await page.click("details[data-key='tlb'] > summary");
    await page.keyboard.press("s");
    await page.waitForSelector("body[data-steps='2']");
    expect(await page.getAttribute("details[data-key='tlb']", "open")).toBe("");
    await page.click("details[data-key='tlb'] > summary");
    // Restart, then space: it steps (focus is on Step), it does not restart again.
    loads = Number(await page.getAttribute("body", "data-loads"));
    await page.click("#load");
    await settled(page, loads);
    loads = Number(await page.getAttribute("body", "data-loads"));
    await page.keyboard.press(" ");
    await page.waitForSelector("body[data-steps='1']");
    expect(Number(await page.getAttribute("body", "data-loads"))).toBe(loads);
    expect(await page.textContent("[data-field='access']")).toMatch(/^user /);
  }, 60_000);

  test.each([
    ["shadow", ["write-protect", "true-fault", "hidden-fault", "emulate-write", "p2m-populate"]],
    ["hap", ["ept-violation", "p2m-populate"]],
    ["pv", ["hypercall", "pf-bounce"]],
  ] as const)(
    "under %s, Next reaches each named event and shows it as the step API tells it",
    async (mode, kinds) => {
      const { page } = h;
      await loadScenario(page, "mixed", mode, 5, 100_000);
      const sim = new Simulation(builtinScenario("mixed"), { mode, seed: 5, accesses: 100_000 });
      let steps = 0;
      for (const kind of kinds) {
        const record = seek(sim, kind);
        await page.selectOption("#seek-kind", kind);
        await page.click("#seek");
        await page.waitForSelector(`body[data-steps='${++steps}']`);
        await checkStep(page, record, kind);
        const told = record.events.find((e) => e.kind === kind);
        const shown = await page.textContent(
          `#step-body li[data-event='${kind}'] [data-field$='-text']`,
        );
        expect(shown).toBe(told?.text);
      }
      await page.screenshot({ path: `${ARTIFACTS}story-${mode}.png`, fullPage: true });
    },
    90_000,
  );

  test.each([
    ["database", "shadow", 30],
    ["database", "hap", 30],
    ["two-domains", "native", 15],
    ["database", "pv", 15],
  ] as const)(
    "%s under %s: each step shows what the step API returns",
    async (name, mode, steps) => {
      const { page } = h;
      const seed = 7;
      await loadScenario(page, name, mode, seed, 10_000);
      const sim = new Simulation(builtinScenario(name), { mode, seed, accesses: 10_000 });
      let exits = 0;
      let nested = 0;
      for (let i = 1; i <= steps; i++) {
        const record = sim.step();
        if (record === null) throw new Error("the library's run ended early");
        await page.keyboard.press("s");
        await page.waitForSelector(`body[data-steps='${i}']`);
        await checkStep(page, record, `step ${i}`);
        exits += record.exits.length;
        for (const [w, walk] of record.walks.entries()) {
          if (!walk.nested) continue;
          const refs = await page.getAttribute(`[data-walk='nested-${w}']`, "data-refs");
          expect(Number(refs)).toBe(walk.nested.length);
          // Each cell of the grid: the reference made in that order, its entry and flags.
          const cells = await page.$$eval(`[data-walk='nested-${w}'] td[data-ref]`, (tds) =>
            tds.map((td) => ({
              n: Number(td.getAttribute("data-ref")),
              entry: td.querySelector(".entry")?.textContent ?? "",
              flags: td.querySelector(".flags")?.textContent ?? "",
            })),
          );
          cells.sort((a, b) => a.n - b.n);
          expect(cells).toEqual(
            walk.nested.map((ref, n) => ({ n: n + 1, entry: ref.entry, flags: ref.flags })),
          );
          nested = Math.max(nested, walk.nested.length);
        }
      }
      if (mode === "shadow" || mode === "pv") expect(exits).toBeGreaterThan(0);
      // The profile's walk caches are warm from the guest's boot: a 2D walk still reads more
      // than a 1D walk's 4 entries (a cold one 24, tested in test/hap.test.ts).
      if (mode === "hap") expect(nested).toBeGreaterThan(4);
      await page.screenshot({ path: `${ARTIFACTS}step-${mode}.png`, fullPage: true });
    },
    60_000,
  );

  test.each([
    ["two-domains", "shadow"],
    ["sharing", "hap"],
  ] as const)(
    "%s under %s: after a run the frame map counts what the host's counters count",
    async (name, mode) => {
      const { page } = h;
      const accesses = 20_000;
      await loadScenario(page, name, mode, 3, accesses);
      await page.keyboard.press("r");
      await page.waitForSelector("body[data-state='done']", { timeout: 50_000 });
      const sim = new Simulation(builtinScenario(name), { mode, seed: 3, accesses });
      const report = sim.run();
      const map = sim.frameMap();
      const shown = await fields(page, "#frames-legend");
      expect(shown["frames-used"]).toBe(String(report.host.frames_used));
      expect(shown["frames-total"]).toBe(String(report.host.frames_total));
      map.names.forEach((n, code) => {
        expect(shown[`frames-${n}`], n).toBe(String(map.counts[code]));
      });
      for (const d of report.domains) {
        expect(shown[`ballooned-${d.name}`]).toBe(String(d.counters.balloon_pages ?? 0));
      }
      expect(await page.getAttribute("body", "data-accesses")).toBe(String(accesses));
      // The charts that apply got points (uPlot draws one canvas per chart): exits, shadow
      // pages under shadow, one memory chart (one per domain beyond two), sharing's saving.
      const memoryCharts = report.domains.length > 2 ? report.domains.length : 1;
      expect(await page.locator("#charts canvas").count()).toBe(
        1 + (mode === "shadow" ? 1 : 0) + memoryCharts + 1,
      );
      // Each legend shows the latest values, not uPlot's "--" for no point under the pointer.
      const values = await page.$$eval("#charts .u-legend .u-value", (tds) =>
        tds.map((td) => td.textContent ?? ""),
      );
      expect(values.length).toBeGreaterThan(0);
      for (const v of values) expect(v).toMatch(/^-?[\d.,]+(e[+-]?\d+)?$/);
      // A balloon target line only for a domain that runs a balloon driver.
      const labels = await page.$$eval("#charts .u-legend .u-label", (ls) =>
        ls.map((l) => l.textContent ?? ""),
      );
      expect(labels.filter((l) => l.endsWith("balloon target")).length).toBe(
        sim.domains.filter((d) => d.kernel.balloon !== null).length,
      );
      await page.locator("#frames-panel").screenshot({ path: `${ARTIFACTS}frames-${name}.png` });
      await page.locator("#charts-panel").screenshot({ path: `${ARTIFACTS}charts-${name}.png` });
      await page.screenshot({ path: `${ARTIFACTS}run-${name}-${mode}.png`, fullPage: true });
    },
    60_000,
  );

  test("a long run stays responsive: it pauses, and steps, while it runs", async () => {
    const { page } = h;
    await loadScenario(page, "mixed", "shadow", 1, 2_000_000);
    await page.keyboard.press("s");
    await page.waitForSelector("body[data-steps='1']");
    await page.keyboard.press("r");
    await page.waitForSelector("body[data-state='running']");
    await page.waitForSelector("body:not([data-accesses='0'])");
    await page.keyboard.press("r");
    await page.waitForSelector("body[data-state='ready']");
    const paused = Number(await page.getAttribute("body", "data-accesses"));
    // The panel no longer claims to show the current access.
    expect(await page.textContent("[data-field='stale']")).toContain(
      "accesses since the one shown",
    );
    expect(paused).toBeGreaterThan(0);
    expect(paused).toBeLessThan(2_000_000);
    await page.keyboard.press("s");
    await page.waitForSelector("body[data-steps='2']");
    expect(Number(await page.getAttribute("body", "data-accesses"))).toBe(paused + 1);
    expect((await fields(page, "#step-body")).gva).toMatch(/^0x[0-9a-f]{16}$/);
  }, 60_000);

  test("the compare view shows compareModes' figures, one column per mode", async () => {
    const { page } = h;
    await page.selectOption("#scenario", "shadow-steady");
    await page.fill("#seed", "5");
    await page.fill("#accesses", "5000");
    // Keys are for the page, not for a focused field: leave the field first.
    await page.click("h1");
    await page.keyboard.press("c");
    await page.click("#compare");
    await page.waitForSelector("body[data-state='compared']", { timeout: 50_000 });
    const c = compareModes(builtinScenario("shadow-steady"), ["native", "shadow", "hap"], {
      seed: 5,
      accesses: 5000,
    });
    expect(await page.textContent("[data-field='same-guest-view']")).toBe(
      c.same_guest_view ? "yes" : "NO",
    );
    for (const r of c.results) {
      const cell = (row: string) =>
        page.textContent(`tr[data-row='${row}'] td[data-mode='${r.mode}']`);
      expect(await cell("cycles")).toBe(String(Math.round(r.cycles)));
      expect(await cell("vm-exits")).toBe(String(r.vmexits.total));
      expect(await cell("guest-page-faults")).toBe(String(r.guest_page_faults));
    }
    await page.screenshot({ path: `${ARTIFACTS}compare.png`, fullPage: true });
    // A long comparison shows each mode's progress, and Cancel ends it.
    await page.fill("#accesses", "3000000");
    await page.click("h1");
    await page.click("#compare");
    await page.waitForFunction(
      "[...document.querySelectorAll('#compare-progress progress')].some((p) => p.value > 0)",
    );
    expect(await page.locator("#compare-progress progress").count()).toBe(3);
    await page.click("#compare-cancel");
    await page.waitForSelector("body[data-state='cancelled']");
    expect(await page.locator("#compare-progress progress").count()).toBe(0);
    expect(await page.isHidden("#compare-cancel")).toBe(true);
    await page.keyboard.press("v");
  }, 60_000);

  test("the guided tour stops at each step of the article's sequence, as the step API tells it", async () => {
    const { page } = h;
    const loads = Number(await page.getAttribute("body", "data-loads"));
    await page.click("#tour");
    await settled(page, loads);
    expect(await page.inputValue("#scenario")).toBe("tour");
    const sim = new Simulation(builtinScenario("tour"), { mode: "shadow" });
    const stops = [
      "write-protect",
      "hidden-fault",
      "true-fault",
      "emulate-write",
      "process-exit",
      "unshadow",
      "balloon-inflate",
      "share-merge",
      "cow-break",
    ];
    for (const [i, kind] of stops.entries()) {
      const record = seek(sim, kind);
      await page.click("#tour-next");
      await page.waitForSelector(`body[data-steps='${i + 1}']`, { timeout: 30_000 });
      expect(await page.textContent("#tour-title")).toMatch(
        new RegExp(`^Stop ${i + 1} of ${stops.length}: `),
      );
      expect((await page.textContent("#tour-text"))?.length).toBeGreaterThan(40);
      const told = record.events.find((e) => e.kind === kind);
      const shown = await page.textContent(
        `#step-body li[data-event='${kind}'] [data-field$='-text']`,
      );
      expect(shown, kind).toBe(told?.text);
      if (i === 3) await page.screenshot({ path: `${ARTIFACTS}tour.png` });
    }
    expect(await page.isDisabled("#tour-next")).toBe(true);
    await page.click("#tour-end");
  }, 90_000);

  test.each([390, 800, 1440])(
    "at %i px: no sideways scroll, no serious accessibility violation; screenshots",
    async (width) => {
      const { page } = h;
      await page.setViewportSize({ width, height: 900 });
      await loadScenario(page, "two-domains", "shadow", 3, 10_000);
      for (let i = 1; i <= 3; i++) {
        await page.keyboard.press("s");
        await page.waitForSelector(`body[data-steps='${i}']`);
      }
      await page.click("#glossary summary");
      for (const view of ["run", "compare"]) {
        await page.click(`#tab-${view}`);
        if (view === "compare") {
          // A comparison of the same short run, so that its table is on screen too.
          await page.click("#compare");
          await page.waitForSelector("body[data-state='compared']", { timeout: 50_000 });
        }
        const [scroll, inner] = await page.evaluate<[number, number]>(
          "[document.documentElement.scrollWidth, window.innerWidth]",
        );
        expect(scroll, `${view} view at ${width} px`).toBeLessThanOrEqual(inner);
        const axe = await new AxeBuilder({ page }).analyze();
        const bad = axe.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
        expect(
          bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`),
          `${view} view at ${width} px`,
        ).toEqual([]);
        await page.screenshot({ path: `${ARTIFACTS}${view}-${width}.png`, fullPage: true });
      }
      await page.click("#glossary summary");
      await page.click("#tab-run");
      await page.setViewportSize({ width: 1400, height: 1000 });
    },
    90_000,
  );

  test("a bad scenario file shows its mistakes, with file, line and column", async () => {
    const { page } = h;
    const bad = [
      "name: broken",
      "domains:",
      "  - name: guest",
      "    memory: 1GB",
      "    processes:",
      "      - { name: p, kind: nosuch }",
      "",
    ].join("\n");
    await page.setInputFiles("#file", {
      name: "bad.yaml",
      mimeType: "text/yaml",
      buffer: Buffer.from(bad),
    });
    await page.waitForSelector("#error:not([hidden])");
    const text = (await page.textContent("#error")) ?? "";
    expect(text).toMatch(/^bad\.yaml:4:\d+: domains\[0\]\.memory: /);
    expect(text).toContain("domains[0].processes[0].kind");
    // Nothing of the previous run stays on screen.
    expect(await page.textContent("#step-body")).toBe("Nothing is loaded.");
    expect(await page.locator("#frames-legend *").count()).toBe(0);
    expect(await page.locator("#charts canvas").count()).toBe(0);
    await page.screenshot({ path: `${ARTIFACTS}error.png`, fullPage: true });
    // A file with a trace process: its trace is on disk, out of the page's reach.
    const traced = BUILTIN_SCENARIOS.find((b) => b.name === "sort-trace")?.yaml ?? "";
    await page.setInputFiles("#file", {
      name: "traced.yaml",
      mimeType: "text/yaml",
      buffer: Buffer.from(traced),
    });
    await page.waitForSelector("#error:has-text('traced.yaml')");
    expect(await page.textContent("#error")).toContain("cannot run in the browser");
    // A good file then loads, and clears the error.
    const loads = Number(await page.getAttribute("body", "data-loads"));
    await page.selectOption("#mode", "");
    const yaml = BUILTIN_SCENARIOS.find((b) => b.name === "database")?.yaml ?? "";
    await page.setInputFiles("#file", {
      name: "mine.yaml",
      mimeType: "text/yaml",
      buffer: Buffer.from(yaml.replace("name: database", "name: mine")),
    });
    await settled(page, loads);
    expect(await page.isHidden("#error")).toBe(true);
    expect(await page.textContent("#status")).toMatch(/^mine \(seed \d+; db: native\)/);
  }, 60_000);

  test("a run that ends before its accesses stops and says why", async () => {
    const { page } = h;
    const loads = Number(await page.getAttribute("body", "data-loads"));
    await page.selectOption("#mode", "");
    const yaml = [
      "name: short",
      "run: { accesses: 100000 }",
      "domains:",
      "  - { name: d, memory: 16MiB, processes: [{ name: p, kind: database, working_set: 1MiB, lifetime: 3000 }] }",
      "",
    ].join("\n");
    await page.setInputFiles("#file", {
      name: "short.yaml",
      mimeType: "text/yaml",
      buffer: Buffer.from(yaml),
    });
    await settled(page, loads);
    // Keys are for the page, not for the file field that has the focus.
    await page.click("h1");
    await page.keyboard.press("r");
    await page.waitForSelector("body[data-state='done']", { timeout: 50_000 });
    expect(await page.getAttribute("body", "data-accesses")).toBe("3000");
    expect(await page.textContent("#status")).toMatch(
      /^short \(seed \d+; d: native\): ended early \(domain d: every process is gone: p: 1 reached the lifetime \(3000 accesses\)\)$/,
    );
  }, 60_000);
});
