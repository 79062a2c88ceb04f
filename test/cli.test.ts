import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { Simulation } from "../src/api/simulation.js";
import type { Report } from "../src/api/types.js";
import { VERSION } from "../src/api/version.js";
import { BUILTIN_SCENARIOS, DEFAULT_SCENARIO } from "../src/workload/scenario/builtin.js";
import { loadTraceFile } from "../src/workload/trace/file.js";
import { cli, withoutWallTime } from "./support/cli.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const STACK_LINE = /^\s+at /m;

/** A run that must succeed with exactly one JSON object on stdout. */
async function runJson(...argv: string[]): Promise<Report> {
  const r = await cli("run", ...argv, "--json");
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as Report;
}

const tmp = mkdtempSync(join(tmpdir(), "memvisor-cli-"));
/** Line 5 names a mode that does not exist. */
const BAD_SCENARIO = join(tmp, "bad.yaml");
writeFileSync(
  BAD_SCENARIO,
  [
    "name: bad",
    "run: { accesses: 1000 }",
    "domains:",
    "  - name: db",
    "    mode: nativ",
    "    memory: 64MiB",
    "    processes:",
    "      - { name: p, kind: database, working_set: 1MiB }",
    "",
  ].join("\n"),
);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => {
  vi.restoreAllMocks();
});

describe("memvisor scenarios", () => {
  it("lists every built-in in a table and marks the default", async () => {
    const r = await cli("scenarios");
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    for (const b of BUILTIN_SCENARIOS) expect(r.stdout).toContain(b.name);
    expect(r.stdout).toContain(`${DEFAULT_SCENARIO} *`);
    for (const line of r.stdout.split("\n")) expect(line.length).toBeLessThanOrEqual(100);
  });

  it("--json prints an array of {name, summary, default}", async () => {
    const r = await cli("scenarios", "--json");
    expect(r.code).toBe(0);
    const list = JSON.parse(r.stdout) as { name: string; summary: string; default: boolean }[];
    expect(list.map((s) => s.name)).toEqual(BUILTIN_SCENARIOS.map((b) => b.name));
    expect(list.filter((s) => s.default).map((s) => s.name)).toEqual([DEFAULT_SCENARIO]);
    for (const s of list) expect(s.summary.length).toBeGreaterThan(0);
  });
});

describe("memvisor run --json", () => {
  it("prints the Report with its documented shape", async () => {
    const report = await runJson("tlb-thrash", "--accesses", "20000");
    expect(report.memvisor).toBe(VERSION);
    expect(report.scenario).toBe("tlb-thrash");
    expect(report.seed).toBe(42);
    expect(report.domains).toHaveLength(1);
    const d = report.domains[0];
    expect(d).toMatchObject({ name: "scanner", mode: "native" });
    expect(d.counters.user_accesses).toBe(20000);
    expect(d.cycles.total).toBeGreaterThan(0);
    expect(Object.keys(d.cycles.by_event)).toContain("walk_ref");
    expect(report.host).toMatchObject({
      frames_total: expect.any(Number),
      frames_used: expect.any(Number),
      frames_used_peak: expect.any(Number),
    });
    expect(report.host.counters.user_accesses).toBe(20000);
    expect(report.checks).toEqual({ enabled: false, violations: 0 });
  });

  it("is deterministic for a seed, and the seed matters", async () => {
    const a = await cli("run", "tlb-thrash", "--accesses", "20000", "--seed", "7", "--json");
    const b = await cli("run", "tlb-thrash", "--accesses", "20000", "--seed", "7", "--json");
    expect(withoutWallTime(a.stdout)).toBe(withoutWallTime(b.stdout));
    const other = JSON.parse(
      (await cli("run", "tlb-thrash", "--accesses", "20000", "--seed", "8", "--json")).stdout,
    ) as Report;
    const first = JSON.parse(a.stdout) as Report;
    expect(other.seed).toBe(8);
    expect(other.domains[0].processes[0].read_hash).not.toBe(
      first.domains[0].processes[0].read_hash,
    );
  });

  it("--check runs the invariant checks", async () => {
    const report = await runJson("--accesses", "20000", "--check");
    expect(report.checks).toEqual({ enabled: true, violations: 0 });
  });
});

describe("memvisor run (tables)", () => {
  it("runs the default scenario and prints its counters", async () => {
    // Named: a bare `run` is the first run's comparison (test/tour.test.ts).
    const r = await cli("run", DEFAULT_SCENARIO, "--accesses", "20000");
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain(`scenario ${DEFAULT_SCENARIO}`);
    expect(r.stdout).toContain("domain guest (native");
    expect(r.stdout).toContain("tlb_misses");
    expect(r.stdout).toContain("20,000 user accesses");
    expect(r.stdout).not.toContain("invariant checks");
    for (const line of r.stdout.split("\n")) expect(line.length).toBeLessThanOrEqual(100);
  });

  it("--check prints a checks line", async () => {
    const r = await cli("run", "tlb-thrash", "--accesses", "20000", "--check");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("invariant checks: 0 violations");
  });

  it("exits 3 and shows the first violation when checks fail", async () => {
    const finish = Simulation.prototype.finish;
    vi.spyOn(Simulation.prototype, "finish").mockImplementation(function (this: Simulation) {
      const report = finish.call(this);
      return { ...report, checks: { enabled: true, violations: 2, first: "domain x: broken" } };
    });
    const r = await cli("run", "tlb-thrash", "--accesses", "1000", "--check");
    expect(r.code).toBe(3);
    expect(r.stdout).toContain("invariant checks: 2 violations; first: domain x: broken");
    const j = await cli("run", "tlb-thrash", "--accesses", "1000", "--check", "--json");
    expect(j.code).toBe(3);
    expect(JSON.parse(j.stdout).checks.violations).toBe(2);
    expect(j.stderr).toContain("domain x: broken");
  });
});

describe("memvisor trace", () => {
  it("runs a scenario that replays a trace, and names the line of a trace it cannot read", async () => {
    const dir = mkdtempSync(join(tmpdir(), "memvisor-test-"));
    try {
      const fixture = new URL("../traces/sort-services.lackey.gz", import.meta.url).pathname;
      const file = join(dir, "s.yaml");
      const scenario = (trace: string) =>
        [
          "domains:",
          "  - name: d",
          "    memory: 64MiB",
          "    processes:",
          `      - { name: sort, kind: trace, trace: ${trace}, loop: true }`,
          "",
        ].join("\n");
      writeFileSync(file, scenario(fixture));
      const ok = await cli("run", file, "--accesses", "20000", "--json");
      expect(ok.code).toBe(0);
      const report = JSON.parse(ok.stdout) as Report;
      expect(report.domains[0].processes[0]).toMatchObject({ kind: "trace", accesses: 20000 });
      writeFileSync(file, scenario("gone.mvtr"));
      const bad = await cli("run", file);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain(
        `${file}:5:43: domains[0].processes[0].trace: cannot replay this trace: ${join(dir, "gone.mvtr")}: cannot read it: no such file`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("imports a gzip lackey trace, and will not overwrite without --force", async () => {
    const dir = mkdtempSync(join(tmpdir(), "memvisor-test-"));
    try {
      const out = join(dir, "sort.mvtr");
      const fixture = new URL("../traces/sort-services.lackey.gz", import.meta.url).pathname;
      const r = await cli("trace", "import", fixture, "-o", out);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(
        /1,326,970 lines, 1,326,945 accesses -> .*sort\.mvtr: 1,330,451 records/,
      );
      expect(loadTraceFile(out).count).toBe(1_330_451);
      const again = await cli("trace", "import", fixture, "-o", out);
      expect(again.code).toBe(2);
      expect(again.stderr).toContain(
        "already exists; give another name, or --force to overwrite it",
      );
      expect((await cli("trace", "import", fixture, "-o", out, "--force")).code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("tells what a trace holds and the address space its replay gets", async () => {
    const fixture = new URL("../traces/sort-services.lackey.gz", import.meta.url).pathname;
    const r = await cli("trace", "info", fixture, "--json");
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout) as {
      records: number;
      kinds: { load: number; store: number; fetch: number };
      pages: number;
      regions: { start: string; prot: string; kind: string }[];
    };
    expect(info.records).toBe(1_330_451);
    expect(info.kinds.load + info.kinds.store + info.kinds.fetch).toBe(info.records);
    expect(info.pages).toBe(247);
    expect(info.regions.some((g) => g.kind === "code" && g.prot.endsWith("x"))).toBe(true);
    expect(info.regions[info.regions.length - 1].kind).toBe("stack");
    const table = await cli("trace", "info", fixture);
    expect(table.stdout).toContain("247 pages touched");
    const missing = await cli("trace", "info", "/nonexistent/t.mvtr");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("/nonexistent/t.mvtr: cannot read it: no such file");
  });

  it("says which line of a bad file is wrong, and writes nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "memvisor-test-"));
    try {
      const bad = join(dir, "bad.lackey");
      writeFileSync(bad, "I  04001e90,3\n L 1ffe,zz\n");
      const out = join(dir, "bad.mvtr");
      const r = await cli("trace", "import", bad, "-o", out);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("bad.lackey:2: no size after the comma");
      expect(existsSync(out)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("memvisor sweep", () => {
  it("runs 1..N clones of the first domain and reports the saving of each", async () => {
    const r = await cli("sweep", "sharing", "--domains", "2", "--accesses", "5000", "--json");
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as {
      results: { domains: number; memory_saved_bytes: number; report: { domains: unknown[] } }[];
    };
    expect(s.results.map((x) => x.domains)).toEqual([1, 2]);
    expect(s.results.map((x) => x.report.domains.length)).toEqual([1, 2]);
  });

  it("refuses a count out of range", async () => {
    const r = await cli("sweep", "sharing", "--domains", "0");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--domains: expected an integer from 1 to 16, got "0"');
  });
});

describe("memvisor compare", () => {
  it("gives every domain of a multi-domain scenario the same work in every mode", async () => {
    const r = await cli("compare", "two-domains", "--accesses", "30000", "--json");
    expect(r.code).toBe(0);
    const c = JSON.parse(r.stdout) as {
      same_guest_view: boolean;
      results: { report: { domains: { counters: Record<string, number> }[] } }[];
    };
    expect(c.same_guest_view).toBe(true);
    for (const result of c.results) {
      expect(result.report.domains.map((d) => d.counters.user_accesses)).toEqual([15_000, 15_000]);
    }
  });

  it("runs each mode on the same guest work and says so", async () => {
    const r = await cli(
      "compare",
      "fork-storm",
      "--modes",
      "native,shadow",
      "--accesses",
      "20000",
      "--json",
    );
    expect(r.code).toBe(0);
    const c = JSON.parse(r.stdout) as {
      modes: string[];
      same_guest_view: boolean;
      results: {
        mode: string;
        user_accesses: number;
        guest_page_faults: number;
        vmexits: { total: number };
        overhead_pct: number;
      }[];
    };
    expect(c.modes).toEqual(["native", "shadow"]);
    expect(c.same_guest_view).toBe(true);
    const [native, shadow] = c.results;
    expect(native.user_accesses).toBe(20_000);
    expect(shadow.user_accesses).toBe(20_000);
    expect(shadow.guest_page_faults).toBe(native.guest_page_faults);
    expect(native.vmexits.total).toBe(0);
    expect(shadow.vmexits.total).toBeGreaterThan(0);
    expect(shadow.overhead_pct).toBeGreaterThan(0);
  });

  it("prints a table of the modes side by side", async () => {
    const r = await cli("compare", "shadow-steady", "--accesses", "20000");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/native\s+│\s+shadow/);
    expect(r.stdout).toContain("same page faults and the same data");
    for (const line of r.stdout.split("\n")) expect(line.length).toBeLessThanOrEqual(100);
  });

  it("varies a parameter and finds where one mode overtakes another", async () => {
    const r = await cli(
      "compare",
      "fork-storm",
      "--modes",
      "native,shadow,hap",
      "--vary",
      "child_accesses=500,4000",
      "--accesses",
      "20000",
      "--json",
    );
    expect(r.code).toBe(0);
    const v = JSON.parse(r.stdout) as {
      parameter: string;
      points: {
        value: number;
        comparison: {
          same_guest_view: boolean;
          results: { mode: string; report: { domains: { counters: Record<string, number> }[] } }[];
        };
      }[];
    };
    expect(v.parameter).toBe("child_accesses");
    expect(v.points.map((p) => p.value)).toEqual([500, 4000]);
    // Shorter lives: more processes started for the same work, in every mode.
    const forks = v.points.map((p) => p.comparison.results[0].report.domains[0].counters.forks);
    expect(forks[0]).toBeGreaterThan(forks[1]);
    for (const p of v.points) expect(p.comparison.same_guest_view).toBe(true);
    const table = await cli(
      "compare",
      "fork-storm",
      "--modes",
      "native,shadow,hap",
      "--vary",
      "child_accesses=500,4000",
      "--accesses",
      "20000",
    );
    expect(table.stdout).toMatch(/child_accesses\s+│\s+native cycles\/access/);
    expect(table.stdout).toMatch(/^(no )?crossover: /m);
  });

  it.each([
    ["child_accesses", "--vary: expected PARAMETER=V1,V2,..."],
    [
      "colour=1,2",
      '--vary: expected one of child_accesses, jobs, churn_accesses, working_set, writes, fetches, lifetime, got "colour"',
    ],
    ["jobs=1", "--vary: expected 2 to 20 values for jobs, got 1"],
    ["jobs=1,100", '--vary jobs: expected an integer from 1 to 64, got "100"'],
    ["writes=0.5,2", '--vary writes: expected numbers from 0 to 1, got "2"'],
    [
      "working_set=1MiB,5000",
      '--vary working_set: expected sizes that are positive multiples of 4KiB, got "5000"',
    ],
  ])("refuses --vary %s", async (vary, message) => {
    const r = await cli("compare", "fork-storm", "--vary", vary);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });

  it("refuses an unknown mode in --modes", async () => {
    const r = await cli("compare", "--modes", "native,vmx");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--modes: expected a list of native, shadow, hap, pv, got "vmx"');
  });
});

describe("memvisor errors", () => {
  it("a bad scenario file: file:line:col, exit 2, no stack", async () => {
    const r = await cli("run", BAD_SCENARIO);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^memvisor: /);
    expect(r.stderr).toContain(`${BAD_SCENARIO}:5:11: domains[0].mode:`);
    expect(r.stderr).not.toMatch(STACK_LINE);
  });

  it("a missing file", async () => {
    const r = await cli("run", join(tmp, "missing.yaml"));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("missing.yaml: cannot read the file: no such file");
    expect(r.stderr).not.toMatch(STACK_LINE);
  });

  it("an unknown built-in lists the built-ins", async () => {
    const r = await cli("run", "no-such-scenario");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown scenario "no-such-scenario"');
    for (const b of BUILTIN_SCENARIOS) expect(r.stderr).toContain(b.name);
  });

  it("a mode that cannot build the scenario's domains", async () => {
    const r = await cli("run", "overcommit", "--mode", "pv", "--accesses", "1000");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^memvisor: .*the host has no memory for the PV domain/);
    expect(r.stderr).not.toMatch(STACK_LINE);
  });

  it("a mode that does not exist", async () => {
    const r = await cli("run", "--mode", "vmx");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Allowed choices are native, shadow, hap, pv");
  });

  it.each([
    ["--seed", "-1", '--seed: expected an integer from 0 to 4294967295, got "-1"'],
    ["--seed", "x", '--seed: expected an integer from 0 to 4294967295, got "x"'],
    ["--seed", "4294967296", "--seed: expected an integer from 0 to 4294967295"],
    ["--accesses", "0", '--accesses: expected an integer from 1 to 1000000000000, got "0"'],
    ["--accesses", "1.5", "--accesses: expected an integer from 1 to 1000000000000"],
    ["--accesses", "1000000000001", "--accesses: expected an integer from 1 to 1000000000000"],
  ])("%s %s", async (option, value, message) => {
    const r = await cli("run", option, value);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`memvisor: ${message}`);
  });

  it("unknown commands and options exit 2", async () => {
    const cmd = await cli("frobnicate");
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toContain("unknown command 'frobnicate'");
    const opt = await cli("run", "--frobnicate");
    expect(opt.code).toBe(2);
    expect(opt.stderr).toContain("unknown option '--frobnicate'");
  });

  it("an internal error says so, with the stack only under MEMVISOR_DEBUG", async () => {
    vi.spyOn(Simulation.prototype, "runTurn").mockImplementation(() => {
      throw new Error("boom");
    });
    const r = await cli("run", "tlb-thrash");
    expect(r.code).toBe(70);
    expect(r.stderr).toMatch(/^memvisor: internal error: boom\n/);
    expect(r.stderr).not.toMatch(STACK_LINE);
    vi.stubEnv("MEMVISOR_DEBUG", "1");
    try {
      expect((await cli("run", "tlb-thrash")).stderr).toMatch(STACK_LINE);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe("memvisor --version and help", () => {
  it("--version", async () => {
    const r = await cli("--version");
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(VERSION);
  });

  it("help run and run --help", async () => {
    for (const argv of [
      ["help", "run"],
      ["run", "--help"],
    ]) {
      const r = await cli(...argv);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("Usage: memvisor run");
      expect(r.stdout).toContain("--accesses");
    }
  });
});

describe("bin/memvisor.js", () => {
  const bin = join(ROOT, "bin", "memvisor.js");

  beforeAll(() => {
    // Built once for the suite (test/support/build-dist.ts).
    expect(existsSync(join(ROOT, "dist", "cli", "main.js"))).toBe(true);
  });

  it("runs a scenario end to end", () => {
    const stdout = execFileSync(
      process.execPath,
      [bin, "run", "tlb-thrash", "--accesses", "5000", "--json"],
      { cwd: ROOT, encoding: "utf8" },
    );
    const report = JSON.parse(stdout) as Report;
    expect(report.host.counters.user_accesses).toBe(5000);
  });

  it("a report that cannot be written (a full disk, a closed pipe) exits 74 and says why", () => {
    const full = spawnSync(
      "sh",
      ["-c", `"${process.execPath}" "${bin}" run tlb-thrash --accesses 1000 > /dev/full`],
      { encoding: "utf8" },
    );
    expect(full.status).toBe(74);
    expect(full.stderr).toBe(
      "memvisor: cannot write to standard output: no space left on the device\n",
    );
    const pipe = spawnSync(
      "sh",
      ["-c", `"${process.execPath}" "${bin}" scenarios --json | true; echo "rc=$?"`],
      { encoding: "utf8" },
    );
    expect(pipe.stderr).toContain("the reading end of the pipe was closed");
  });

  it("prints a scenario's control and bidi characters escaped, in reports and in errors", () => {
    const file = join(tmp, "escape.yaml");
    writeFileSync(
      file,
      [
        'description: "\\e]0;title\\a \\u202eevil"',
        "run: { accesses: 100 }",
        "domains:",
        "  - { name: d, memory: 8MiB, processes: [{ name: p, kind: database, working_set: 64KiB, code: 4KiB }] }",
        "",
      ].join("\n"),
    );
    const r = spawnSync(process.execPath, [bin, "run", file], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("\\u001b]0;title\\u0007 \\u202eevil");
    for (const c of ["\u001b", "\u0007", "\u202e"]) expect(r.stdout).not.toContain(c);
    const bad = join(tmp, "\u001b[2J.yaml");
    writeFileSync(bad, "domains: 1\n");
    const e = spawnSync(process.execPath, [bin, "run", bad], { encoding: "utf8" });
    expect(e.status).toBe(2);
    expect(e.stderr).toContain("\\u001b[2J.yaml:1:10: domains: expected a list of domains");
    expect(e.stderr).not.toContain("\u001b");
  });

  it("a real SIGINT mid-run: the partial report and 130", async () => {
    const child = spawn(
      process.execPath,
      [bin, "run", "tlb-thrash", "--accesses", "1000000000000"],
      { cwd: ROOT },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => {
      stdout += String(c);
    });
    child.stderr.on("data", (c) => {
      stderr += String(c);
    });
    const code = new Promise<number | null>((resolve) => child.on("close", resolve));
    // Long enough for Node to start and the run to begin; the run would last days.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    child.kill("SIGINT");
    expect(await code).toBe(130);
    expect(stdout).toMatch(
      /^PARTIAL REPORT: the run was stopped after [\d,]+ of 1,000,000,000,000/m,
    );
    expect(stdout).toContain("domain scanner (native");
    expect(stderr).toContain("interrupted (SIGINT)");
  }, 30_000);

  it("sets the exit code for a bad file", () => {
    const r = spawnSync(process.execPath, [bin, "run", BAD_SCENARIO], { encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`${BAD_SCENARIO}:5:11:`);
    expect(r.stderr).not.toMatch(STACK_LINE);
  });
});
