/**
 * Fuzzing: valid inputs mutated at random, and what comes out is a run or a clear error, never
 * an internal error, a stack trace or an exception of the wrong kind. Three families: scenario
 * texts (the built-ins, mutated a few edits at a time, then run briefly when they parse), trace
 * files (memvisor's format and lackey's, gzip-compressed or not, bytes mutated) and argument
 * lists for the CLI. `npm test` runs a few hundred cases; `npm run fuzz` runs FUZZ_RUNS times
 * more (FUZZ_RUNS=100 is some 10^5 cases), with a seed printed so a failure can be replayed
 * (FUZZ_SEED).
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { SimulationError } from "../src/api/domain.js";
import { Simulation } from "../src/api/simulation.js";
import { BUILTIN_SCENARIOS } from "../src/workload/scenario/builtin.js";
import { parseScenario } from "../src/workload/scenario/parse.js";
import { ScenarioError } from "../src/workload/scenario/problems.js";
import { readTrace } from "../src/workload/trace/file.js";
import { traceHeader } from "../src/workload/trace/format.js";
import { TraceError } from "../src/workload/trace/lackey.js";
import { cli } from "./support/cli.js";

/** How many times the suite's case counts `npm run fuzz` runs. */
const SCALE = Math.max(1, Number(process.env.FUZZ_RUNS ?? 1));
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const params = (numRuns: number) => ({ numRuns: numRuns * SCALE, ...(SEED ? { seed: SEED } : {}) });

const tmp = mkdtempSync(join(tmpdir(), "memvisor-fuzz-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Scenario texts.

/** Values a careless or hostile edit puts in place of a number or a word. */
const ODD_VALUES = [
  "0",
  "-1",
  "1",
  "0.5",
  "2147483648",
  "9007199254740993",
  "1e308",
  ".inf",
  ".nan",
  "NaN",
  "1e9",
  "999999999999",
  "true",
  "null",
  "~",
  "[]",
  "{}",
  "''",
  '"x"',
  "512GiB",
  "1TiB",
  "4KiB",
  "3ms",
  "cfs",
  "hap",
  "&a",
  "*a",
  "<<: *a",
];

type Edit =
  | { op: "value"; at: number; value: string }
  | { op: "delete" | "duplicate" | "indent" | "outdent"; at: number }
  | { op: "swap"; at: number; with: number }
  | { op: "insert"; at: number; text: string }
  | { op: "truncate"; at: number };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({
    op: fc.constant("value" as const),
    at: fc.nat(),
    value: fc.constantFrom(...ODD_VALUES),
  }),
  fc.record({
    op: fc.constantFrom(
      "delete" as const,
      "duplicate" as const,
      "indent" as const,
      "outdent" as const,
    ),
    at: fc.nat(),
  }),
  fc.record({ op: fc.constant("swap" as const), at: fc.nat(), with: fc.nat() }),
  fc.record({
    op: fc.constant("insert" as const),
    at: fc.nat(),
    text: fc.string({ unit: "binary", maxLength: 12 }),
  }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
);

/** The scalar tokens of a line that an edit may replace: numbers, sizes, words after a colon. */
const SCALAR = /(?<=:\s*|\[\s*|,\s*)[\w.+-]+/g;

function applyEdit(text: string, e: Edit): string {
  const lines = text.split("\n");
  const i = e.at % lines.length;
  switch (e.op) {
    case "value": {
      const tokens = [...lines[i].matchAll(SCALAR)];
      if (tokens.length === 0) return text;
      const t = tokens[e.at % tokens.length];
      const index = t.index ?? 0;
      lines[i] = lines[i].slice(0, index) + e.value + lines[i].slice(index + t[0].length);
      break;
    }
    case "delete":
      lines.splice(i, 1);
      break;
    case "duplicate":
      lines.splice(i, 0, lines[i]);
      break;
    case "indent":
      lines[i] = `  ${lines[i]}`;
      break;
    case "outdent":
      lines[i] = lines[i].replace(/^ {1,2}/, "");
      break;
    case "swap": {
      const j = e.with % lines.length;
      [lines[i], lines[j]] = [lines[j], lines[i]];
      break;
    }
    case "insert": {
      const at = e.at % (text.length + 1);
      return text.slice(0, at) + e.text + text.slice(at);
    }
    default:
      return text.slice(0, e.at % (text.length + 1));
  }
  return lines.join("\n");
}

/** Runs are kept to sizes a test can afford; the limits tests cover the largest. */
const RUN_BUDGET_BYTES = 2 * 2 ** 30;

describe("fuzzing scenario texts", () => {
  it(
    "a mutated built-in parses and runs, or is refused with a ScenarioError or SimulationError",
    () => {
      const texts = BUILTIN_SCENARIOS.map((b) => b.yaml);
      fc.assert(
        fc.property(
          fc.constantFrom(...texts.keys()),
          fc.array(edit, { minLength: 1, maxLength: 4 }),
          fc.constantFrom("fuzz.yaml", "fuzz.json"),
          (which, edits, file) => {
            const text = edits.reduce(applyEdit, texts[which]);
            let scenario: ReturnType<typeof parseScenario>;
            try {
              scenario = parseScenario(text, file);
            } catch (e) {
              if (!(e instanceof ScenarioError)) throw e;
              expect(e.message.length).toBeLessThan(20_000);
              return;
            }
            const memory = scenario.domains.reduce((sum, d) => sum + d.memory, 0);
            if (memory > RUN_BUDGET_BYTES || (scenario.host.memory ?? 0) > RUN_BUDGET_BYTES) return;
            try {
              new Simulation(scenario, { accesses: 400 }).run();
            } catch (e) {
              if (!(e instanceof SimulationError)) throw e;
            }
          },
        ),
        params(150),
      );
    },
    120_000 * SCALE,
  );
});

// Trace files.

const KINDS = ["I ", " L", " S", " M"];

const lackeyLine = fc
  .tuple(fc.nat(3), fc.bigInt({ min: 0n, max: (1n << 47n) - 1n }), fc.integer({ min: 1, max: 64 }))
  .map(([k, addr, size]) => `${KINDS[k]} ${addr.toString(16).padStart(8, "0")},${size}`);

/** A valid trace file's bytes: lackey text (with its banner) or memvisor's binary format. */
const traceBytes = fc.oneof(
  fc
    .array(lackeyLine, { minLength: 1, maxLength: 40 })
    .map((lines) =>
      new TextEncoder().encode(`==1== Lackey, an example Valgrind tool\n${lines.join("\n")}\n`),
    ),
  fc
    .array(fc.tuple(fc.nat(0x7fffffff), fc.nat(0x7fff), fc.nat(2)), { minLength: 1, maxLength: 40 })
    .map((records) => {
      const words = new Uint32Array(records.length * 2);
      records.forEach(([lo, hi, kind], i) => {
        words[2 * i] = lo;
        words[2 * i + 1] = (hi | (kind << 16) | (7 << 20)) >>> 0;
      });
      const bytes = new Uint8Array(16 + words.byteLength);
      bytes.set(traceHeader(records.length));
      bytes.set(new Uint8Array(words.buffer), 16);
      return bytes;
    }),
);

type ByteEdit = { at: number; op: "flip" | "delete" | "truncate" | "insert"; byte: number };
const byteEdit: fc.Arbitrary<ByteEdit> = fc.record({
  at: fc.nat(),
  op: fc.constantFrom("flip" as const, "delete" as const, "truncate" as const, "insert" as const),
  byte: fc.nat(255),
});

function applyByteEdit(bytes: Uint8Array, e: ByteEdit): Uint8Array {
  const at = e.at % (bytes.length + 1);
  switch (e.op) {
    case "flip": {
      const out = bytes.slice();
      if (at < out.length) out[at] ^= e.byte || 1;
      return out;
    }
    case "delete":
      return Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at + 1)]);
    case "truncate":
      return bytes.subarray(0, at);
    default:
      return Uint8Array.from([...bytes.subarray(0, at), e.byte, ...bytes.subarray(at)]);
  }
}

describe("fuzzing trace files", () => {
  it(
    "a mutated trace, gzip-compressed or not, reads or is refused with a TraceError",
    () => {
      let n = 0;
      fc.assert(
        fc.property(
          traceBytes,
          fc.array(byteEdit, { maxLength: 4 }),
          fc.boolean(),
          fc.boolean(),
          (bytes, edits, gzip, editAfterGzip) => {
            let data = editAfterGzip ? bytes : edits.reduce(applyByteEdit, bytes);
            if (gzip) data = gzipSync(data);
            if (editAfterGzip) data = edits.reduce(applyByteEdit, data);
            const path = join(tmp, `t${n++}`);
            writeFileSync(path, data);
            try {
              const trace = readTrace(path);
              expect(trace.count).toBeGreaterThan(0);
            } catch (e) {
              if (!(e instanceof TraceError)) throw e;
              expect(e.message).toContain(path);
            } finally {
              rmSync(path, { force: true });
            }
          },
        ),
        params(300),
      );
    },
    120_000 * SCALE,
  );
});

// Argument lists.

/**
 * Words a command line is made of. `ui` (a server), `trace record` (valgrind) and `validate`
 * (tens of seconds a run) are left out: each has its own tests.
 */
const WORDS = [
  "run",
  "compare",
  "sweep",
  "scenarios",
  "trace",
  "info",
  "import",
  "help",
  "database",
  "fork-storm",
  "two-domains",
  "sharing",
  "nonexistent",
  "/dev/zero",
  "/",
  "--mode",
  "native",
  "shadow",
  "hap",
  "pv",
  "--modes",
  "native,hap",
  "shadow,shadow",
  "",
  "--vary",
  "child_accesses=100,200",
  "working_set=1MiB",
  "nope=1",
  "--domains",
  "2",
  "0",
  "-1",
  "17",
  "--seed",
  "4294967296",
  "x",
  "--check",
  "--json",
  "--from",
  "--format",
  "csv",
  "stats",
  "--quick",
  "-o",
  "--force",
  "--skip-bad",
  "--version",
  "--help",
  "--bogus",
];

describe("fuzzing the command line", () => {
  it(
    "any argument list ends in a result or a clear error: never an internal error or a stack",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.constantFrom(...WORDS), { maxLength: 6 }),
          fc.constantFrom("1", "300", "0", "-5", "x"),
          async (words, accesses) => {
            // Every list carries a small --accesses, so that a run that starts ends quickly.
            const argv = [...words, "--accesses", accesses];
            const r = await cli(...argv);
            expect(r.code, `${argv.join(" ")}: ${r.stderr}`).not.toBe(70);
            expect(r.stderr, argv.join(" ")).not.toMatch(/\n\s+at .+:\d+:\d+/);
          },
        ),
        params(60),
      );
    },
    120_000 * SCALE,
  );
});
