/**
 * The browser tests' harness: build the page, serve it with `memvisor ui`'s server on a free
 * loopback port, and drive Debian's Chromium through playwright-core (no browser download).
 */

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import { startUiServer, type UiServer } from "../../src/cli/ui.js";

export const CHROMIUM = process.env.MEMVISOR_CHROMIUM ?? "/usr/bin/chromium";
export const ARTIFACTS = fileURLToPath(new URL("../../test-artifacts/", import.meta.url));
const REPO = fileURLToPath(new URL("../../", import.meta.url));

export interface Harness {
  ui: UiServer;
  browser: Browser;
  page: Page;
  close(): Promise<void>;
}

/**
 * Build the page from the current sources into a folder of its own (so the tests never see a
 * stale build, and never empty dist-web/ under another test that serves it).
 */
function buildPage(): string {
  const out = join(mkdtempSync(join(tmpdir(), "memvisor-web-")), "www");
  execFileSync(
    process.execPath,
    [
      "node_modules/vite/bin/vite.js",
      "build",
      "--config",
      "web/vite.config.ts",
      "--outDir",
      out,
      "--emptyOutDir",
    ],
    { cwd: REPO, stdio: "pipe" },
  );
  return out;
}

export async function openPage(): Promise<Harness> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const root = buildPage();
  const ui = await startUiServer({ port: 0, root });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  // A context of its own: axe-core's AxeBuilder needs one.
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(ui.url);
  await page.waitForSelector("body[data-loads='1']");
  return {
    ui,
    browser,
    page,
    close: async () => {
      await browser.close();
      await ui.close();
      rmSync(join(root, ".."), { recursive: true, force: true });
      if (errors.length > 0) throw new Error(`errors in the page: ${errors.join("; ")}`);
    },
  };
}

/**
 * Load a built-in scenario with a mode, a seed and a length, and restart it; waits until the
 * worker has answered every load (each changed setting sends one).
 */
export async function loadScenario(
  page: Page,
  name: string,
  mode: string,
  seed: number,
  accesses: number,
): Promise<void> {
  const loads = Number(await page.getAttribute("body", "data-loads"));
  await page.selectOption("#scenario", name);
  await page.selectOption("#mode", mode);
  await page.fill("#seed", String(seed));
  await page.fill("#accesses", String(accesses));
  await page.click("#load");
  await settled(page, loads);
}

/** Wait until every load sent is answered and more than `loads` were shown. */
export async function settled(page: Page, loads: number): Promise<void> {
  await page.waitForFunction(
    `document.body.dataset.pending === "0" && Number(document.body.dataset.loads ?? 0) > ${loads}`,
  );
}

/** Every data-field shown under `root`, by name. */
export function fields(page: Page, root: string): Promise<Record<string, string>> {
  return page.$$eval(`${root} [data-field]`, (els) =>
    Object.fromEntries(els.map((e) => [e.getAttribute("data-field"), e.textContent ?? ""])),
  );
}
