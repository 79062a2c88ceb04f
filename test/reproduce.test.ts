/**
 * Reproducibility of printed reports: each carries its provenance (commit, command line, wall
 * time) beside the library's resolved scenario and cost model; `run --from REPORT.json` makes
 * the same run again, to the counter, and refuses what is not such a report with a message that
 * names the file (exit 2); `--format csv` and `--format stats` print the series and the counters.
 */

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  COST_COUNTERS,
  COST_EVENTS,
  COUNTER_NAMES,
  type Report,
  VERSION,
} from "../src/api/index.js";
import { commandLine, gitCommit, memvisorCommit } from "../src/cli/provenance.js";
import { cli, withoutWallTime } from "./support/cli.js";

const tmp = mkdtempSync(join(tmpdir(), "memvisor-repro-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A printed report (run, compare or sweep --json) with its provenance. */
type Printed = Report & {
  provenance: { commit: string | null; command: string; wall_seconds: number };
};

async function json(...argv: string[]): Promise<Printed> {
  const r = await cli(...argv);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as Printed;
}

function save(name: string, value: unknown): string {
  const path = join(tmp, name);
  writeFileSync(path, typeof value === "string" ? value : JSON.stringify(value));
  return path;
}

const counters = (r: Report) =>
  r.domains.map((d) => ({ name: d.name, mode: d.mode, ...d.counters }));

describe("provenance", () => {
  it("run, compare and sweep --json carry the commit, the command line and the wall time", async () => {
    const commit = memvisorCommit();
    for (const argv of [
      ["run", "tlb-thrash", "--accesses", "5000", "--json"],
      ["compare", "tlb-thrash", "--accesses", "5000", "--json"],
      ["sweep", "sharing", "--domains", "1", "--accesses", "2000", "--json"],
    ]) {
      const printed = await json(...argv);
      expect(Object.keys(printed).slice(0, 2)).toEqual(["memvisor", "provenance"]);
      expect(printed.memvisor).toBe(VERSION);
      expect(printed.provenance.commit).toBe(commit);
      expect(printed.provenance.command).toBe(`memvisor ${argv.join(" ")}`);
      expect(printed.provenance.wall_seconds).toBeGreaterThan(0);
    }
  });

  it("the commit is the checkout's HEAD, as git says", () => {
    let head: string;
    try {
      head = execFileSync("git", ["rev-parse", "HEAD"], { encoding: "utf8" }).trim();
    } catch {
      return; // not a git checkout, or no git: nothing to compare with
    }
    expect(memvisorCommit()).toBe(head);
  });

  it("reads HEAD detached, through a loose ref, packed-refs and a worktree's .git file", () => {
    const sha = (c: string) => c.repeat(40);
    const repo = join(tmp, "repo", ".git");
    mkdirSync(join(repo, "refs", "heads"), { recursive: true });
    writeFileSync(join(repo, "HEAD"), `${sha("a")}\n`);
    expect(gitCommit(repo)).toBe(sha("a"));
    writeFileSync(join(repo, "HEAD"), "ref: refs/heads/main\n");
    expect(gitCommit(repo)).toBe(null);
    writeFileSync(join(repo, "packed-refs"), `# pack-refs\n${sha("b")} refs/heads/main\n`);
    expect(gitCommit(repo)).toBe(sha("b"));
    writeFileSync(join(repo, "refs", "heads", "main"), `${sha("c")}\n`);
    expect(gitCommit(repo)).toBe(sha("c"));
    // A worktree: .git is a file naming its git folder, whose commondir holds the refs.
    const wt = join(repo, "worktrees", "wt");
    mkdirSync(wt, { recursive: true });
    writeFileSync(join(wt, "HEAD"), "ref: refs/heads/main\n");
    writeFileSync(join(wt, "commondir"), "../..\n");
    const dotGit = join(tmp, "wt.git");
    writeFileSync(dotGit, `gitdir: ${wt}\n`);
    expect(gitCommit(dotGit)).toBe(sha("c"));
    expect(gitCommit(join(tmp, "no-such", ".git"))).toBe(null);
  });

  it("quotes the command line as a shell takes it back", () => {
    expect(commandLine(["run", "my scenario.yaml", "--seed", "7"])).toBe(
      "memvisor run 'my scenario.yaml' --seed 7",
    );
    expect(commandLine(["run", "it's.yaml"])).toBe(`memvisor run 'it'\\''s.yaml'`);
  });

  it("two runs of the same command differ only in the wall time", async () => {
    const argv = ["run", "two-domains", "--accesses", "5000", "--mode", "shadow", "--json"];
    const a = await cli(...argv);
    const b = await cli(...argv);
    expect(a.stdout).toContain('"wall_seconds"');
    expect(withoutWallTime(a.stdout)).toBe(withoutWallTime(b.stdout));
  });

  it("the report holds the cost model in effect, overrides included", async () => {
    const r = await json("run", "tlb-thrash", "--accesses", "2000", "--json");
    expect(Object.keys(r.cost_model)).toEqual([...COST_EVENTS]);
    const d = r.domains[0];
    for (const e of COST_EVENTS) {
      const count = d.counters[COUNTER_NAMES[COST_COUNTERS[e]]];
      expect(d.cycles.by_event[e], e).toBe(count * r.cost_model[e]);
    }
    expect(r.resolved_scenario.costs).toEqual({});
    // The resolved scenario is a scenario file: with a cost changed, the model has the change.
    const file = save("costly.json", {
      ...r.resolved_scenario,
      costs: { vmexit: 1234, core_cycle: 2 },
    });
    const costly = await json("run", file, "--json");
    expect(costly.cost_model).toEqual({ ...r.cost_model, vmexit: 1234, core_cycle: 2 });
    expect(costly.resolved_scenario.costs).toEqual({ vmexit: 1234, core_cycle: 2 });
  });
});

describe("run --from", () => {
  it.each([
    ["tlb-thrash"],
    ["two-domains", "--mode", "hap", "--seed", "5"],
    ["fork-storm", "--mode", "shadow"],
    ["sharing", "--mode", "shadow"],
    ["sort-trace", "--mode", "pv"],
    ["balloon-auto", "--seed", "3"],
  ])("reruns %s %s to the same counters", async (...args) => {
    const first = await json("run", ...args, "--accesses", "20000", "--json");
    const file = save(`run-${args.join("-")}.json`, first);
    const again = await json("run", "--from", file, "--json");
    expect(counters(again)).toEqual(counters(first));
    // The whole report, apart from the provenance, is the same.
    const { provenance: _a, ...rest1 } = first;
    const { provenance: _b, ...rest2 } = again;
    expect(JSON.stringify(rest2)).toBe(JSON.stringify(rest1));
  });

  it("reruns one mode of a comparison, chosen with --mode; without it says which there are", async () => {
    const cmp = (await json(
      "compare",
      "fork-storm",
      "--modes",
      "native,shadow,hap",
      "--accesses",
      "10000",
      "--json",
    )) as unknown as {
      results: { mode: string; report: Report }[];
    };
    const file = save("compare.json", cmp);
    for (const result of cmp.results) {
      const again = await json("run", "--from", file, "--mode", result.mode, "--json");
      expect(counters(again)).toEqual(counters(result.report));
    }
    const r = await cli("run", "--from", file);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `--from ${file}: a comparison holds the runs of 3 modes (native, shadow, hap): choose one with --mode`,
    );
    const pv = await cli("run", "--from", file, "--mode", "pv");
    expect(pv.code).toBe(2);
    expect(pv.stderr).toContain("it has no run under pv");
  });

  it("refuses a --vary comparison and a sweep with how to take one run out, which then reruns", async () => {
    const vary = (await json(
      "compare",
      "crossover",
      "--modes",
      "native,shadow",
      "--vary",
      "child_accesses=2000,4000",
      "--accesses",
      "10000",
      "--json",
    )) as unknown as { points: { comparison: { results: { report: Report }[] } }[] };
    const file = save("vary.json", vary);
    const r = await cli("run", "--from", file, "--mode", "shadow");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`jq '.points[0].comparison.results[1].report' ${file} > run.json`);
    // What the hint takes out is a run report: it reruns at its value of the parameter.
    const one = vary.points[1].comparison.results[1].report;
    const again = await json("run", "--from", save("vary-one.json", one), "--json");
    expect(again.resolved_scenario.domains[0].processes[0].child_accesses).toBe(4000);
    expect(counters(again)).toEqual(counters(one));

    const sweep = save(
      "sweep.json",
      await json("sweep", "sharing", "--domains", "2", "--accesses", "2000", "--json"),
    );
    const s = await cli("run", "--from", sweep);
    expect(s.code).toBe(2);
    expect(s.stderr).toContain("a sweep holds 2 runs");
    expect(s.stderr).toContain(`jq '.results[1].report' ${sweep} > run.json`);
  });

  it("--seed and --accesses still override the report's", async () => {
    const first = await json("run", "tlb-thrash", "--accesses", "5000", "--json");
    const file = save("override.json", first);
    const other = await json("run", "--from", file, "--seed", "8", "--accesses", "3000", "--json");
    expect(other.seed).toBe(8);
    expect(other.host.counters.user_accesses).toBe(3000);
  });

  describe("bad input: a message naming the file and what was expected, exit 2, no stack", () => {
    const report = () =>
      JSON.parse(readFileSync(join(tmp, "run-tlb-thrash.json"), "utf8")) as Record<string, unknown>;
    const cases: [string, () => string, string][] = [
      ["a missing file", () => join(tmp, "missing.json"), "cannot read the file: no such file"],
      ["a directory", () => tmp, "cannot read the file: is a directory"],
      ["not JSON", () => save("text.json", "memvisor 0.1.0 · scenario mixed\n"), "not JSON ("],
      [
        "JSON, not a report",
        () => save("list.json", "[1, 2]"),
        "not a memvisor report; expected a report that memvisor run",
      ],
      [
        "another version's report",
        () => save("old.json", { ...report(), memvisor: "0.0.1" }),
        'written by memvisor "0.0.1", and this is memvisor',
      ],
      [
        "a report without its resolved scenario",
        () => save("bare.json", { ...report(), resolved_scenario: undefined }),
        "resolved_scenario: missing",
      ],
    ];
    it.each(cases)("%s", async (_, make, message) => {
      const file = make();
      const r = await cli("run", "--from", file);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain(`memvisor: --from ${file}: `);
      expect(r.stderr).toContain(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });

    it("a resolved scenario that fails validation, by its path in the report", async () => {
      const bad = report();
      const resolved = bad.resolved_scenario as { domains: { memory: number }[] };
      resolved.domains[0].memory = 3 * 1024 * 1024 + 1;
      const file = save("invalid.json", bad);
      const r = await cli("run", "--from", file);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        `memvisor: ${file}: resolved_scenario.domains[0].memory: must be a multiple of 2MiB`,
      );
    });

    it("a scenario and --from together", async () => {
      const r = await cli("run", "mixed", "--from", join(tmp, "run-tlb-thrash.json"));
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("give no SCENARIO");
    });
  });
});

describe("run --format", () => {
  it("csv: a header named as the series are, then one row per sample", async () => {
    const argv = ["run", "two-domains", "--accesses", "20000", "--mode", "shadow"];
    const report = await json(...argv, "--json");
    const r = await cli(...argv, "--format", "csv");
    expect(r.code).toBe(0);
    const [header, ...rows] = r.stdout.trimEnd().split("\n");
    const columns = header.split(",");
    expect(columns.slice(0, 3)).toEqual(["time", "vm1.cycles", "vm1.user_accesses"]);
    expect(columns).toContain("vm2.tlb_misses");
    expect(columns).toContain("host.frames_used");
    expect(rows).toHaveLength(report.series.length);
    const last = report.series[report.series.length - 1];
    const cells = rows[rows.length - 1].split(",").map(Number);
    expect(cells[0]).toBe(last.time);
    expect(cells[columns.indexOf("vm2.tlb_misses")]).toBe(last.domains.vm2.tlb_misses);
    expect(cells[columns.indexOf("host.frames_used")]).toBe(last.host?.frames_used);
  });

  it("stats: `name value # description` for every counter, the values the report's", async () => {
    const argv = ["run", "fork-storm", "--accesses", "10000", "--mode", "shadow"];
    const report = await json(...argv, "--json");
    const r = await cli(...argv, "--format", "stats");
    expect(r.code).toBe(0);
    const stats = new Map<string, [number, string]>();
    for (const line of r.stdout.split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      const m = /^(\S+) +(\S+) +# (.+)$/.exec(line);
      expect(m, line).not.toBeNull();
      stats.set(m?.[1] ?? "", [Number(m?.[2]), m?.[3] ?? ""]);
    }
    const d = report.domains[0];
    for (const name of COUNTER_NAMES) {
      const [value, doc] = stats.get(`${d.name}.${name}`) ?? [Number.NaN, ""];
      expect(value, name).toBe(d.counters[name]);
      expect(doc.length, name).toBeGreaterThan(5);
    }
    expect(stats.get(`${d.name}.shadow_fault`)?.[1]).toBe(
      "page-fault exits handled by shadow paging",
    );
    expect(stats.get("host.cycles")?.[0]).toBe(report.host.counters.cycles);
    expect(stats.get("cost_model.vmexit")?.[0]).toBe(report.cost_model.vmexit);
    expect(r.stdout).toContain(`# commit ${memvisorCommit() ?? "unknown"}`);
  });

  it("csv of a native run has no host columns; stats describe the walk histogram too", async () => {
    const csv = await cli("run", "tlb-thrash", "--accesses", "5000", "--format", "csv");
    const header = csv.stdout.split("\n")[0].split(",");
    expect(header.filter((c) => c.startsWith("host."))).toEqual([]);
    expect(header).toContain("scanner.tlb_misses");
    const stats = await cli("run", "tlb-thrash", "--accesses", "5000", "--format", "stats");
    expect(stats.stdout).toMatch(
      /^scanner\.walk_refs_1 +\d+ +# page walks that made 1 memory references$/m,
    );
  });

  it("--json and another --format are refused together", async () => {
    const r = await cli("run", "tlb-thrash", "--json", "--format", "csv");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--json and --format csv ask for two formats");
  });
});
