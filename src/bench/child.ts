/**
 * One benchmark run in a fresh Node process, through the one interface every checkout's
 * benchmarks have: `node dist/bench/main.js --json NAME` (plus `--once`, which a checkout
 * without the harness ignores), printing `{"results": [{name, figures...}]}`. A fresh process
 * per run keeps one benchmark's JIT state and heap out of the next one's figures.
 */

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { BenchResult } from "./access.js";
import { BenchUsageError } from "./args.js";
import type { ProcessUsage } from "./stats.js";

/** A checkout whose benchmarks the harness runs. */
export interface Checkout {
  /** "this" or "REF", in messages. */
  label: string;
  /** The checkout's folder. */
  root: string;
  /** Its built benchmark entry point, dist/bench/main.js. */
  script: string;
}

/** A benchmark process that failed: a bug in the checkout it belongs to (exit 70). */
export class BenchChildError extends Error {
  override readonly name = "BenchChildError";
}

/** The benchmark processes running now (one at a time; a set, to be sure none is left behind). */
const running = new Set<ChildProcess>();

/**
 * Ends the benchmark processes running now with `signal`: a harness stopped by a signal that
 * its children did not get (a SIGTERM sent to it alone) leaves none running on.
 */
export function stopChildren(signal: NodeJS.Signals): void {
  for (const child of running) child.kill(signal);
}

const HOOK = fileURLToPath(new URL("./usage-hook.js", import.meta.url));

/** The last lines of a child's error output, for a message. */
function tail(text: string): string {
  const lines = text.trimEnd().split("\n");
  return lines.slice(-8).join("\n");
}

export interface ChildRun {
  result: BenchResult;
  process: ProcessUsage;
}

/** Runs benchmark `name` of `checkout` once in a new process and reads its figures and usage. */
export function runChild(checkout: Checkout, name: string): Promise<ChildRun> {
  const argv = ["--import", HOOK, checkout.script, "--json", "--once", name];
  const command = `node ${checkout.script} --json --once ${name}`;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, argv, {
      cwd: checkout.root,
      stdio: ["ignore", "pipe", "pipe", "pipe"],
    });
    running.add(child);
    let stdout = "";
    let stderr = "";
    let usage = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const fd3 = child.stdio[3];
    if (fd3 !== null && fd3 !== undefined && "setEncoding" in fd3) {
      fd3.setEncoding("utf8").on("data", (d: string) => {
        usage += d;
      });
    }
    child.on("error", (e) => reject(new BenchChildError(`${command}: ${e.message}`)));
    child.on("close", (code, signal) => {
      running.delete(child);
      const wall = (performance.now() - t0) / 1000;
      const failed = (why: string) =>
        new BenchChildError(
          `${checkout.label}'s ${name} (${command} in ${checkout.root}) ${why}${stderr ? `:\n${tail(stderr)}` : ""}`,
        );
      if (code !== 0) {
        reject(failed(signal ? `was killed by ${signal}` : `exited with ${code}`));
        return;
      }
      let result: BenchResult | undefined;
      try {
        const out = JSON.parse(stdout) as { results?: BenchResult[] };
        result = out.results?.find((r) => r.name === name);
      } catch {
        reject(failed("printed no JSON object"));
        return;
      }
      if (result === undefined) {
        reject(failed(`printed no result named ${name}`));
        return;
      }
      let u: { user_us: number; system_us: number; max_rss_kib: number };
      try {
        u = JSON.parse(usage);
      } catch {
        reject(failed("exited without reporting its resource usage"));
        return;
      }
      resolve({
        result,
        process: {
          cpu_seconds: (u.user_us + u.system_us) / 1e6,
          user_seconds: u.user_us / 1e6,
          system_seconds: u.system_us / 1e6,
          wall_seconds: wall,
          max_rss_mib: Math.round(u.max_rss_kib / 1024),
          pid: child.pid ?? 0,
        },
      });
    });
  });
}

const PROBE = "(list)";

/**
 * The benchmark names `checkout` has. Its command line has no listing: it is asked for a name no
 * benchmark has, and every checkout's answer ends "have NAME, NAME, ..." (exit 2).
 */
export function listBenchmarks(checkout: Checkout): string[] {
  const r = spawnSync(process.execPath, [checkout.script, "--json", "--once", PROBE], {
    cwd: checkout.root,
    encoding: "utf8",
  });
  const have = /unknown benchmark .*; have (.+)$/m.exec(r.stderr ?? "")?.[1];
  if (r.status !== 2 || have === undefined) {
    throw new BenchUsageError(
      `${checkout.root}: its benchmarks did not list their names (node ${checkout.script} --json ${PROBE} ` +
        `exited with ${r.status} and printed ${JSON.stringify(tail(r.stderr ?? ""))}; ` +
        `expected exit 2 and "unknown benchmark ${PROBE}; have NAME, ..."`,
    );
  }
  return have.split(", ").map((n) => n.trim());
}
