/**
 * The CLI's honest endings: a run that ends early says why and exits 5 (0 when the scenario
 * expects it), a crashed domain's reason is in the text report, Ctrl-C prints the report so far
 * marked partial and exits 130, a mode that drops part of a scenario warns, `--vary` on a
 * parameter no process reads is an error, and compare keeps the modes that ran.
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { Simulation } from "../src/api/simulation.js";
import type { Report } from "../src/api/types.js";
import { cli } from "./support/cli.js";

const tmp = mkdtempSync(join(tmpdir(), "memvisor-cli-ending-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => {
  vi.restoreAllMocks();
});

/** Writes a scenario file of one domain; returns its path. */
function scenarioFile(name: string, run: string, domain: string[], host = ""): string {
  const file = join(tmp, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `name: ${name}`,
      `run: ${run}`,
      ...(host === "" ? [] : [`host: ${host}`]),
      "domains:",
      "  - name: d",
      ...domain.map((l) => `    ${l}`),
      "",
    ].join("\n"),
  );
  return file;
}

const LIFETIME = [
  "memory: 16MiB",
  "processes: [{ name: p, kind: database, working_set: 1MiB, lifetime: 5000 }]",
];
const lifetime = scenarioFile("lifetime", "{ accesses: 100000 }", LIFETIME);
const expected = scenarioFile("expected", "{ accesses: 100000, may_end_early: true }", LIFETIME);
const bootCrash = scenarioFile(
  "boot-crash",
  "{ accesses: 100000 }",
  [
    "memory: 512MiB",
    "mode: shadow",
    "balloon: { target: 8MiB }",
    "processes: [{ name: p, kind: database, working_set: 1MiB }]",
  ],
  "{ memory: 6MiB }",
);

describe("a run that ends before its accesses", () => {
  it("says why in the text report and exits 5", async () => {
    const r = await cli("run", lifetime);
    expect(r.code).toBe(5);
    expect(r.stdout).toContain("ENDED EARLY after 5,000 of 100,000 user accesses:\n");
    expect(r.stdout).toContain(
      "  domain d: every process is gone: p: 1 reached the lifetime (5000 accesses)",
    );
  });

  it("says why in the JSON and on stderr, and exits 5", async () => {
    const r = await cli("run", lifetime, "--json");
    expect(r.code).toBe(5);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.ending.status).toBe("early");
    expect(report.ending.reasons[0].cause).toBe("exited");
    expect(r.stderr).toContain("memvisor: ENDED EARLY after 5,000 of 100,000 user accesses");
  });

  it("exits 0 when the scenario says it may end early, and still says why", async () => {
    const r = await cli("run", expected);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("the scenario expects it (run.may_end_early)");
    expect(r.stdout).toContain("domain d: every process is gone");
    const j = await cli("run", expected, "--json");
    expect(j.code).toBe(0);
    expect(j.stderr).toBe("");
  });

  it("a domain crashed at boot: its reason in the text, its memory in use 0", async () => {
    const r = await cli("run", bootCrash);
    expect(r.code).toBe(5);
    expect(r.stdout).toMatch(/^CRASHED by the VMM: at boot: the host has no memory left/m);
    expect(r.stdout).toMatch(/domain d: the VMM crashed it at boot: /);
    expect(r.stdout).toMatch(/guest_frames_used +│ +0 │/);
    expect(r.stdout).not.toMatch(/-\d+(\.\d)?% of the guest/);
  });
});

describe("Ctrl-C during a run", () => {
  it("prints the report so far, marked partial, and exits 130", async () => {
    const runTurn = Simulation.prototype.runTurn;
    let turns = 0;
    vi.spyOn(Simulation.prototype, "runTurn").mockImplementation(function (this: Simulation) {
      if (++turns === 5) process.emit("SIGINT");
      return runTurn.call(this);
    });
    const r = await cli("run", "tlb-thrash", "--accesses", "100000000");
    expect(r.code).toBe(130);
    expect(turns).toBe(5);
    expect(r.stdout).toMatch(/^PARTIAL REPORT: the run was stopped after [\d,]+ of 100,000,000/m);
    expect(r.stderr).toBe(
      "memvisor: interrupted (SIGINT): the report so far is printed, marked partial\n",
    );
    expect(process.listenerCount("SIGINT")).toBe(0);
    turns = 0;
    const j = await cli("run", "tlb-thrash", "--accesses", "100000000", "--json");
    expect(j.code).toBe(130);
    const report = JSON.parse(j.stdout) as Report;
    expect(report.ending.status).toBe("partial");
    expect(report.host.counters.user_accesses).toBeGreaterThan(0);
    expect(report.host.counters.user_accesses).toBeLessThan(100_000_000);
  });
});

describe("a mode that drops part of the scenario", () => {
  it("--mode native on overcommit warns what it dropped, and runs", async () => {
    const r = await cli("run", "overcommit", "--mode", "native", "--accesses", "2000", "--json");
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      "memvisor: warning: --mode native drops what the scenario sets: ballooning and memory " +
        "targets (the balloon settings of domains vm1, vm2, vm3, vm4); the host's memory " +
        "(host.memory 1GiB): each native domain is a machine of its own; host swapping (host.swap)\n",
    );
    expect((JSON.parse(r.stdout) as Report).dropped_settings).toHaveLength(3);
  });

  it("--mode shadow on overcommit drops nothing and says nothing", async () => {
    const r = await cli("run", "overcommit", "--mode", "shadow", "--accesses", "2000");
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
  });
});

describe("compare", () => {
  it("keeps the modes that ran, names the one that could not and why, and exits 2", async () => {
    const argv = ["compare", "overcommit", "--modes", "native,shadow,pv", "--accesses", "3000"];
    const r = await cli(...argv);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/│\s+native\s+│\s+shadow\s+│\n/);
    expect(r.stdout).toContain("pv: NOT RUN: domain vm2: the host has no memory for the PV domain");
    expect(r.stdout).toContain("every mode that ran gave the guest the same page faults");
    expect(r.stderr).toContain("memvisor: warning: mode native drops what the scenario sets: ");
    const j = await cli(...argv, "--json");
    expect(j.code).toBe(2);
    const c = JSON.parse(j.stdout) as {
      modes: string[];
      results: { mode: string }[];
      not_run: { mode: string; reason: string }[];
    };
    expect(c.modes).toEqual(["native", "shadow", "pv"]);
    expect(c.results.map((x) => x.mode)).toEqual(["native", "shadow"]);
    expect(c.not_run).toEqual([
      { mode: "pv", reason: "domain vm2: the host has no memory for the PV domain" },
    ]);
    expect(j.stderr).toContain(
      "memvisor: mode pv could not run the scenario: domain vm2: the host has no memory",
    );
  });

  it("invariant violations (3) win over a mode that could not run (2)", async () => {
    const finish = Simulation.prototype.finish;
    vi.spyOn(Simulation.prototype, "finish").mockImplementation(function (this: Simulation) {
      const report = finish.call(this);
      return { ...report, checks: { enabled: true, violations: 1, first: "domain x: broken" } };
    });
    const r = await cli("compare", "overcommit", "--modes", "shadow,pv", "--accesses", "1000");
    expect(r.stdout).toContain("pv: NOT RUN");
    expect(r.code).toBe(3);
  });

  it("an error when no mode can run the scenario", async () => {
    const r = await cli("compare", "overcommit", "--modes", "pv", "--accesses", "1000");
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      "memvisor: scenario overcommit: no mode can run it: pv: domain vm2: the host has no memory for the PV domain\n",
    );
  });

  it("says which modes ended early and why, and exits 5", async () => {
    const r = await cli("compare", lifetime, "--modes", "native,hap");
    expect(r.code).toBe(5);
    expect(r.stdout).toContain("native: ENDED EARLY after 5,000 of 100,000 user accesses:");
    expect(r.stdout).toContain("hap: ENDED EARLY after 5,000 of 100,000 user accesses:");
    expect(r.stdout).toContain("  domain d: every process is gone");
    expect((await cli("compare", expected, "--modes", "native,hap")).code).toBe(0);
  });

  it("--vary on a parameter no process reads is an error naming it", async () => {
    const r = await cli("compare", "fork-storm", "--vary", "lifetime=10,20");
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      "memvisor: --vary lifetime: no process of scenario fork-storm reads lifetime (database " +
        "processes do; its processes are build): every value would give the same run\n",
    );
  });

  it("--vary prints fractional values as they are", async () => {
    const r = await cli("compare", expected, "--modes", "native,hap", "--vary", "writes=0.1,0.5");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/│\s+0\.1 │/);
    expect(r.stdout).toMatch(/│\s+0\.5 │/);
  });
});

describe("sweep", () => {
  it("says which sizes ended early and why, and exits 5", async () => {
    const r = await cli("sweep", lifetime, "--domains", "2");
    expect(r.code).toBe(5);
    expect(r.stdout).toContain("1 domain: ENDED EARLY after 5,000 of 100,000 user accesses:");
    expect(r.stdout).toContain("2 domains: ENDED EARLY after 10,000 of 200,000 user accesses:");
    expect(r.stdout).toContain("2 domains:   domain d-2: every process is gone");
  });
});
