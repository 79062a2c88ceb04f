/**
 * The checkouts the harness measures: this one, and with --compare another checkout of memvisor
 * (REF), built with its own `npm run build` when its dist/ is missing.
 */

import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { BenchUsageError } from "./args.js";
import type { Checkout } from "./child.js";

/** The entry point of every checkout's benchmarks, relative to its folder. */
const SCRIPT = join("dist", "bench", "main.js");

/** This checkout (from dist/bench/ or src/bench/ alike). */
export function thisCheckout(): Checkout {
  const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));
  return { label: "this", root, script: join(root, SCRIPT) };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The name in `root`'s package.json, or null without a readable one. */
function packageName(root: string): string | null {
  try {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { name?: unknown };
    return typeof pkg.name === "string" ? pkg.name : null;
  } catch {
    return null;
  }
}

/** The newest modification time of the files under `dir`, in milliseconds (0 for none). */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else if (entry.isFile()) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * A warning when `checkout`'s src/ has changed since its dist/bench/main.js was built: its
 * benchmarks would measure the old code. Null when it is current or has no src/.
 */
export function staleWarning(checkout: Checkout): string | null {
  const src = join(checkout.root, "src");
  if (!isDirectory(src) || !existsSync(checkout.script)) return null;
  if (newestMtime(src) <= statSync(checkout.script).mtimeMs) return null;
  return `${checkout.label}: ${checkout.root}/src has changed since its ${SCRIPT} was built: run \`npm run build\` there to measure its source`;
}

/**
 * A path the user typed, as an absolute one: `npm run bench` runs in the package's folder, so a
 * relative path is taken from where npm was started (INIT_CWD) when npm runs the command.
 */
export function userPath(path: string, env: NodeJS.ProcessEnv, cwd: string): string {
  const from = env.npm_lifecycle_event !== undefined && env.INIT_CWD ? env.INIT_CWD : cwd;
  return resolve(from, path);
}

/**
 * REF given to --compare as a checkout: a folder whose package.json is memvisor's, with
 * dist/bench/main.js. A missing dist/ is built with REF's own `npm run build` (its output goes
 * to stderr) when REF has node_modules; else the error says what to run.
 */
export function refCheckout(ref: string, log: (line: string) => void): Checkout {
  const root = userPath(ref, process.env, process.cwd());
  if (!isDirectory(root)) throw new BenchUsageError(`--compare ${ref}: not a folder`);
  const name = packageName(root);
  if (name !== "memvisor") {
    throw new BenchUsageError(
      `--compare ${ref}: not a checkout of memvisor (${name === null ? "no readable package.json" : `its package.json names "${name}"`})`,
    );
  }
  const checkout: Checkout = { label: "REF", root, script: join(root, SCRIPT) };
  if (existsSync(checkout.script)) return checkout;
  if (!existsSync(join(root, "src", "bench", "main.ts"))) {
    throw new BenchUsageError(
      `--compare ${ref}: this checkout of memvisor has no benchmarks (no src/bench/main.ts)`,
    );
  }
  if (!isDirectory(join(root, "node_modules"))) {
    throw new BenchUsageError(
      `--compare ${ref}: ${SCRIPT} is missing and it has no node_modules: run \`cd ${root} && npm ci && npm run build\` first`,
    );
  }
  log(`bench: ${SCRIPT} is missing in ${root}: building it with \`npm run build\` there`);
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const r = spawnSync(npm, ["run", "build"], { cwd: root, stdio: ["ignore", 2, 2] });
  if (r.status !== 0 || !existsSync(checkout.script)) {
    throw new BenchUsageError(
      `--compare ${ref}: \`npm run build\` in ${root} ${r.error ? `could not start (${r.error.message})` : `exited with ${r.status}`}${existsSync(checkout.script) ? "" : ` and left no ${SCRIPT}`}: build it there by hand`,
    );
  }
  return checkout;
}

/** The git commit `root` has checked out, or null (not a git checkout, or no git). */
export function commitOf(root: string): string | null {
  const r = spawnSync("git", ["-C", root, "rev-parse", "HEAD"], { encoding: "utf8" });
  const sha = (r.stdout ?? "").trim();
  return r.status === 0 && /^[0-9a-f]{40}$/.test(sha) ? sha : null;
}
