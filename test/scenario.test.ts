import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatSize, parseSize } from "../src/config/sizes.js";
import {
  BUILTIN_SCENARIOS,
  builtinScenario,
  DEFAULT_SCENARIO,
} from "../src/workload/scenario/builtin.js";
import { loadBuiltinScenario, loadScenarioFile } from "../src/workload/scenario/file.js";
import { parseScenario } from "../src/workload/scenario/parse.js";
import { ScenarioError } from "../src/workload/scenario/problems.js";

const SCENARIOS_DIR = new URL("../scenarios/", import.meta.url);

/** The error parseScenario throws for text; fails the test if it does not throw one. */
function errorOf(text: string, file = "x.yaml"): ScenarioError {
  try {
    parseScenario(text, file);
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
  throw new Error(`expected a ScenarioError for:\n${text}`);
}

/** A valid scenario whose lines a test replaces; line numbers below refer to this text. */
const BASE = [
  "name: base", // 1
  "seed: 7", // 2
  "run: { accesses: 1000 }", // 3
  "domains:", // 4
  "  - name: db", // 5
  "    memory: 1GiB", // 6
  "    mode: native", // 7
  "    processes:", // 8
  "      - name: postgres", // 9
  "        kind: database", // 10
  "        working_set: 256MiB", // 11
  "        pattern: { type: zipf, s: 0.99 }", // 12
  "        writes: 0.25", // 13
];

/** BASE with 1-based line n replaced (or removed when text is null). */
function withLine(n: number, text: string | null, base = BASE): string {
  const lines = [...base];
  if (text === null) lines.splice(n - 1, 1);
  else lines[n - 1] = text;
  return `${lines.join("\n")}\n`;
}

describe("built-in scenarios", () => {
  it("has the default and unique names", () => {
    const names = BUILTIN_SCENARIOS.map((b) => b.name);
    expect(names).toContain(DEFAULT_SCENARIO);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual([
      "mixed",
      "database",
      "build",
      "two-domains",
      "tlb-thrash",
      "shadow-steady",
      "fork-storm",
      "unshadow-policies",
      "overcommit",
      "overcommit-swap",
      "balloon-auto",
      "sharing",
      "sort-trace",
      "crossover",
      "ept-large-pages",
      "tour",
    ]);
  });

  it.each(BUILTIN_SCENARIOS.map((b) => [b.name]))("%s parses, with a few seconds' run", (name) => {
    const s = builtinScenario(name);
    expect(s.name).toBe(name);
    expect(s.domains.length).toBeGreaterThan(0);
    expect(s.run.accesses).toBeGreaterThanOrEqual(500_000);
    // build's 6,000,000 (four compiler processes of 1.4e8 instructions) run in about 2 s,
    // sort-trace's 12,000,000 (7 ms of two looped replays, three slices) in about 1.2 s.
    expect(s.run.accesses).toBeLessThanOrEqual(name === "sort-trace" ? 12_000_000 : 6_000_000);
    for (const d of s.domains) expect(["native", "shadow", "hap"]).toContain(d.mode);
  });

  it("has a built-in for every scenarios/*.yaml and a file for every built-in", () => {
    const files = readdirSync(SCENARIOS_DIR)
      .filter((f) => f.endsWith(".yaml"))
      .map((f) => f.slice(0, -".yaml".length));
    expect(BUILTIN_SCENARIOS.map((b) => b.name).sort()).toEqual(files.sort());
  });

  it.each(BUILTIN_SCENARIOS.map((b) => [b.name]))("embeds scenarios/%s.yaml as it is", (name) => {
    const file = new URL(`${name}.yaml`, SCENARIOS_DIR);
    const builtin = BUILTIN_SCENARIOS.find((b) => b.name === name)!;
    expect(builtin.yaml).toBe(readFileSync(file, "utf8"));
    expect(loadScenarioFile(file.pathname)).toEqual(loadBuiltinScenario(name));
  });

  it("builds the scenarios the brief describes", () => {
    const mixed = builtinScenario("mixed");
    expect(mixed.domains).toHaveLength(1);
    expect(mixed.domains[0].memory).toBe(parseSize("1GiB"));
    expect(mixed.domains[0].processes.map((p) => p.kind)).toEqual([
      "database",
      "build",
      "mmap-churn",
    ]);
    const [db, build, churn] = mixed.domains[0].processes;
    expect(db.workingSet).toBe(parseSize("256MiB"));
    expect(db.pattern).toEqual({ type: "zipf", s: 0.99 });
    expect(build).toMatchObject({ jobs: 2, workingSet: parseSize("8MiB"), childAccesses: 20000 });
    expect(churn.workingSet).toBe(parseSize("16MiB"));

    const database = builtinScenario("database");
    expect(database.domains[0].memory).toBe(parseSize("2GiB"));
    expect(database.domains[0].processes[0].pattern).toEqual({
      type: "hotcold",
      hotFraction: 0.05,
      hotProbability: 0.9,
    });

    expect(builtinScenario("build").domains[0].processes[0]).toMatchObject({
      kind: "build",
      jobs: 2,
      workingSet: parseSize("4MiB"),
      childAccesses: 1_440_000,
      instructionsPerAccess: 95,
    });

    const two = builtinScenario("two-domains");
    expect(two.domains.map((d) => d.memory)).toEqual([parseSize("512MiB"), parseSize("512MiB")]);
    for (const d of two.domains) {
      expect(d.processes[0]).toMatchObject({
        kind: "database",
        workingSet: parseSize("128MiB"),
        pattern: { type: "uniform" },
      });
    }

    expect(builtinScenario("tlb-thrash").domains[0].processes[0]).toMatchObject({
      workingSet: parseSize("64MiB"),
      pattern: { type: "stride", stride: 1 },
    });
  });

  it("names the available scenarios when asked for an unknown one", () => {
    expect(() => builtinScenario("nope")).toThrow(ScenarioError);
    expect(() => builtinScenario("nope")).toThrow(
      `nope: not a built-in scenario (available: ${BUILTIN_SCENARIOS.map((b) => b.name).join(", ")})`,
    );
  });

  it("returns a fresh copy each time", () => {
    const a = builtinScenario("mixed");
    a.domains[0].name = "changed";
    expect(builtinScenario("mixed").domains[0].name).toBe("guest");
  });
});

describe("defaults", () => {
  it("fills every default of a minimal scenario", () => {
    const s = parseScenario(
      "domains:\n  - name: d\n    memory: 64MiB\n    processes:\n      - { name: p, kind: database, working_set: 4KiB }\n",
      "dir/minimal.yaml",
    );
    expect(s).toEqual({
      name: "minimal",
      description: "",
      seed: 1,
      hardware: {
        // The default CPU profile's (skylake-sp): its TLBs, caches and walk caches.
        cpu: "skylake-sp",
        tlb: { l1: { entries: 64, ways: 4 }, l2: { entries: 1536, ways: 12 } },
        pcid: false,
        gigaPages: false,
        walkCaches: { pwc: true, eptPwc: true, nestedTlb: false },
        dataCache: true,
      },
      host: {
        memory: 0,
        swap: { enabled: false, lowWater: 0, highWater: 0, grace: 20_000_000 },
        balloonPolicy: { type: "fixed" },
        sharing: {
          enabled: false,
          algorithm: "ksm",
          pagesToScan: 100,
          sleep: 200_000,
          useZeroPages: false,
        },
      },
      costs: {},
      run: { accesses: 1_000_000, sampleEvery: 1_000_000, warmup: 0, mayEndEarly: false },
      domains: [
        {
          name: "d",
          memory: 64 * 2 ** 20,
          mode: "native",
          osImage: "linux",
          shadow: {
            pool: 0,
            unshadow: "early",
            prefetch: 31,
            writableSearch: "rmap",
            outOfSync: true,
          },
          hap: { largePages: false },
          balloon: {
            driver: true,
            target: 64 * 2 ** 20,
            floor: 0,
            touch: "populate",
            schedule: [],
            retryDelay: 1_000_000,
            maxRetryDelay: 32_000_000,
          },
          quantum: { type: "cfs" },
          processes: [
            {
              name: "p",
              kind: "database",
              instances: 1,
              workingSet: 4096,
              code: 2 ** 20,
              pattern: { type: "uniform" },
              writes: 0.25,
              fetches: 0.1,
              childAccesses: 20_000,
              jobs: 2,
              churnAccesses: 5_000,
              lifetime: 0,
              image: "p",
              imageData: 0,
              hugePages: false,
              instructionsPerAccess: 2,
              cpi: 0.6,
              trace: null,
            },
          ],
        },
      ],
    });
  });

  it("keeps partial hardware and cost settings next to the defaults", () => {
    const s = parseScenario(
      withLine(
        1,
        "name: base\nhardware: { tlb: { l2: { ways: 6 } }, pcid: true }\ncosts: { walk_ref: 30 }",
      ),
      "x.yaml",
    );
    expect(s.hardware).toEqual({
      cpu: "skylake-sp",
      tlb: { l1: { entries: 64, ways: 4 }, l2: { entries: 1536, ways: 6 } },
      pcid: true,
      gigaPages: false,
      walkCaches: { pwc: true, eptPwc: true, nestedTlb: false },
      dataCache: true,
    });
    expect(s.costs).toEqual({ walk_ref: 30 });
    expect(s.seed).toBe(7);
    expect(s.run).toEqual({
      accesses: 1000,
      sampleEvery: 1_000_000,
      warmup: 0,
      mayEndEarly: false,
    });
  });

  it("reads a JSON file", () => {
    const json = JSON.stringify({
      name: "j",
      domains: [
        {
          name: "d",
          memory: "512MiB",
          mode: "hap",
          processes: [{ name: "p", kind: "build", working_set: 8192, jobs: 3 }],
        },
      ],
    });
    const s = parseScenario(json, "j.json");
    expect(s.domains[0]).toMatchObject({ memory: 512 * 2 ** 20, mode: "hap" });
    expect(s.domains[0].processes[0]).toMatchObject({ workingSet: 8192, jobs: 3 });
  });

  it("gives JSON errors a line and column too", () => {
    const json =
      '{\n  "domains": [\n    { "name": "d", "memory": "1GiB", "mode": "hvm",\n      "processes": [] }\n  ]\n}\n';
    const e = errorOf(json, "s.json");
    expect(e.message).toContain(
      's.json:3:46: domains[0].mode: expected one of native, shadow, hap, pv, got "hvm"',
    );
    expect(e.message).toContain("s.json:4:20: domains[0].processes: expected at least one process");
  });
});

describe("sizes", () => {
  it.each([
    [1073741824, "1GiB"],
    [3145728, "3MiB"],
    [4096, "4KiB"],
    [1536 * 2 ** 20, "1536MiB"],
    [2 ** 40, "1TiB"],
    [1000, "1000B"],
    [0, "0B"],
  ])("formatSize(%d) is %s and parses back", (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
    expect(parseSize(text)).toBe(bytes);
  });

  it.each([
    ["512MiB", 512 * 2 ** 20],
    ["512 MiB", 512 * 2 ** 20],
    ["1.5GiB", 1.5 * 2 ** 30],
    ["4096", 4096],
    ["12B", 12],
    [8192, 8192],
  ])("parseSize(%j) is %d", (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each([
    ["1GB", 'write "1GiB"'],
    ["1g", 'write "1GiB"'],
    ["12 parsecs", "units: B, KiB, MiB, GiB, TiB"],
    ["-1MiB", "expected a size"],
    ["0.5B", "whole number of bytes"],
    [1.5, "whole number of bytes"],
  ])("parseSize(%j) fails saying %s", (text, fragment) => {
    expect(() => parseSize(text)).toThrow(fragment);
  });

  it("round trips every whole number of bytes", () => {
    fc.assert(
      fc.property(fc.nat({ max: Number.MAX_SAFE_INTEGER }), (bytes) => {
        expect(parseSize(formatSize(bytes))).toBe(bytes);
      }),
    );
    fc.assert(
      fc.property(
        fc.nat({ max: 2 ** 22 }),
        fc.constantFrom(1, 1024, 2 ** 20, 2 ** 30),
        (n, unit) => {
          expect(parseSize(formatSize(n * unit))).toBe(n * unit);
        },
      ),
    );
  });
});

/** [what, text, line, column, path, message fragment]: one problem each. */
const BAD: [string, string, number, number, string, string][] = [
  [
    "balloon target above the domain's memory",
    withLine(7, "    mode: shadow\n    balloon: { target: 2GiB }"),
    8,
    24,
    "domains[0].balloon.target",
    "must be at most the domain's memory (1GiB), got 2GiB",
  ],
  [
    "negative balloon target",
    withLine(7, "    mode: shadow\n    balloon: { target: -4096 }"),
    8,
    24,
    "domains[0].balloon.target",
    'expected a whole number of bytes (or a size such as "512MiB"), got -4096',
  ],
  [
    "balloon target not a number",
    withLine(7, "    mode: shadow\n    balloon: { target: lots }"),
    8,
    24,
    "domains[0].balloon.target",
    'expected a size such as "512MiB" or a number of bytes',
  ],
  [
    "scheduled target above the domain's memory",
    withLine(7, "    balloon: { schedule: [{ at: 10, target: 3GiB }] }"),
    7,
    45,
    "domains[0].balloon.schedule[0].target",
    "must be at most the domain's memory (1GiB), got 3GiB",
  ],
  [
    "schedule going backwards",
    withLine(7, "    balloon: { schedule: [{ at: 10, target: 1GiB }, { at: 5, target: 512MiB }] }"),
    7,
    59,
    "domains[0].balloon.schedule[1].at",
    "must not be before the previous change (at 10)",
  ],
  [
    "schedule with the automatic policy",
    withLine(2, "host: { balloon_policy: { type: auto } }\nseed: 7").replace(
      "    mode: native",
      "    balloon: { schedule: [{ at: 10, target: 512MiB }] }",
    ),
    8,
    26,
    "domains[0].balloon.schedule",
    "applies only to host.balloon_policy type fixed, and this host's is auto",
  ],
  [
    "unknown balloon policy",
    withLine(2, "host: { balloon_policy: { type: mom } }"),
    2,
    33,
    "host.balloon_policy.type",
    'expected one of fixed, auto, got "mom"',
  ],
  [
    "balloon floor above its target",
    withLine(7, "    balloon: { target: 512MiB, floor: 768MiB }"),
    7,
    39,
    "domains[0].balloon.floor",
    "must be at most the balloon's target (512MiB), got 768MiB",
  ],
  [
    "critical pressure above the threshold",
    withLine(
      2,
      "host: { balloon_policy: { type: auto, pressure_threshold: 0.1, pressure_critical: 0.2 } }",
    ),
    2,
    83,
    "host.balloon_policy.pressure_critical",
    "must be at most pressure_threshold (0.1)",
  ],
  [
    "swap watermark above the host's memory",
    withLine(2, "host: { memory: 64MiB, swap: { enabled: true, low_water: 128MiB } }"),
    2,
    58,
    "host.swap.low_water",
    "must be at most the host's memory (64MiB), got 128MiB",
  ],
  [
    "unknown touch policy",
    withLine(7, "    balloon: { on_touch: crash }"),
    7,
    26,
    "domains[0].balloon.on_touch",
    'expected one of populate, mmio, got "crash"',
  ],
  [
    "bad mode",
    withLine(7, "    mode: hvm"),
    7,
    11,
    "domains[0].mode",
    'expected one of native, shadow, hap, pv, got "hvm"',
  ],
  [
    "bad size",
    withLine(6, "    memory: 12 parsecs"),
    6,
    13,
    "domains[0].memory",
    'expected a size such as "512MiB" or a number of bytes (units: B, KiB, MiB, GiB, TiB), got "12 parsecs"',
  ],
  [
    "decimal unit",
    withLine(11, "        working_set: 256MB"),
    11,
    22,
    "domains[0].processes[0].working_set",
    'expected a size such as "512MiB" or a number of bytes (units are binary: write "256MiB"), got "256MB"',
  ],
  [
    "memory not a multiple of 2MiB",
    withLine(6, "    memory: 1025MiB"),
    6,
    13,
    "domains[0].memory",
    'must be a multiple of 2MiB, got "1025MiB"',
  ],
  [
    "memory above 512GiB (the direct map's one L3 table)",
    withLine(6, "    memory: 513GiB"),
    6,
    13,
    "domains[0].memory",
    'must be at most 512GiB, got "513GiB"',
  ],
  [
    "memory below 4MiB (what the kernel needs to boot)",
    withLine(6, "    memory: 2MiB"),
    6,
    13,
    "domains[0].memory",
    'must be at least 4MiB, got "2MiB"',
  ],
  [
    "a cost that is not a whole number of cycles up to 10^9",
    withLine(2, "costs: { walk_ref: 1e300 }"),
    2,
    20,
    "costs.walk_ref",
    "expected an integer from 0 to 1000000000, got 1e+300",
  ],
  [
    "host memory above 1TiB",
    withLine(2, "host: { memory: 2TiB }"),
    2,
    17,
    "host.memory",
    'must be at most 1TiB, got "2TiB"',
  ],
  [
    "working set not a multiple of 4KiB",
    withLine(11, "        working_set: 5000"),
    11,
    22,
    "domains[0].processes[0].working_set",
    "must be a multiple of 4KiB, got 5000",
  ],
  [
    "zero working set",
    withLine(11, "        working_set: 0"),
    11,
    22,
    "domains[0].processes[0].working_set",
    "must be greater than 0",
  ],
  [
    "unknown key",
    withLine(11, "        wrking_set: 256MiB\n        working_set: 256MiB"),
    11,
    9,
    "domains[0].processes[0].wrking_set",
    'unknown key "wrking_set" (did you mean "working_set"?)',
  ],
  [
    "unknown top-level key",
    withLine(2, "seeds: 7"),
    2,
    1,
    "seeds",
    'unknown key "seeds" (did you mean "seed"?)',
  ],
  [
    "unknown cost event",
    withLine(2, "seed: 7\ncosts: { tlb_miss: 3 }"),
    3,
    10,
    "costs.tlb_miss",
    'unknown key "tlb_miss" (expected one of access, tlb_l1_hit,',
  ],
  [
    "wrong type: string for a number",
    withLine(13, "        writes: lots"),
    13,
    17,
    "domains[0].processes[0].writes",
    'expected a number between 0 and 1, got "lots"',
  ],
  [
    "out of range fraction",
    withLine(13, "        writes: 1.5"),
    13,
    17,
    "domains[0].processes[0].writes",
    "expected a number between 0 and 1, got 1.5",
  ],
  [
    "wrong type: mapping expected",
    withLine(3, "run: 1000"),
    3,
    6,
    "run",
    "expected a mapping, got 1000",
  ],
  [
    "wrong type: list expected",
    withLine(4, "domains: db").split("\n").slice(0, 4).join("\n"),
    4,
    10,
    "domains",
    'expected a list of domains, got "db"',
  ],
  [
    "boolean from YAML 1.1",
    withLine(2, "seed: 7\nhardware: { pcid: yes }"),
    3,
    19,
    "hardware.pcid",
    'expected true or false, got "yes"',
  ],
  [
    "number with underscores",
    withLine(3, "run: { accesses: 1_000_000 }"),
    3,
    18,
    "run.accesses",
    'expected an integer from 1 to 1000000000000, got "1_000_000" (write digits only',
  ],
  [
    "missing required key",
    withLine(11, null),
    9,
    9,
    "domains[0].processes[0].working_set",
    'missing required key "working_set"',
  ],
  ["missing domains", "name: nothing\n", 1, 1, "domains", 'missing required key "domains"'],
  [
    "missing pattern parameter",
    withLine(12, "        pattern: { type: zipf }"),
    12,
    18,
    "domains[0].processes[0].pattern.s",
    'missing required key "s"',
  ],
  [
    "unknown pattern",
    withLine(12, "        pattern: { type: random }"),
    12,
    26,
    "domains[0].processes[0].pattern.type",
    'expected one of sequential, uniform, hotcold, zipf, stride, got "random"',
  ],
  [
    "pattern as a bare word",
    withLine(12, "        pattern: zipf"),
    12,
    18,
    "domains[0].processes[0].pattern",
    'expected a mapping such as { type: zipf, s: 0.99 }, got "zipf"',
  ],
  [
    "empty list of processes",
    withLine(8, "    processes: []").split("\n").slice(0, 8).join("\n"),
    8,
    16,
    "domains[0].processes",
    "expected at least one process",
  ],
  [
    "working sets that do not fit",
    withLine(11, "        working_set: 1000MiB"),
    9,
    7,
    "domains[0].processes",
    "the processes need 1001MiB (postgres 1001MiB), more than 90% of the domain's 1GiB of memory (921.6MiB)",
  ],
  [
    "a build's jobs count towards the fit",
    withLine(
      13,
      "        writes: 0.25\n      - { name: make, kind: build, jobs: 64, working_set: 16MiB }",
    ),
    9,
    7,
    "domains[0].processes",
    "the processes need 1.31GiB (postgres 257MiB, make 1.06GiB), more than 90%",
  ],
  [
    "a field of another kind",
    withLine(13, "        jobs: 4"),
    13,
    15,
    "domains[0].processes[0].jobs",
    "applies only to build processes, and this one is a database",
  ],
  [
    "duplicate domain names",
    `${withLine(13, "        writes: 0.25")}  - name: db\n    memory: 64MiB\n    processes: [{ name: p, kind: database, working_set: 1MiB }]\n`,
    14,
    11,
    "domains[1].name",
    'the domain name "db" is already used by domains[0]',
  ],
  [
    "TLB sets not a power of two",
    withLine(2, "seed: 7\nhardware: { tlb: { l1: { entries: 48, ways: 4 } } }"),
    3,
    35,
    "hardware.tlb.l1.entries",
    "entries / ways (the number of sets, here 12) must be a power of two",
  ],
  [
    "TLB sets from a default",
    withLine(2, "seed: 7\nhardware: { tlb: { l2: { ways: 8 } } }"),
    3,
    24,
    "hardware.tlb.l2.entries",
    "entries / ways (the number of sets, here 192) must be a power of two",
  ],
  [
    "a bad name",
    withLine(5, "  - name: my db"),
    5,
    11,
    "domains[0].name",
    'expected a name of letters, digits, ".", "_" or "-", got "my db"',
  ],
  [
    "a null value",
    withLine(11, "        working_set:"),
    11,
    21,
    "domains[0].processes[0].working_set",
    'expected a size such as "512MiB" or a number of bytes, got an empty value',
  ],
];

describe("errors", () => {
  it.each(BAD)("%s", (_what, text, line, column, path, fragment) => {
    const e = errorOf(text);
    expect(e.message.split("\n")).toHaveLength(1);
    expect(e.message).toContain(`x.yaml:${line}:${column}: ${path}: ${fragment}`);
    expect(e).toMatchObject({ file: "x.yaml", line, column, path });
    expect(e.message).not.toMatch(/Invalid input|ZodError|\n\s+at /);
  });

  it("reports every problem at once, sorted by position", () => {
    const text = [
      "name: many",
      "hardware: { pcid: 1 }",
      "domains:",
      "  - name: db",
      "    memory: 3MiB",
      "    mode: hvm",
      "    processes:",
      "      - name: p",
      "        kind: compiler",
      "        working_set: 1GB",
      "        fetches: -0.5",
      "        colour: blue",
    ].join("\n");
    const e = errorOf(text, "many.yaml");
    expect(e.message.split("\n")).toEqual([
      "many.yaml:2:19: hardware.pcid: expected true or false, got 1",
      'many.yaml:5:13: domains[0].memory: must be a multiple of 2MiB, got "3MiB"',
      'many.yaml:6:11: domains[0].mode: expected one of native, shadow, hap, pv, got "hvm"',
      'many.yaml:9:15: domains[0].processes[0].kind: expected one of database, build, mmap-churn, trace, got "compiler"',
      'many.yaml:10:22: domains[0].processes[0].working_set: expected a size such as "512MiB" or a number of bytes (units are binary: write "1GiB"), got "1GB"',
      "many.yaml:11:18: domains[0].processes[0].fetches: expected a number between 0 and 1, got -0.5",
      'many.yaml:12:9: domains[0].processes[0].colour: unknown key "colour" (expected one of name, kind, instances, working_set, code, pattern, writes, fetches, child_accesses, jobs, churn_accesses, lifetime, image, image_data, huge_pages, instructions_per_access, cpi, trace, loop)',
    ]);
    expect(e.problems).toHaveLength(7);
    expect(e).toMatchObject({ file: "many.yaml", line: 2, column: 19, path: "hardware.pcid" });
  });

  it("reports YAML syntax errors with their position", () => {
    const e = errorOf(withLine(12, "        pattern: { type: zipf, s: 0.99"));
    expect(e.message).toMatch(/^x\.yaml:13:\d+: YAML syntax error: /);
    expect(e.line).toBe(13);
  });

  it("reports duplicate keys", () => {
    const e = errorOf(withLine(7, "    mode: native\n    mode: hap"));
    expect(e.message).toBe("x.yaml:8:5: YAML syntax error: Map keys must be unique");
  });

  it.each([[""], ["\n\n"], ["# only a comment\n"], ["~\n"]])(
    "rejects the empty file %j",
    (text) => {
      const e = errorOf(text, "empty.yaml");
      expect(e.message).toBe(
        "empty.yaml:1:1: the file is empty; a scenario is a mapping with at least a domains key",
      );
    },
  );

  it.each([
    ["- a\n- b\n", "a list"],
    ["just words\n", '"just words"'],
    ["42\n", "42"],
  ])("rejects the top-level value %j", (text, got) => {
    expect(errorOf(text).message).toBe(
      `x.yaml:1:1: expected a mapping (key: value lines) at the top level, got ${got}`,
    );
  });

  it("rejects unresolved aliases without a stack trace", () => {
    const e = errorOf(withLine(7, "    mode: *m"));
    expect(e.message).toMatch(/^x\.yaml:7:11: YAML /);
  });

  it("is an Error with a name", () => {
    const e = errorOf("");
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("ScenarioError");
  });
});

/** A valid scenario whose vm2 and vm3 merge vm1's keys; line numbers below refer to this text. */
const ANCHORED = [
  "name: anchored", // 1
  "run: { accesses: 1000 }", // 2
  "domains:", // 3
  "  - &vm", // 4
  "    name: vm1", // 5
  "    memory: 256MiB", // 6
  "    mode: shadow", // 7
  "    processes:", // 8
  "      - name: db", // 9
  "        kind: database", // 10
  "        working_set: 64MiB", // 11
  "        writes: 0.25", // 12
  "  - <<: *vm", // 13
  "    name: vm2", // 14
  "    mode: hap", // 15
  "  - { <<: *vm, name: vm3 }", // 16
];

/** The lines of the error text gives, without the file name. */
function problemsOf(text: string): string[] {
  return errorOf(text)
    .message.split("\n")
    .map((line) => line.replace(/^x\.yaml:/, ""));
}

describe("anchors and merge keys", () => {
  it("gives the merging mappings the anchored keys, their own keys winning", () => {
    const s = parseScenario(ANCHORED.join("\n"), "x.yaml");
    expect(s.domains.map((d) => [d.name, d.mode, d.memory])).toEqual([
      ["vm1", "shadow", parseSize("256MiB")],
      ["vm2", "hap", parseSize("256MiB")],
      ["vm3", "shadow", parseSize("256MiB")],
    ]);
    expect(s.domains[2].processes).toEqual(s.domains[0].processes);
  });

  it("reports a mistake in an anchored value where it is written, once per mapping merging it", () => {
    expect(problemsOf(withLine(12, "        writes: 2", ANCHORED))).toEqual(
      [0, 1, 2].map(
        (i) => `12:17: domains[${i}].processes[0].writes: expected a number between 0 and 1, got 2`,
      ),
    );
  });

  it("reports a mistake in a key that overrides a merged one at its own line", () => {
    expect(problemsOf(withLine(15, "    mode: hvm", ANCHORED))).toEqual([
      '15:11: domains[1].mode: expected one of native, shadow, hap, pv, got "hvm"',
    ]);
    expect(problemsOf(withLine(16, "  - { <<: *vm, name: vm3, memory: 3MiB }", ANCHORED))).toEqual([
      '16:35: domains[2].memory: must be a multiple of 2MiB, got "3MiB"',
    ]);
  });

  it.each([
    [7, "    quantun: 5000", "quantun", "quantum"],
    [12, "        writez: 0.25", "processes[0].writez", "writes"],
  ])("reports an unknown key inside the anchor at its line %i", (line, text, path, close) => {
    const key = text.trim().split(":")[0];
    const column = text.indexOf(key) + 1;
    expect(problemsOf(withLine(line, text, ANCHORED))).toEqual(
      [0, 1, 2].map(
        (i) =>
          `${line}:${column}: domains[${i}].${path}: unknown key "${key}" (did you mean "${close}"?)`,
      ),
    );
  });

  it("takes a key from the first of a list of merged mappings that has it", () => {
    const text = [
      "domains:",
      "  - name: d",
      "    memory: 256MiB",
      "    processes:",
      "      - &small { name: p, kind: database, working_set: 1MiB, writes: 7 }",
      "      - &big { name: q, kind: database, working_set: 2MiB, writes: 0.5 }",
      "      - { <<: [*small, *big], name: r }",
    ].join("\n");
    const message = "expected a number between 0 and 1, got 7";
    expect(problemsOf(text)).toEqual([
      `5:70: domains[0].processes[0].writes: ${message}`,
      `5:70: domains[0].processes[2].writes: ${message}`,
    ]);
  });

  it("refuses a merge key that names no mapping, where it is written", () => {
    expect(problemsOf(withLine(16, "  - { <<: 5, name: vm3 }", ANCHORED))).toEqual([
      "16:11: a merge key (<<) takes a mapping, an alias of one or a list of them",
    ]);
  });

  it("reports an alias that names no anchor where it is, after aliases that do", () => {
    expect(problemsOf(withLine(16, "  - { <<: *vn, name: vm3 }", ANCHORED))).toEqual([
      "16:11: YAML error: no anchor &vn before the alias *vn",
    ]);
    expect(problemsOf(withLine(15, "    mode: *hap", ANCHORED))).toEqual([
      "15:11: YAML error: ReferenceError: Unresolved alias (the anchor must be set before the alias): hap",
    ]);
  });

  it.each([["overcommit"], ["overcommit-swap"], ["sharing"], ["balloon-auto"]])(
    "built-in %s gives what it gave written out in full (test/fixtures/expanded)",
    (name) => {
      const expanded = readFileSync(new URL(`fixtures/expanded/${name}.yaml`, import.meta.url));
      expect(BUILTIN_SCENARIOS.find((b) => b.name === name)?.yaml).toMatch(/<<: \*/);
      expect(builtinScenario(name)).toEqual(parseScenario(String(expanded), `${name}.yaml`));
    },
  );
});

describe("loadScenarioFile", () => {
  it("reads a file", () => {
    const dir = mkdtempSync(join(tmpdir(), "memvisor-"));
    const file = join(dir, "db.yaml");
    writeFileSync(file, withLine(1, "description: from disk"));
    const s = loadScenarioFile(file);
    expect(s.name).toBe("db");
    expect(s.description).toBe("from disk");
  });

  it("names the file and the reason when it cannot be read", () => {
    const dir = mkdtempSync(join(tmpdir(), "memvisor-"));
    const missing = join(dir, "missing.yaml");
    expect(() => loadScenarioFile(missing)).toThrow(
      `${missing}: cannot read the file: no such file`,
    );
    expect(() => loadScenarioFile(dir)).toThrow(`${dir}: cannot read the file: is a directory`);
  });

  it("puts the path in validation errors", () => {
    const dir = mkdtempSync(join(tmpdir(), "memvisor-"));
    const file = join(dir, "bad.yaml");
    writeFileSync(file, withLine(7, "    mode: hvm"));
    expect(() => loadScenarioFile(file)).toThrow(`${file}:7:11: domains[0].mode:`);
  });
});

describe("limits: what the schema accepts runs", () => {
  const domain = (i: number, memory: string, mode: string) =>
    `  - { name: d${i}, memory: ${memory}, mode: ${mode}, processes: [{ name: p, kind: database, working_set: 1MiB }] }`;
  const scenario = (domains: string[], host = "") =>
    `${host}run: { accesses: 1000 }\ndomains:\n${domains.join("\n")}\n`;

  it("refuses domains the simulator could not hold in memory, at the domains list", () => {
    const e = errorOf(scenario([domain(1, "512GiB", "pv"), domain(2, "512GiB", "pv")]));
    expect(e.message).toMatch(
      /^x\.yaml:3:3: domains: simulating these domains on this host would take about \d+\.\d+GiB of memory, more than memvisor's 8GiB/,
    );
    // A shadow domain's reverse map grows with the guest memory it maps, not with the host:
    // small shadow domains on a large host fit; large ones past the budget do not.
    const small = Array.from({ length: 8 }, (_, i) => domain(i, "64MiB", "shadow"));
    expect(() =>
      parseScenario(scenario(small, "host: { memory: 1TiB }\n"), "x.yaml"),
    ).not.toThrow();
    const large = Array.from({ length: 2 }, (_, i) => domain(i, "512GiB", "shadow"));
    expect(errorOf(scenario(large)).path).toBe("domains");
    expect(() => parseScenario(scenario([domain(1, "512GiB", "pv")]), "x.yaml")).not.toThrow();
  });

  it("refuses more than 1,000 domains", () => {
    const many = Array.from({ length: 1001 }, (_, i) => domain(i, "4MiB", "native"));
    expect(errorOf(scenario(many)).message).toContain(
      "x.yaml:3:3: domains: expected at most 1000 domains",
    );
  });
});
