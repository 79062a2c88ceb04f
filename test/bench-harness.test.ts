/**
 * The benchmark harness: its command line, the arithmetic of medians and pair ratios, the
 * checks on REF, and `--compare` run end to end against this checkout on the tiny benchmark.
 * Nothing here asserts a speed: only that the runs happened as the harness says.
 */

import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import {
  BenchUsageError,
  compareNames,
  DEFAULT_REPEAT,
  EXIT_INTERNAL,
  EXIT_USAGE,
  parseBenchArgs,
  selectNames,
} from "../src/bench/args.js";
import { refCheckout, userPath } from "../src/bench/checkout.js";
import {
  median,
  pairRatios,
  ratioToNative,
  round3,
  type Sample,
  sharedMainFigure,
  summarize,
} from "../src/bench/stats.js";
import {
  EXIT_INTERNAL as CLI_EXIT_INTERNAL,
  EXIT_USAGE as CLI_EXIT_USAGE,
} from "../src/cli/errors.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MAIN = join(ROOT, "dist/bench/main.js");
const tmp = mkdtempSync(join(tmpdir(), "memvisor-bench-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function usageError(argv: string[]): string {
  try {
    parseBenchArgs(argv);
  } catch (e) {
    expect(e).toBeInstanceOf(BenchUsageError);
    return (e as Error).message;
  }
  throw new Error(`no error for ${argv.join(" ")}`);
}

describe("the command line", () => {
  it("defaults to repeated runs of every benchmark, as text", () => {
    expect(parseBenchArgs([])).toEqual({
      json: false,
      once: false,
      repeat: DEFAULT_REPEAT,
      compare: null,
      names: [],
      help: false,
    });
  });

  it("takes --repeat and --compare with a space or =, names once each", () => {
    const a = parseBenchArgs(["--repeat", "5", "a", "--compare=/x", "--json", "b", "a"]);
    expect(a).toMatchObject({ repeat: 5, compare: "/x", json: true, names: ["a", "b"] });
    expect(parseBenchArgs(["--repeat=1", "--compare", "../ref"])).toMatchObject({
      repeat: 1,
      compare: "../ref",
    });
  });

  it("refuses a bad N, a missing value, an unknown option, --once with the others", () => {
    for (const n of ["0", "-1", "1.5", "x", "1001", "", "3x"]) {
      expect(usageError([`--repeat=${n}`])).toContain(`got "${n}"`);
    }
    expect(usageError(["--repeat"])).toBe("--repeat needs a value");
    expect(usageError(["--repeat", "--json"])).toBe("--repeat needs a value");
    expect(usageError(["--compare"])).toBe("--compare needs a value");
    expect(usageError(["--compare="])).toBe("--compare needs a checkout's folder");
    expect(usageError(["--jsn"])).toBe("unknown option --jsn");
    expect(usageError(["--once", "--repeat", "2"])).toContain("--once");
    expect(usageError(["--compare", "/x", "--once"])).toContain("--once");
  });

  it("runs every benchmark but the internal ones by default; an unknown name lists what there is", () => {
    const known = ["a", "b", "tiny"];
    expect(selectNames(known, new Set(["tiny"]), [])).toEqual(["a", "b"]);
    expect(selectNames(known, new Set(["tiny"]), ["tiny", "a"])).toEqual(["a", "tiny"]);
    expect(() => selectNames(known, new Set(), ["c", "a"])).toThrow(
      // The wording other checkouts' harnesses read the list from.
      /^unknown benchmark c; have a, b, tiny$/,
    );
  });

  it("--compare runs what both sides have and reports what only one has", () => {
    const mine = ["a", "b", "new", "tiny"];
    const ref = ["a", "b", "old", "tiny"];
    const internal = new Set(["tiny"]);
    expect(compareNames(mine, ref, internal, [])).toEqual({
      both: ["a", "b"],
      onlyThis: ["new"],
      onlyRef: ["old"],
    });
    expect(compareNames(mine, ref, internal, ["old", "tiny"])).toEqual({
      both: ["tiny"],
      onlyThis: [],
      onlyRef: ["old"],
    });
    expect(() => compareNames(mine, ref, internal, ["a", "x"])).toThrow(
      /^unknown benchmark x; have a, b, new, tiny, old$/,
    );
  });

  it("exits with the memvisor command's codes", () => {
    expect(EXIT_USAGE).toBe(CLI_EXIT_USAGE);
    expect(EXIT_INTERNAL).toBe(CLI_EXIT_INTERNAL);
  });
});

function sample(result: Record<string, number | string>, seq: number, cpu = 1): Sample {
  return {
    result: { name: "x", ...result },
    seq,
    process: {
      cpu_seconds: cpu,
      user_seconds: cpu,
      system_seconds: 0,
      wall_seconds: cpu,
      max_rss_mib: 100 + seq,
      pid: 1000 + seq,
    },
  };
}

describe("medians and ratios", () => {
  it("the median of an odd count is the middle value, of an even one the middle two's mean", () => {
    const xs = [5, 1, 4];
    expect(median(xs)).toBe(4);
    expect(xs).toEqual([5, 1, 4]);
    expect(median([10, 2, 8, 4])).toBe(6);
    expect(median([7])).toBe(7);
    expect(() => median([])).toThrow();
  });

  it("ratios are taken pair by pair, this over REF", () => {
    expect(pairRatios([100, 200, 50], [110, 180, 50])).toEqual([1.1, 0.9, 1]);
    expect(() => pairRatios([1, 2], [1])).toThrow();
    // The median of the pairs' ratios is not the ratio of the medians.
    const ref = [100, 100, 300];
    const self = [90, 330, 280];
    expect(median(pairRatios(ref, self))).toBeCloseTo(0.9333, 4);
    expect(median(self) / median(ref)).toBe(2.8);
  });

  it("the main rate is per CPU second where there is one, else per second, and shared by both sides", () => {
    const access = { name: "a", accesses_per_s: 5, cpu_seconds: 1, accesses_per_cpu_s: 6 };
    const fault = { name: "f", faults: 9, faults_per_s: 3, hypercalls_per_fault: 1 };
    const parse = { name: "p", lines: 1, lines_per_s: 2, mib_per_s: 3 };
    const old = { name: "a", accesses_per_s: 4 };
    expect(sharedMainFigure(access, access)).toBe("accesses_per_cpu_s");
    expect(sharedMainFigure(fault, fault)).toBe("faults_per_s");
    expect(sharedMainFigure(parse, parse)).toBe("lines_per_s");
    expect(sharedMainFigure(access, old)).toBe("accesses_per_s");
    expect(sharedMainFigure(fault, parse)).toBeNull();
  });

  it("a summary holds each figure's median, the main rate's min and max, the processes' medians", () => {
    const runs = [
      sample({ accesses: 10, accesses_per_cpu_s: 300, seconds: 0.5, tag: "t" }, 0, 2),
      sample({ accesses: 10, accesses_per_cpu_s: 100, seconds: 0.25, tag: "t" }, 1, 4),
      sample({ accesses: 10, accesses_per_cpu_s: 201, seconds: 0.125, tag: "u" }, 2, 3),
      sample({ accesses: 10, accesses_per_cpu_s: 200, seconds: 1, tag: "t" }, 3, 1),
    ];
    const s = summarize("x", runs, "accesses_per_cpu_s");
    // Whole figures stay whole (200.5 rounds); fractions keep three decimals.
    expect(s.figures).toEqual({ accesses: 10, accesses_per_cpu_s: 201, seconds: 0.375 });
    expect(s).toMatchObject({ runs: 4, main_min: 100, main_max: 300, process_cpu_seconds: 2.5 });
    expect(s.process_max_rss_mib).toBe(102);
    expect(s.samples.map((x) => x.seq)).toEqual([0, 1, 2, 3]);
  });

  it("ratio_to_native comes from the two medians, by CPU time where there is one", () => {
    const mk = (name: string, rate: number) =>
      summarize(name, [sample({ accesses_per_s: rate * 2, accesses_per_cpu_s: rate }, 0)], null);
    const all = [mk("native-local", 400), mk("shadow-local", 300), mk("hap-random", 1)];
    expect(ratioToNative("shadow-local", all)).toBe(0.75);
    expect(ratioToNative("native-local", all)).toBeNull();
    expect(ratioToNative("hap-random", all)).toBeNull(); // no native-random in this invocation
  });
});

describe("REF", () => {
  const noLog = () => {};
  it("a relative REF is taken from where npm was started when npm runs the harness", () => {
    const npm = { npm_lifecycle_event: "bench", INIT_CWD: "/home/me/work/sub" };
    expect(userPath("../base", npm, "/home/me/memvisor")).toBe("/home/me/work/base");
    expect(userPath("../base", { INIT_CWD: "/x" }, "/home/me/memvisor")).toBe("/home/me/base");
    expect(userPath("/work/base", npm, "/home/me/memvisor")).toBe("/work/base");
  });

  it("must be a folder holding a checkout of memvisor", () => {
    expect(() => refCheckout(join(tmp, "none"), noLog)).toThrow(/none: not a folder/);
    const other = join(tmp, "other");
    mkdirSync(other);
    expect(() => refCheckout(other, noLog)).toThrow(
      /not a checkout of memvisor \(no readable package.json\)/,
    );
    writeFileSync(join(other, "package.json"), '{"name": "vite"}');
    expect(() => refCheckout(other, noLog)).toThrow(/its package.json names "vite"/);
  });

  it("without its dist/ and node_modules: the error says what to run there", () => {
    const ref = join(tmp, "unbuilt");
    mkdirSync(join(ref, "src/bench"), { recursive: true });
    writeFileSync(join(ref, "package.json"), '{"name": "memvisor"}');
    expect(() => refCheckout(ref, noLog)).toThrow("has no benchmarks (no src/bench/main.ts)");
    writeFileSync(join(ref, "src/bench/main.ts"), "");
    expect(() => refCheckout(ref, noLog)).toThrow(
      `dist/bench/main.js is missing and it has no node_modules: run \`cd ${ref} && npm ci && npm run build\` first`,
    );
  });

  it("without its dist/ but with node_modules: built with its own npm run build", () => {
    const ref = join(tmp, "buildable");
    mkdirSync(join(ref, "src/bench"), { recursive: true });
    mkdirSync(join(ref, "node_modules"));
    writeFileSync(join(ref, "src/bench/main.ts"), "");
    const make = (code: number) =>
      writeFileSync(
        join(ref, "package.json"),
        JSON.stringify({
          name: "memvisor",
          scripts: { build: `node -e "process.exit(${code})"` },
        }),
      );
    make(3);
    const logged: string[] = [];
    expect(() => refCheckout(ref, (l) => logged.push(l))).toThrow(
      `\`npm run build\` in ${ref} exited with 3 and left no dist/bench/main.js: build it there by hand`,
    );
    expect(logged).toEqual([
      `bench: dist/bench/main.js is missing in ${ref}: building it with \`npm run build\` there`,
    ]);
    writeFileSync(
      join(ref, "package.json"),
      JSON.stringify({
        name: "memvisor",
        scripts: {
          build:
            "node -e \"require('fs').mkdirSync('dist/bench',{recursive:true});require('fs').writeFileSync('dist/bench/main.js','')\"",
        },
      }),
    );
    expect(refCheckout(ref, noLog)).toEqual({
      label: "REF",
      root: ref,
      script: join(ref, "dist/bench/main.js"),
    });
  });
});

/** The harness run as `node dist/bench/main.js ARGS` (dist/ is built by the suite's setup). */
/**
 * The harness run on this checkout. Its warning that src/ is newer than dist/ is left out of
 * stderr: whether it is printed depends on the files' times in the working copy (a source file
 * edited or checked out since the last build), not on what these tests check.
 */
function bench(...argv: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...argv], { cwd: ROOT, encoding: "utf8" });
  const stderr = r.stderr.replace(/^bench: warning: .* has changed since .*\n/gm, "");
  return { code: r.status, stdout: r.stdout, stderr };
}

interface JsonSide {
  name: string;
  runs: number;
  main_figure: string;
  process_cpu_seconds: number;
  samples: {
    seq: number;
    accesses_per_cpu_s: number;
    process: { pid: number; cpu_seconds: number };
  }[];
}

describe("--compare, end to end", () => {
  it("runs REF's benchmark and this one's in turn, each in a new process, and takes the pairs' median ratio", () => {
    const r = bench("--compare", ROOT, "--repeat", "3", "--json", "tiny");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.compare).toMatchObject({ pairs: 3, this: { path: ROOT.replace(/\/$/, "") } });
    expect(out.only_this).toEqual([]);
    expect(out.only_ref).toEqual([]);
    expect(out.conditions.cores).toBeGreaterThanOrEqual(1);
    expect(out.conditions.wall_seconds).toBeGreaterThan(0);
    expect(out.results).toHaveLength(1);
    const res = out.results[0];
    const ref: JsonSide = res.ref;
    const self: JsonSide = res.this;
    expect(res.main_figure).toBe("accesses_per_cpu_s");
    for (const side of [ref, self]) {
      expect(side).toMatchObject({ name: "tiny", runs: 3 });
      expect(side.samples).toHaveLength(3);
      for (const s of side.samples) expect(s.process.cpu_seconds).toBeGreaterThan(0);
    }
    // REF, this, REF, this, ...: each pair back to back, REF first.
    expect(ref.samples.map((s) => s.seq)).toEqual([0, 2, 4]);
    expect(self.samples.map((s) => s.seq)).toEqual([1, 3, 5]);
    const pids = [...ref.samples, ...self.samples].map((s) => s.process.pid);
    expect(new Set(pids).size).toBe(6);
    // The ratio is the median of the pairs' own ratios.
    const ratios = self.samples.map(
      (s, i) => s.accesses_per_cpu_s / ref.samples[i].accesses_per_cpu_s,
    );
    expect(res.ratios).toEqual(ratios);
    expect(res.ratio).toBeCloseTo(median(ratios), 3);
    expect(res.ratio_min).toBeCloseTo(Math.min(...ratios), 3);
    expect(res.ratio_max).toBeCloseTo(Math.max(...ratios), 3);
    expect(res.this.accesses_per_cpu_s).toBe(
      Math.round(median(self.samples.map((s) => s.accesses_per_cpu_s))),
    );
  });

  it("drives REF through `--json NAME` only; a benchmark one side lacks is reported, one that fails exits 70", () => {
    // A stand-in for an older checkout: its CLI knows `--json NAME` and ignores other flags.
    const ref = join(tmp, "old");
    mkdirSync(join(ref, "dist/bench"), { recursive: true });
    writeFileSync(join(ref, "package.json"), '{"name": "memvisor"}');
    writeFileSync(
      join(ref, "dist/bench/main.js"),
      [
        'const names = process.argv.slice(2).filter((a) => !a.startsWith("--"));',
        'const have = ["tiny", "old-only"];',
        "const unknown = names.filter((n) => !have.includes(n));",
        "if (unknown.length > 0) {",
        '  const list = (xs) => xs.join(", ");',
        '  process.stderr.write("bench: unknown benchmark " + list(unknown) + "; have " + list(have) + "\\n");',
        "  process.exit(2);",
        "}",
        'if (process.env.OLD_FAILS) { process.stderr.write("boom\\n"); process.exit(1); }',
        // Its runs alternate between two rates, so that the median of the pairs' ratios and the
        // ratio of the medians differ.
        'const fs = require("node:fs");',
        'const run = fs.existsSync("runs") ? Number(fs.readFileSync("runs", "utf8")) : 0;',
        'fs.writeFileSync("runs", String(run + 1));',
        "const rate = run % 2 === 0 ? 1000000 : 4000000;",
        'const r = { name: "tiny", accesses: 1, accesses_per_s: rate, cpu_seconds: 1 };',
        'process.stdout.write(JSON.stringify({ results: [r] }, null, 2) + "\\n");',
        "",
      ].join("\n"),
    );
    const r = bench("--compare", ref, "--repeat", "1", "--json");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.results.map((x: { name: string }) => x.name)).toEqual([]);
    expect(out.only_ref).toEqual(["old-only"]);
    expect(out.only_this).toContain("native-local");
    const named = JSON.parse(
      bench("--compare", ref, "--repeat", "2", "--json", "tiny", "old-only").stdout,
    );
    // The old side has no per-CPU rate: the figure both have is compared.
    expect(named.results[0]).toMatchObject({ name: "tiny", main_figure: "accesses_per_s" });
    const self = named.results[0].this.samples.map(
      (s: { accesses_per_s: number }) => s.accesses_per_s,
    );
    expect(
      named.results[0].ref.samples.map((s: { accesses_per_s: number }) => s.accesses_per_s),
    ).toEqual([1e6, 4e6]);
    const ratios = [self[0] / 1e6, self[1] / 4e6];
    expect(named.results[0].ratios).toEqual(ratios);
    expect(named.results[0].ratio).toBe(round3(median(ratios)));
    expect(named.results[0].ref.accesses_per_s).toBe(2.5e6);
    expect(named.only_ref).toEqual(["old-only"]);
    const text = bench("--compare", ref, "--repeat", "1", "tiny", "old-only");
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /\ntiny +accesses_per_s +1,000,000 +[0-9,]+ +[0-9.]+ +[0-9.-]+ +[0-9.]+ \/ [0-9.]+\n/,
    );
    expect(text.stdout).toContain("\nonly in REF (not run): old-only\n");
    const unknown = bench("--compare", ref, "--repeat", "1", "tiny", "old-only", "nope");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /^bench: unknown benchmark nope; have native-local, .*, old-only\n$/,
    );
    const failing = spawnSync(process.execPath, [MAIN, "--compare", ref, "--repeat", "1", "tiny"], {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, OLD_FAILS: "1" },
    });
    expect(failing.status).toBe(70);
    expect(failing.stderr).toContain(
      `REF's tiny (node ${ref}/dist/bench/main.js --json --once tiny in ${ref}) exited with 1:\nboom`,
    );
    expect(failing.stderr).not.toMatch(/^\s+at /m);
  });
});

/** The processes `pid` has started (Linux's /proc), or none. */
function childrenOf(pid: number): number[] {
  const tasks = `/proc/${pid}/task`;
  if (!existsSync(tasks)) return [];
  return readdirSync(tasks).flatMap((t) => {
    const text = readFileSync(join(tasks, t, "children"), "utf8").trim();
    return text === "" ? [] : text.split(" ").map(Number);
  });
}

/** Whether `pid` still runs (a zombie has ended: only its parent has not read its status). */
function runs(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("a signal", () => {
  it.skipIf(process.platform !== "linux")(
    "sent to the harness alone ends its benchmark process too, and exits 143",
    async () => {
      const harness = spawn(process.execPath, [MAIN, "--repeat", "1", "native-local"], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      harness.stderr.setEncoding("utf8").on("data", (d: string) => {
        stderr += d;
      });
      const exited = new Promise<number | null>((done) => harness.on("close", done));
      let children: number[] = [];
      for (let i = 0; i < 200 && children.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 25));
        children = childrenOf(harness.pid ?? 0);
      }
      expect(children).toHaveLength(1);
      harness.kill("SIGTERM");
      expect(await exited).toBe(143);
      expect(stderr).toBe("bench: interrupted by SIGTERM\n");
      await new Promise((r) => setTimeout(r, 200));
      const left = children.filter(runs);
      for (const pid of left) process.kill(pid, "SIGKILL");
      expect(left).toEqual([]);
    },
  );
});
