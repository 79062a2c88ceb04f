/**
 * Scenario text (YAML or JSON, which is YAML) to a typed Scenario, with errors that name the
 * file, line, column and path of every problem. No node imports: this file runs in browsers too
 * (scenario-file.ts reads files from disk).
 */

import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  type Node as YamlNode,
} from "yaml";
import type { z } from "zod";
import { SCENARIO_DEFAULTS } from "../config/defaults.js";
import { fitProblem } from "../config/fit.js";
import type { Scenario } from "../config/scenario.js";
import type { Trace } from "../config/trace.js";
import { ALLOWED_KEYS_MARK, type ScenarioFile, scenarioFileSchema } from "./scenario-schema.js";
import { traceLayout, traceProblem } from "./trace/layout.js";

export { formatSize, formatSizeApprox, parseSize } from "../config/sizes.js";

/** One thing wrong with a scenario file. line and column are 1-based, when known. */
export interface ScenarioProblem {
  /** Where in the scenario, e.g. "domains[0].processes[1].working_set"; "" for the whole file. */
  path: string;
  line?: number;
  column?: number;
  message: string;
}

/** A scenario that cannot be read or is not valid. The message has one line per problem. */
export class ScenarioError extends Error {
  override readonly name = "ScenarioError";
  readonly file: string;
  /** The first problem's path, line and column. */
  readonly path: string;
  readonly line: number | undefined;
  readonly column: number | undefined;
  /** Every problem, sorted by position. */
  readonly problems: readonly ScenarioProblem[];

  constructor(file: string, problems: ScenarioProblem[]) {
    const sorted = sortProblems(problems);
    super(sorted.map((p) => formatProblem(file, p)).join("\n"));
    this.file = file;
    this.problems = sorted;
    this.path = sorted[0]?.path ?? "";
    this.line = sorted[0]?.line;
    this.column = sorted[0]?.column;
  }
}

/** FILE:LINE:COL: PATH: MESSAGE, leaving out the parts that are unknown or empty. */
export function formatProblem(file: string, p: ScenarioProblem): string {
  const where = p.line === undefined ? file : `${file}:${p.line}:${p.column ?? 1}`;
  return p.path === "" ? `${where}: ${p.message}` : `${where}: ${p.path}: ${p.message}`;
}

function sortProblems(problems: ScenarioProblem[]): ScenarioProblem[] {
  const key = (p: ScenarioProblem) => [p.line ?? Infinity, p.column ?? 0];
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => {
      const [la, ca] = key(a.p);
      const [lb, cb] = key(b.p);
      return la - lb || ca - cb || a.i - b.i;
    })
    .map(({ p }) => p);
}

/** How parseScenario reads the trace files that trace processes name. */
export interface ParseOptions {
  /**
   * Reads a trace file (a path already resolved against baseDir); throws to refuse it. Node:
   * readTrace in memvisor/node. Without it, trace processes' data stays null.
   */
  loadTrace?: (path: string) => Trace;
  /** The folder relative trace paths start from (default: the scenario file's folder). */
  baseDir?: string;
}

/**
 * Parses and validates a scenario. fileName is used in messages, as the default name and for
 * the folder relative trace paths start from. Throws ScenarioError listing every problem found.
 */
export function parseScenario(
  text: string,
  fileName: string,
  options: ParseOptions = {},
): Scenario {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text.replace(/^\uFEFF/, ""), { lineCounter, uniqueKeys: true });
  const pos = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };

  if (doc.errors.length > 0) {
    throw new ScenarioError(
      fileName,
      doc.errors.map((e) => ({
        path: "",
        ...(e.linePos ? { line: e.linePos[0].line, column: e.linePos[0].col } : pos(e.pos[0])),
        message: `YAML syntax error: ${firstLine(e.message)}`,
      })),
    );
  }
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) {
    throw new ScenarioError(fileName, [
      {
        path: "",
        line: 1,
        column: 1,
        message: "the file is empty; a scenario is a mapping with at least a domains key",
      },
    ]);
  }
  const keyProblems: ScenarioProblem[] = [];
  visit(doc, {
    Pair(_, pair) {
      if (pair.key !== null && !isScalar(pair.key)) {
        const node = pair.key as YamlNode;
        keyProblems.push({
          path: "",
          ...pos(node.range?.[0] ?? 0),
          message: "a key must be a plain name, not a list or mapping",
        });
      }
    },
  });
  if (keyProblems.length > 0) throw new ScenarioError(fileName, keyProblems);

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    throw new ScenarioError(fileName, [
      { path: "", ...pos(firstAliasOffset(doc)), message: `YAML error: ${firstLine(String(e))}` },
    ]);
  }
  if (!isPlainMapping(data)) {
    throw new ScenarioError(fileName, [
      {
        path: "",
        ...pos(root.range?.[0] ?? 0),
        message: `expected a mapping (key: value lines) at the top level, got ${describe(data)}`,
      },
    ]);
  }

  const result = scenarioFileSchema.safeParse(data);
  if (!result.success) {
    const problems = result.error.issues.flatMap((issue) => issueProblems(issue, data, doc, pos));
    throw new ScenarioError(fileName, problems);
  }
  const scenario = toScenario(result.data, fileName);
  if (options.loadTrace) {
    const baseDir = options.baseDir ?? dirName(fileName);
    const problems = readTraces(scenario, result.data, options.loadTrace, baseDir).map((p) => ({
      path: formatPath(p.path),
      ...pos(offsetAt(doc, p.path, "value")),
      message: p.message,
    }));
    if (problems.length > 0) throw new ScenarioError(fileName, problems);
  }
  return scenario;
}

/** "dir/sub/file.yaml" -> "dir/sub"; "file.yaml" -> "". */
function dirName(fileName: string): string {
  const cut = Math.max(fileName.lastIndexOf("/"), fileName.lastIndexOf("\\"));
  return cut < 0 ? "" : fileName.slice(0, cut);
}

/** `file` as read from `baseDir`: absolute paths stay as they are. */
export function resolveTracePath(file: string, baseDir: string): string {
  if (baseDir === "" || file.startsWith("/") || /^[A-Za-z]:[\\/]/.test(file)) return file;
  return `${baseDir}/${file}`;
}

/**
 * Reads the trace of every trace process into its spec (one read per file), then checks that
 * each domain holds what its traces touch. Returns the problems, by path in the file.
 */
function readTraces(
  scenario: Scenario,
  file: ScenarioFile,
  loadTrace: (path: string) => Trace,
  baseDir: string,
): { path: Segment[]; message: string }[] {
  const problems: { path: Segment[]; message: string }[] = [];
  const read = new Map<string, Trace | string>();
  scenario.domains.forEach((domain, i) => {
    const traceBytes: number[] = [];
    domain.processes.forEach((spec, j) => {
      if (spec.trace === null) return;
      const path = resolveTracePath(spec.trace.file, baseDir);
      let got = read.get(path);
      if (got === undefined) {
        try {
          got = loadTrace(path);
          const problem = traceProblem(got);
          if (problem !== "") got = `${path}: ${problem}`;
        } catch (e) {
          got = e instanceof Error ? e.message : String(e);
        }
        read.set(path, got);
      }
      if (typeof got === "string") {
        problems.push({
          path: ["domains", i, "processes", j, "trace"],
          message: `cannot replay this trace: ${got}`,
        });
        return;
      }
      spec.trace.data = got;
      spec.workingSet = traceLayout(got).pages * 4096;
      traceBytes[j] = spec.workingSet;
    });
    const fit = fitProblem(domain.memory, file.domains[i].processes, traceBytes);
    if (fit !== "") problems.push({ path: ["domains", i, "processes"], message: fit });
  });
  return problems;
}

function firstLine(message: string): string {
  return message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
}

function firstAliasOffset(doc: Document): number {
  let offset = 0;
  visit(doc, {
    Alias(_, node) {
      offset = node.range?.[0] ?? 0;
      return visit.BREAK;
    },
  });
  return offset;
}

function isPlainMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** How a value reads in a message: strings quoted, containers named. */
function describe(v: unknown): string {
  if (v === null || v === undefined) return "an empty value";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return JSON.stringify(v);
  return String(v);
}

type Segment = PropertyKey;

export function formatPath(path: readonly Segment[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(String(seg)))
      out += out === "" ? String(seg) : `.${String(seg)}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

/** The value at path in data: found, or the deepest value reached on the way. */
function valueAt(data: unknown, path: readonly Segment[]) {
  let cur: unknown = data;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (Array.isArray(cur) && typeof seg === "number" && seg < cur.length) cur = cur[seg];
    else if (isPlainMapping(cur) && Object.hasOwn(cur, String(seg))) cur = cur[String(seg)];
    else return { found: false as const, deepest: cur, depth: i };
  }
  return { found: true as const, value: cur };
}

/**
 * The source offset for path: the value's node (or the key's, when `at` is "key"); for a path
 * that does not exist, the deepest node that does.
 */
function offsetAt(doc: Document, path: readonly Segment[], at: "value" | "key"): number {
  let node: unknown = doc.contents;
  let offset = (doc.contents as YamlNode | null)?.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) return offset;
      const keyOffset = (pair.key as YamlNode).range?.[0] ?? offset;
      node = pair.value;
      const valueOffset = (node as YamlNode | null)?.range?.[0];
      offset = at === "key" && i === path.length - 1 ? keyOffset : (valueOffset ?? keyOffset);
    } else if (isSeq(node) && typeof seg === "number" && seg < node.items.length) {
      node = node.items[seg];
      offset = (node as YamlNode | null)?.range?.[0] ?? offset;
    } else {
      return offset;
    }
  }
  return offset;
}

type Pos = (offset: number) => { line: number; column: number };

/** One zod issue as one or more human messages. */
function issueProblems(
  issue: z.core.$ZodIssue,
  data: unknown,
  doc: Document,
  pos: Pos,
): ScenarioProblem[] {
  if (issue.code === "unrecognized_keys") {
    const allowed = allowedKeys(issue.message);
    return issue.keys.map((key) => {
      const path = [...issue.path, key];
      const close = allowed.length > 0 ? closest(key, allowed) : undefined;
      const hint =
        close !== undefined
          ? ` (did you mean "${close}"?)`
          : allowed.length > 0
            ? ` (expected one of ${allowed.join(", ")})`
            : "";
      return {
        path: formatPath(path),
        ...pos(offsetAt(doc, path, "key")),
        message: `unknown key "${key}"${hint}`,
      };
    });
  }
  const at = valueAt(data, issue.path);
  const path = formatPath(issue.path);
  const where = pos(offsetAt(doc, issue.path, "value"));
  let message = humanMessage(issue);
  if (!at.found) {
    const last = issue.path[issue.path.length - 1];
    const absent = issue.code === "invalid_type" || issue.code === "invalid_union";
    if (absent && at.depth === issue.path.length - 1 && isPlainMapping(at.deepest)) {
      message = `missing required key "${String(last)}"`;
    } else if (isScalarValue(at.deepest)) {
      message = withGot(message, at.deepest);
    }
  } else if (isScalarValue(at.value)) {
    message = withGot(message, at.value);
  }
  return [{ path, ...where, message }];
}

function isScalarValue(v: unknown): boolean {
  return v === null || (typeof v !== "object" && v !== undefined);
}

function withGot(message: string, value: unknown): string {
  if (!/^(expected|must) /.test(message) || message.includes(", got ")) return message;
  const hint =
    typeof value === "string" && /number|integer/.test(message) && /^[\d_.,]+$/.test(value)
      ? " (write digits only, without quotes, underscores or commas)"
      : "";
  return `${message}, got ${describe(value)}${hint}`;
}

const NOUNS: Record<string, string> = {
  object: "a mapping",
  array: "a list",
  string: "a string",
  number: "a number",
  boolean: "true or false",
};

/** The schema's own message, or a plain one for the few zod defaults it does not override. */
function humanMessage(issue: z.core.$ZodIssue): string {
  if (!issue.message.startsWith("Invalid") && !issue.message.startsWith("Too ")) {
    return issue.message;
  }
  switch (issue.code) {
    case "invalid_type":
      return `expected ${NOUNS[issue.expected] ?? issue.expected}`;
    case "invalid_value":
      return `expected one of ${issue.values.map((v) => String(v)).join(", ")}`;
    case "invalid_union":
      return "expected a value of another form";
    default:
      return issue.message.toLowerCase();
  }
}

function allowedKeys(message: string): string[] {
  const i = message.indexOf(ALLOWED_KEYS_MARK);
  if (i < 0) return [];
  return message
    .slice(i + ALLOWED_KEYS_MARK.length)
    .split(",")
    .map((k) => k.trim())
    .filter((k) => k !== "");
}

/** The allowed key nearest to a misspelt one, if it is near enough to be the likely intent. */
function closest(key: string, allowed: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of allowed) {
    const d = editDistance(key.toLowerCase().replace(/-/g, "_"), candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur.push(Math.min(sub, prev[j] + 1, cur[j - 1] + 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** "dir/db-and-build.yaml" -> "db-and-build". */
function baseName(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() ?? fileName;
  return base.replace(/\.(ya?ml|json)$/i, "") || "scenario";
}

function toPattern(p: NonNullable<ScenarioFile["domains"][0]["processes"][0]["pattern"]>) {
  return p.type === "hotcold"
    ? ({ type: "hotcold", hotFraction: p.hot_fraction, hotProbability: p.hot_probability } as const)
    : { ...p };
}

/** The validated file form to the typed Scenario (camelCase, every default filled in). */
function toScenario(f: ScenarioFile, fileName: string): Scenario {
  const d = SCENARIO_DEFAULTS;
  return {
    name: f.name ?? baseName(fileName),
    description: f.description,
    seed: f.seed,
    hardware: {
      tlb: {
        l1: { entries: f.hardware.tlb.l1.entries, ways: f.hardware.tlb.l1.ways },
        l2: { entries: f.hardware.tlb.l2.entries, ways: f.hardware.tlb.l2.ways },
      },
      pcid: f.hardware.pcid,
      gigaPages: f.hardware.giga_pages,
      walkCaches: {
        pwc: f.hardware.walk_caches.pwc,
        eptPwc: f.hardware.walk_caches.ept_pwc,
        nestedTlb: f.hardware.walk_caches.nested_tlb,
      },
    },
    host: {
      memory: f.host.memory ?? 0,
      swap: {
        enabled: f.host.swap.enabled,
        lowWater: f.host.swap.low_water ?? 0,
        highWater: f.host.swap.high_water ?? 0,
        grace: f.host.swap.grace,
      },
      balloonPolicy:
        f.host.balloon_policy.type === "fixed"
          ? { type: "fixed" }
          : {
              type: "auto",
              interval: f.host.balloon_policy.interval,
              pressureThreshold: f.host.balloon_policy.pressure_threshold,
              pressureCritical: f.host.balloon_policy.pressure_critical,
              minGuestFree: f.host.balloon_policy.min_guest_free,
              maxChange: f.host.balloon_policy.max_change,
              minChange: f.host.balloon_policy.min_change,
            },
      sharing: {
        enabled: f.host.sharing.enabled,
        algorithm: f.host.sharing.algorithm,
        pagesToScan: f.host.sharing.pages_to_scan,
        sleep: f.host.sharing.sleep,
        useZeroPages: f.host.sharing.use_zero_pages,
      },
    },
    costs: Object.fromEntries(Object.entries(f.costs).filter(([, v]) => v !== undefined)),
    run: { accesses: f.run.accesses, sampleEvery: f.run.sample_every, warmup: f.run.warmup },
    domains: f.domains.map((dom) => ({
      name: dom.name,
      memory: dom.memory,
      mode: dom.mode,
      osImage: dom.os_image,
      shadow: {
        pool: dom.shadow.pool ?? 0,
        unshadow: dom.shadow.unshadow,
        prefetch: dom.shadow.prefetch,
        writableSearch: dom.shadow.writable_search,
      },
      hap: { largePages: dom.hap.large_pages },
      balloon: {
        driver: dom.balloon.driver,
        target: dom.balloon.target ?? dom.memory,
        floor: dom.balloon.floor ?? 0,
        touch: dom.balloon.on_touch,
        schedule: dom.balloon.schedule.map((step) => ({ at: step.at, target: step.target })),
        retryDelay: dom.balloon.retry_delay,
        maxRetryDelay: dom.balloon.max_retry_delay,
      },
      quantum: dom.quantum,
      processes: dom.processes.map((p) => ({
        name: p.name,
        kind: p.kind,
        instances: p.instances,
        // A trace process's working set is what its trace touches (set when the trace is read).
        workingSet: p.working_set ?? 0,
        code: p.kind === "trace" ? 0 : (p.code ?? d.code),
        pattern: toPattern(p.pattern ?? { type: "uniform" }),
        writes: p.writes ?? d.writes,
        fetches: p.fetches ?? d.fetches,
        childAccesses: p.child_accesses ?? d.childAccesses,
        jobs: p.jobs ?? d.jobs,
        churnAccesses: p.churn_accesses ?? d.churnAccesses,
        lifetime: p.lifetime ?? 0,
        image: p.image ?? p.name,
        imageData: p.image_data ?? 0,
        hugePages: p.huge_pages ?? d.hugePages,
        trace: p.trace === undefined ? null : { file: p.trace, loop: p.loop ?? false, data: null },
      })),
    })),
  };
}
