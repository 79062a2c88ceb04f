/**
 * `memvisor experiment`: grid errors name file:line; the table is the same bytes with one job or
 * two (worker threads, from the built dist/), sharded and merged, or killed and resumed; the
 * summary's intervals use Student's t.
 */

import { spawn, spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { meanInterval, tQuantile975 } from "../src/api/node.js";
import { cli } from "./support/cli.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "bin/memvisor.js");
const FIXTURES = join(ROOT, "test/fixtures/experiment");

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "memvisor-experiment-"));
  cpSync(FIXTURES, dir, { recursive: true });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The built CLI as a process (worker threads need the compiled worker file). */
function memvisor(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const read = (path: string) => readFileSync(join(dir, path), "utf8");

describe("experiment files", () => {
  it("names the file, line and column of each grid value the scenario schema refuses", async () => {
    const r = await cli("experiment", join(dir, "bad-grid.yaml"), "--out", join(dir, "bad-out"));
    expect(r.code).toBe(2);
    const file = join(dir, "bad-grid.yaml");
    expect(r.stderr).toContain(
      `${file}:4:47: grid.domains[*].processes[0].working_set: 1GB: the scenario's domains[0].processes[0].working_set: expected a size`,
    );
    expect(r.stderr).toContain(
      `${file}:5:18: grid.hardware.pcd: true: the scenario's hardware.pcd: unknown key "pcd" (did you mean "pcid"?)`,
    );
    expect(r.stderr).not.toContain("    at ");
    expect(existsSync(join(dir, "bad-out"))).toBe(false);
  });

  it("refuses a malformed path and an unknown mode before reading the scenario", async () => {
    const file = join(dir, "bad-path.yaml");
    writeFileSync(
      file,
      "scenario: small-scenario.yaml\nmodes: [native, shadowy]\ngrid:\n  domains..memory: [64MiB]\n",
    );
    const r = await cli("experiment", file);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:2:17: modes[1]: expected one of native, shadow, hap, pv`);
    writeFileSync(file, "scenario: small-scenario.yaml\ngrid:\n  domains..memory: [64MiB]\n");
    const again = await cli("experiment", file);
    expect(again.stderr).toContain(`${file}:3:3: grid.domains..memory: expected a setting's path`);
    writeFileSync(file, "scenario: small-scenario.yaml\ngrid:\n  domains[2].memory: [64MiB]\n");
    const third = await cli("experiment", file);
    expect(third.stderr).toContain(
      `${file}:3:3: grid.domains[2].memory: domains has 1 item, so no [2]`,
    );
  });

  it("names a plot's setting that is not in the grid and a figure the table does not have", async () => {
    const file = join(dir, "bad-plot.yaml");
    writeFileSync(
      file,
      "scenario: small-scenario.yaml\ngrid:\n  hardware.pcid: [false, true]\nplots:\n  - { x: hardware.pci, y: tlb_mkpi }\n",
    );
    const r = await cli("experiment", file);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `${file}:5:10: plots[0].x: expected a setting of the grid (hardware.pcid), got "hardware.pci"`,
    );
    expect(r.stderr).toContain(`${file}:5:27: plots[0].y: expected a figure of the results table`);
  });

  it("names the base scenario that does not exist", async () => {
    const file = join(dir, "no-base.yaml");
    writeFileSync(file, "scenario: nowhere.yaml\n");
    const r = await cli("experiment", file);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:1:11: scenario:`);
    expect(r.stderr).toContain("no such file");
  });
});

describe("experiment runs", () => {
  let serial: string;

  beforeAll(() => {
    const r = memvisor("experiment", "grid.yaml", "--jobs", "1", "--out", "serial");
    expect(r.stderr).toBe(
      "memvisor: wrote serial/results.csv, serial/summary.csv, serial/plot-tlb_mpki-vs-domains-processes-0-working_set.svg, serial/plot-tlb_mpki-vs-domains-processes-0-working_set.png\n",
    );
    expect(r.code).toBe(0);
    serial = read("serial/results.csv");
  });

  it("writes one row per run in the grid's order, with every grid value, mode and seed", () => {
    const lines = serial.trim().split("\n");
    expect(lines).toHaveLength(17);
    expect(lines[0]).toMatch(
      /^point,domains\[\*\]\.processes\[0\]\.working_set,hardware\.tlb\.l2\.entries,mode,seed,ending,cycles,seconds,/,
    );
    expect(lines[1]).toMatch(/^0,1MiB,768,native,1,complete,/);
    expect(lines[2]).toMatch(/^1,1MiB,768,native,2,complete,/);
    expect(lines[3]).toMatch(/^2,1MiB,768,shadow,1,complete,/);
    expect(lines[16]).toMatch(/^15,4MiB,1536,shadow,2,complete,/);
    const jsonl = read("serial/results.jsonl")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(jsonl.map((r) => r.point)).toEqual([...Array(16).keys()]);
    // A larger working set misses the TLB more, in every mode.
    const mpki = (ws: string, mode: string) =>
      jsonl.find((r) => r["domains[*].processes[0].working_set"] === ws && r.mode === mode)
        .tlb_mpki;
    expect(mpki("4MiB", "shadow")).toBeGreaterThan(mpki("1MiB", "shadow"));
    expect(read("serial/timings.csv").split("\n")[0]).toBe("point,wall_seconds");
  });

  it("summarizes each point and mode over the seeds, with Student's t intervals", () => {
    const summary = read("serial/summary.csv").trim().split("\n");
    expect(summary).toHaveLength(9);
    expect(summary[0]).toMatch(
      /^domains\[\*\]\.processes\[0\]\.working_set,hardware\.tlb\.l2\.entries,mode,n,cycles_mean,cycles_ci95,/,
    );
    expect(summary[0]).toContain("tlb_mpki_mean,tlb_mpki_ci95");
    expect(summary[1]).toMatch(/^1MiB,768,native,2,/);
    expect(read("serial/plot-tlb_mpki-vs-domains-processes-0-working_set.svg")).toMatch(/^<svg/);
  });

  it("gives the same table with two jobs in worker threads as with one", () => {
    const r = memvisor("experiment", "grid.yaml", "--jobs", "2", "--out", "parallel");
    expect(r.code).toBe(0);
    expect(read("parallel/results.csv")).toBe(serial);
    expect(read("parallel/summary.csv")).toBe(read("serial/summary.csv"));
  });

  it("gives the same table from three shards merged as from one machine", async () => {
    for (const i of [0, 1, 2]) {
      const r = await cli(
        "experiment",
        join(dir, "grid.yaml"),
        "--shard",
        `${i}/3`,
        "--jobs",
        "1",
        "--out",
        join(dir, "shards", `s${i}`),
      );
      expect(r.code).toBe(0);
    }
    expect(read("shards/s1/results.csv").trim().split("\n")).toHaveLength(1 + 5);
    const merged = await cli("experiment", "merge", join(dir, "shards"));
    expect(merged.code).toBe(0);
    expect(read("shards/results.csv")).toBe(serial);
    expect(read("shards/results.jsonl")).toBe(read("serial/results.jsonl"));
    expect(read("shards/summary.csv")).toBe(read("serial/summary.csv"));
  });

  it("gives the same table from the Slurm job array script's shards", async () => {
    for (const i of ["0", "1", "2"]) {
      const r = spawnSync("bash", [join(ROOT, "docs/cluster/slurm-experiment.sh")], {
        cwd: dir,
        encoding: "utf8",
        env: {
          ...process.env,
          MEMVISOR: `${process.execPath} ${BIN}`,
          EXPERIMENT: "grid.yaml",
          OUT: "slurm",
          SLURM_ARRAY_TASK_ID: i,
          SLURM_ARRAY_TASK_COUNT: "3",
          SLURM_CPUS_PER_TASK: "1",
        },
      });
      expect(r.status, r.stderr).toBe(0);
    }
    expect((await cli("experiment", "merge", join(dir, "slurm"))).code).toBe(0);
    expect(read("slurm/results.csv")).toBe(serial);
  });

  it("gives the same table from the Kubernetes Indexed Job's pods", async () => {
    const job = parseYaml(readFileSync(join(ROOT, "docs/cluster/k8s-experiment.yaml"), "utf8"));
    expect(job.spec.completionMode).toBe("Indexed");
    const container = job.spec.template.spec.containers[0];
    const env = Object.fromEntries(
      container.env.map((e: { name: string; value: string }) => [e.name, e.value]),
    );
    expect(Number(env.SHARDS)).toBe(job.spec.completions);
    // The pod's command, with the image's paths made this machine's and 3 shards.
    const command = (container.args[0] as string)
      .replace("/opt/memvisor/bin/memvisor.js", BIN)
      .replace("/results/", `${dir}/`);
    for (const i of ["0", "1", "2"]) {
      const r = spawnSync("sh", ["-c", command], {
        cwd: dir,
        encoding: "utf8",
        env: {
          ...process.env,
          JOB_COMPLETION_INDEX: i,
          EXPERIMENT: "grid.yaml",
          SHARDS: "3",
          JOBS: "1",
          RESULTS: "k8s",
        },
      });
      expect(r.status, r.stderr).toBe(0);
    }
    const merge = parseYaml(readFileSync(join(ROOT, "docs/cluster/k8s-merge.yaml"), "utf8"));
    const args = merge.spec.template.spec.containers[0].args as string[];
    expect(args.slice(0, 2)).toEqual(["experiment", "merge"]);
    expect(args[2]).toBe(`/results/${env.RESULTS}`);
    expect((await cli("experiment", "merge", join(dir, "k8s"))).code).toBe(0);
    expect(read("k8s/results.csv")).toBe(serial);
  });

  it("refuses to merge when a shard is missing", async () => {
    rmSync(join(dir, "shards-2"), { recursive: true, force: true });
    cpSync(join(dir, "shards/s0"), join(dir, "shards-2/s0"), { recursive: true });
    const r = await cli("experiment", "merge", join(dir, "shards-2"));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("shards 1/3, 2/3 are missing");
  });

  it("never writes over a folder of results without --resume or --force", async () => {
    const r = await cli("experiment", join(dir, "grid.yaml"), "--out", join(dir, "serial"));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("already holds the results of experiment grid");
    expect(read("serial/results.csv")).toBe(serial);
  });

  it("refuses a folder another memvisor is writing, and takes over a dead one's lock", async () => {
    const out = join(dir, "locked");
    mkdirSync(out);
    writeFileSync(join(out, ".memvisor.lock"), `${process.ppid}\n`);
    const r = await cli("experiment", join(dir, "grid.yaml"), "--jobs", "1", "--out", out);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`another memvisor (pid ${process.ppid}) is writing its results`);
    const dead = spawnSync(process.execPath, ["-e", ""]).pid;
    writeFileSync(join(out, ".memvisor.lock"), `${dead}\n`);
    const again = await cli("experiment", join(dir, "grid.yaml"), "--jobs", "1", "--out", out);
    expect(again.code).toBe(0);
    expect(existsSync(join(out, ".memvisor.lock"))).toBe(false);
  });

  it("resumes a killed run without losing or redoing a finished run", async () => {
    const out = join(dir, "killed");
    const child = spawn(
      process.execPath,
      [BIN, "experiment", "grid.yaml", "--jobs", "1", "--out", out],
      {
        cwd: dir,
        stdio: "ignore",
      },
    );
    const rows = () =>
      existsSync(join(out, "results.jsonl"))
        ? readFileSync(join(out, "results.jsonl"), "utf8").split("\n").length - 1
        : 0;
    await new Promise<void>((resolve, reject) => {
      const poll = setInterval(() => {
        if (rows() >= 3) {
          clearInterval(poll);
          child.kill("SIGKILL");
          resolve();
        }
      }, 5);
      child.on("exit", () => {
        clearInterval(poll);
        if (rows() < 3) reject(new Error("the run ended before it could be killed"));
      });
    });
    await new Promise((resolve) => child.on("exit", resolve));
    const kept = rows();
    expect(kept).toBeLessThan(16);
    const r = await cli(
      "experiment",
      join(dir, "grid.yaml"),
      "--resume",
      "--jobs",
      "1",
      "--out",
      out,
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`resuming: ${kept} of 16 runs already in ${out}`);
    expect(readFileSync(join(out, "results.csv"), "utf8")).toBe(serial);
  });
});

describe("Student's t", () => {
  it("has the table's quantiles and a 95% interval of t * s / sqrt(n)", () => {
    expect(tQuantile975(1)).toBe(12.706);
    expect(tQuantile975(3)).toBe(3.182);
    expect(tQuantile975(1000)).toBeGreaterThan(1.96);
    expect(tQuantile975(1000)).toBeLessThan(1.98);
    const { mean, ci95 } = meanInterval([1, 2, 3, 4]);
    expect(mean).toBe(2.5);
    expect(ci95).toBeCloseTo((3.182 * Math.sqrt(5 / 3)) / 2, 10);
    expect(meanInterval([5]).ci95).toBeNull();
  });
});
