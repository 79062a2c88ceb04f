/**
 * The file form of a scenario: snake_case YAML or JSON, checked by one zod schema.
 * Every message here is written for a person: "expected ..." messages get ", got <value>"
 * appended by the loader (scenario-load.ts), which also adds the file, line, column and path.
 * Sizes are bytes, written as plain integers or strings such as "512MiB" (binary units only).
 */

import { z } from "zod";
import type { BalloonSpec, CostEvent, PagingMode, ProcessKind } from "../api/types.js";
import { COST_EVENTS } from "../metrics/cost.js";
import { MOM_DEFAULTS } from "../vmm/balloon/policy.js";

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

/** Largest unit first, so formatSize picks the shortest exact form. */
const SIZE_UNITS: readonly [string, number][] = [
  ["TiB", TiB],
  ["GiB", GiB],
  ["MiB", MiB],
  ["KiB", KiB],
  ["B", 1],
];

export const SIZE_EXPECTED = 'expected a size such as "512MiB" or a number of bytes';

/** The bytes in `input`, or a message saying why it is not a size. */
export function sizeOrProblem(input: unknown): number | { problem: string } {
  if (typeof input === "number") {
    if (Number.isSafeInteger(input) && input >= 0) return input;
    return { problem: 'expected a whole number of bytes (or a size such as "512MiB")' };
  }
  if (typeof input !== "string") return { problem: SIZE_EXPECTED };
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(input);
  if (!m) return { problem: SIZE_EXPECTED };
  const unitName = m[2] === "" ? "B" : m[2];
  const unit = SIZE_UNITS.find(([name]) => name === unitName);
  if (!unit) {
    const hint = binaryUnitFor(unitName);
    return {
      problem: hint
        ? `${SIZE_EXPECTED} (units are binary: write "${m[1]}${hint}")`
        : `${SIZE_EXPECTED} (units: B, KiB, MiB, GiB, TiB)`,
    };
  }
  const bytes = Number(m[1]) * unit[1];
  if (!Number.isSafeInteger(bytes)) {
    return { problem: 'expected a whole number of bytes (or a size such as "512MiB")' };
  }
  return bytes;
}

/** "GiB" for "G", "GB", "gib" and so on; undefined when the unit is not a near miss. */
function binaryUnitFor(unitName: string): string | undefined {
  const m = /^([kmgt])(?:i?b)?$/i.exec(unitName);
  if (m) return `${m[1].toUpperCase()}iB`;
  if (/^b$/i.test(unitName) || /^bytes?$/i.test(unitName)) return "B";
  return undefined;
}

/** Bytes from a size such as "512MiB", "1.5GiB", "4096" or 4096; throws RangeError otherwise. */
export function parseSize(input: string | number): number {
  const r = sizeOrProblem(input);
  if (typeof r === "number") return r;
  throw new RangeError(`${r.problem}, got ${JSON.stringify(input)}`);
}

/** The shortest exact form: 1073741824 -> "1GiB", 3145728 -> "3MiB", 1000 -> "1000B". */
export function formatSize(bytes: number): string {
  if (!Number.isSafeInteger(bytes)) return formatSizeApprox(bytes);
  if (bytes === 0) return "0B";
  for (const [name, unit] of SIZE_UNITS) {
    if (bytes % unit === 0) return `${bytes / unit}${name}`;
  }
  return `${bytes}B`;
}

/** For messages and reports: at most two decimals, 966367641.6 -> "921.6MiB". */
export function formatSizeApprox(bytes: number): string {
  const abs = Math.abs(bytes);
  for (const [name, unit] of SIZE_UNITS) {
    if (abs >= unit || unit === 1) {
      return `${Number((bytes / unit).toFixed(2))}${name}`;
    }
  }
  return `${bytes}B`;
}

export const PAGING_MODES = ["native", "shadow", "hap", "pv"] as const satisfies PagingMode[];
export const PROCESS_KINDS = [
  "database",
  "build",
  "mmap-churn",
  "trace",
] as const satisfies ProcessKind[];
export const PATTERN_TYPES = ["sequential", "uniform", "hotcold", "zipf", "stride"] as const;
export { COST_EVENTS };

// Compile-time checks that the lists above name every member of their unions.
type Missing<U, L extends readonly unknown[]> = Exclude<U, L[number]>;
const allModes: [Missing<PagingMode, typeof PAGING_MODES>] extends [never] ? true : never = true;
const allKinds: [Missing<ProcessKind, typeof PROCESS_KINDS>] extends [never] ? true : never = true;
void [allModes, allKinds];

/** Defaults for every optional field of the file form. */
export const SCENARIO_DEFAULTS = {
  description: "",
  seed: 1,
  tlbL1: { entries: 64, ways: 4 },
  tlbL2: { entries: 1536, ways: 12 },
  pcid: false,
  gigaPages: false,
  accesses: 1_000_000,
  sampleEvery: 1_000_000,
  mode: "native" as PagingMode,
  quantum: 5_000,
  instances: 1,
  code: MiB,
  writes: 0.25,
  fetches: 0.1,
  childAccesses: 20_000,
  jobs: 2,
  churnAccesses: 5_000,
  hugePages: false,
  /** Balloon retry delays in domain cycles: Xen's 1 s doubling to 32 s, scaled to short runs. */
  balloonRetryDelay: 1_000_000,
  balloonMaxRetryDelay: 32_000_000,
  /** Cycles of its own a ballooning domain may stay above its target before the host swaps. */
  swapGrace: 20_000_000,
  /** Host cycles between two runs of the automatic balloon policy. */
  policyInterval: 5_000_000,
  osImage: "linux",
  /** KSM's pages_to_scan default; its 20 ms sleep scaled to the runs' length in cycles. */
  pagesToScan: 100,
  sharingSleep: 200_000,
} as const;

/** The balloon settings of a domain that says nothing of its balloon: a driver, no target. */
export function defaultBalloon(memory: number): BalloonSpec {
  return {
    driver: true,
    target: memory,
    floor: 0,
    touch: "populate",
    schedule: [],
    retryDelay: SCENARIO_DEFAULTS.balloonRetryDelay,
    maxRetryDelay: SCENARIO_DEFAULTS.balloonMaxRetryDelay,
  };
}

/** A domain's processes may use at most this fraction of its memory (the rest is the kernel's). */
export const MEMORY_FIT_FRACTION = 0.9;
export const MAX_DOMAIN_MEMORY = TiB;

/** Marks an unknown-key message; the loader turns it into one problem per key. */
export const ALLOWED_KEYS_MARK = "allowed keys: ";

/** A strict mapping: unknown keys are errors that list the keys it allows. */
function strict<T extends z.ZodRawShape>(shape: T) {
  const keys = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === "unrecognized_keys" ? `${ALLOWED_KEYS_MARK}${keys}` : "expected a mapping",
  });
}

function int(lo: number, hi = Number.MAX_SAFE_INTEGER) {
  const expected =
    hi === Number.MAX_SAFE_INTEGER
      ? `expected an integer >= ${lo}`
      : `expected an integer from ${lo} to ${hi}`;
  return z
    .number({ error: expected })
    .refine((v) => Number.isSafeInteger(v) && v >= lo && v <= hi, { error: expected });
}

function num(expected: string, ok: (v: number) => boolean) {
  return z.number({ error: `expected ${expected}` }).refine(ok, { error: `expected ${expected}` });
}

const fraction = () => num("a number between 0 and 1", (v) => v >= 0 && v <= 1);
const probability = () => num("a number greater than 0 and at most 1", (v) => v > 0 && v <= 1);
const bool = () => z.boolean({ error: "expected true or false" });
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const name = () =>
  z
    .string({ error: "expected a name" })
    .regex(NAME_RE, { error: 'expected a name of letters, digits, ".", "_" or "-"' })
    .max(64, { error: "expected a name of at most 64 characters" });

/** A size in bytes: a positive multiple of `multiple`, at most `max`. */
function size(multiple: number, max = Number.MAX_SAFE_INTEGER) {
  return z.union([z.number(), z.string()], { error: SIZE_EXPECTED }).transform((input, ctx) => {
    const bytes = sizeOrProblem(input);
    const fail = (message: string) => {
      ctx.addIssue({ code: "custom", message, input });
      return z.NEVER;
    };
    if (typeof bytes !== "number") return fail(bytes.problem);
    if (bytes === 0) return fail("must be greater than 0");
    if (bytes % multiple !== 0) return fail(`must be a multiple of ${formatSize(multiple)}`);
    if (bytes > max) return fail(`must be at most ${formatSize(max)}`);
    return bytes;
  });
}

const tlbLevel = (def: { entries: number; ways: number }) =>
  strict({
    entries: int(1, 65536).default(def.entries),
    ways: int(1, 65536).default(def.ways),
  }).superRefine((level, ctx) => {
    if (level.entries % level.ways !== 0 || level.ways > level.entries) {
      ctx.addIssue({
        code: "custom",
        path: ["ways"],
        message: `must divide entries (${level.entries})`,
      });
      return;
    }
    const sets = level.entries / level.ways;
    if ((sets & (sets - 1)) !== 0) {
      ctx.addIssue({
        code: "custom",
        path: ["entries"],
        message: `entries / ways (the number of sets, here ${sets}) must be a power of two`,
      });
    }
  });

const hardwareSchema = strict({
  tlb: strict({
    l1: tlbLevel(SCENARIO_DEFAULTS.tlbL1).prefault({}),
    l2: tlbLevel(SCENARIO_DEFAULTS.tlbL2).prefault({}),
  }).prefault({}),
  pcid: bool().default(SCENARIO_DEFAULTS.pcid),
  giga_pages: bool().default(SCENARIO_DEFAULTS.gigaPages),
  walk_caches: strict({
    pwc: bool().default(false),
    ept_pwc: bool().default(false),
    nested_tlb: bool().default(false),
  }).prefault({}),
});

const cycles = () => num("a number of cycles >= 0", (v) => v >= 0);
const costsSchema = strict(
  Object.fromEntries(COST_EVENTS.map((e) => [e, cycles().optional()])) as Record<
    CostEvent,
    z.ZodOptional<ReturnType<typeof cycles>>
  >,
);

const runSchema = strict({
  accesses: int(1).default(SCENARIO_DEFAULTS.accesses),
  sample_every: int(1).default(SCENARIO_DEFAULTS.sampleEvery),
  warmup: int(0).default(0),
});

const patternSchema = z.discriminatedUnion(
  "type",
  [
    strict({ type: z.literal("sequential") }),
    strict({ type: z.literal("uniform") }),
    strict({
      type: z.literal("hotcold"),
      hot_fraction: probability(),
      hot_probability: probability(),
    }),
    strict({ type: z.literal("zipf"), s: num("a number greater than 0", (v) => v > 0) }),
    strict({ type: z.literal("stride"), stride: int(1) }),
  ],
  {
    // zod types this issue as a union issue, but a non-mapping input raises invalid_type.
    error: (iss) =>
      (iss.code as string) === "invalid_type"
        ? "expected a mapping such as { type: zipf, s: 0.99 }"
        : `expected one of ${PATTERN_TYPES.join(", ")}`,
  },
);

/** Fields that only one kind of process reads, so setting them elsewhere is a mistake. */
const KIND_ONLY_FIELDS: Record<string, ProcessKind> = {
  child_accesses: "build",
  jobs: "build",
  churn_accesses: "mmap-churn",
  lifetime: "database",
  trace: "trace",
  loop: "trace",
};

/** Fields of the generated workloads: a trace process's accesses come from its trace. */
const GENERATOR_FIELDS = [
  "working_set",
  "code",
  "pattern",
  "writes",
  "fetches",
  "image_data",
  "huge_pages",
] as const;

const processSchema = strict({
  name: name(),
  kind: z.enum(PROCESS_KINDS, { error: `expected one of ${PROCESS_KINDS.join(", ")}` }),
  instances: int(1, 64).default(SCENARIO_DEFAULTS.instances),
  // Optional here (a trace process has none of them); toScenario fills in the defaults.
  working_set: size(4 * KiB).optional(),
  code: size(4 * KiB).optional(),
  pattern: patternSchema.optional(),
  writes: fraction().optional(),
  fetches: fraction().optional(),
  child_accesses: int(1).optional(),
  jobs: int(1, 64).optional(),
  churn_accesses: int(1).optional(),
  lifetime: int(0).optional(),
  image: name().optional(),
  image_data: fraction().optional(),
  huge_pages: bool().optional(),
  trace: z
    .string({ error: "expected the path of a trace file" })
    .min(1, { error: "expected the path of a trace file" })
    .optional(),
  loop: bool().optional(),
}).superRefine((p, ctx) => {
  for (const [field, kind] of Object.entries(KIND_ONLY_FIELDS)) {
    if (p[field as keyof typeof p] !== undefined && p.kind !== kind) {
      ctx.addIssue({
        code: "custom",
        path: [field],
        message: `applies only to ${kind} processes, and this one is a ${p.kind}`,
      });
    }
  }
  if (p.kind === "trace") {
    if (p.trace === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["trace"],
        message: 'missing required key "trace" (the file a trace process replays)',
      });
    }
    for (const field of GENERATOR_FIELDS) {
      if (p[field] !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: [field],
          message: "does not apply to trace processes: the trace says what the process touches",
        });
      }
    }
  } else if (p.working_set === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["working_set"],
      message: `missing required key "working_set" (the memory a ${p.kind} process touches)`,
    });
  }
});

export type ProcessFile = z.output<typeof processSchema>;

/**
 * Bytes a process needs at its peak: every instance's heap and code (a build: every job's).
 * A trace process's need is known once its trace is read (`traceBytes`, else 0).
 */
/** What a process's footprint depends on (the file form's names). */
export type FootprintInput = Pick<
  ProcessFile,
  "name" | "kind" | "instances" | "working_set" | "code" | "jobs"
>;

export function processFootprint(p: FootprintInput, traceBytes = 0): number {
  if (p.kind === "trace") return p.instances * traceBytes;
  const code = p.code ?? SCENARIO_DEFAULTS.code;
  const each = (p.working_set ?? 0) + code;
  if (p.kind === "build") {
    const jobs = p.jobs ?? SCENARIO_DEFAULTS.jobs;
    return p.instances * (jobs * each + code);
  }
  return p.instances * each;
}

export const UNSHADOW_POLICIES = ["early", "flood", "none"] as const;
export const WRITABLE_SEARCHES = ["rmap", "bruteforce"] as const;

const shadowSchema = strict({
  pool: size(4 * KiB).optional(),
  unshadow: z
    .enum(UNSHADOW_POLICIES, { error: `expected one of ${UNSHADOW_POLICIES.join(", ")}` })
    .default("early"),
  prefetch: int(0, 511).default(0),
  writable_search: z
    .enum(WRITABLE_SEARCHES, { error: `expected one of ${WRITABLE_SEARCHES.join(", ")}` })
    .default("rmap"),
});

const hostSwapSchema = strict({
  enabled: bool().default(false),
  low_water: size(4 * KiB).optional(),
  high_water: size(4 * KiB).optional(),
  grace: int(0).default(SCENARIO_DEFAULTS.swapGrace),
}).superRefine((w, ctx) => {
  if (w.low_water !== undefined && w.high_water !== undefined && w.high_water < w.low_water) {
    ctx.addIssue({
      code: "custom",
      path: ["high_water"],
      message: `must be at least low_water (${formatSize(w.low_water)})`,
    });
  }
});

export const BALLOON_POLICIES = ["fixed", "auto"] as const;

const balloonPolicySchema = z.discriminatedUnion(
  "type",
  [
    strict({ type: z.literal("fixed") }),
    strict({
      type: z.literal("auto"),
      interval: int(1).default(SCENARIO_DEFAULTS.policyInterval),
      pressure_threshold: fraction().default(MOM_DEFAULTS.pressureThreshold),
      pressure_critical: fraction().default(MOM_DEFAULTS.pressureCritical),
      min_guest_free: fraction().default(MOM_DEFAULTS.minGuestFree),
      max_change: fraction().default(MOM_DEFAULTS.maxChange),
      min_change: fraction().default(MOM_DEFAULTS.minChange),
    }).superRefine((a, ctx) => {
      if (a.pressure_critical > a.pressure_threshold) {
        ctx.addIssue({
          code: "custom",
          path: ["pressure_critical"],
          message: `must be at most pressure_threshold (${a.pressure_threshold})`,
        });
      }
    }),
  ],
  {
    error: (iss) =>
      (iss.code as string) === "invalid_type"
        ? "expected a mapping such as { type: auto }"
        : `expected one of ${BALLOON_POLICIES.join(", ")}`,
  },
);

export const SHARING_ALGORITHMS = ["ksm", "esx"] as const;

const sharingSchema = strict({
  enabled: bool().default(false),
  algorithm: z
    .enum(SHARING_ALGORITHMS, { error: `expected one of ${SHARING_ALGORITHMS.join(", ")}` })
    .default("ksm"),
  pages_to_scan: int(1).default(SCENARIO_DEFAULTS.pagesToScan),
  sleep: int(1).default(SCENARIO_DEFAULTS.sharingSleep),
  use_zero_pages: bool().default(false),
});

const hostSchema = strict({
  memory: size(2 * MiB).optional(),
  swap: hostSwapSchema.prefault({}),
  balloon_policy: balloonPolicySchema.default({ type: "fixed" }),
  sharing: sharingSchema.prefault({}),
}).superRefine((h, ctx) => {
  const memory = h.memory;
  if (memory === undefined) return;
  for (const key of ["low_water", "high_water"] as const) {
    const bytes = h.swap[key];
    if (bytes !== undefined && bytes > memory) {
      ctx.addIssue({
        code: "custom",
        path: ["swap", key],
        message: `must be at most the host's memory (${formatSize(memory)}), got ${formatSize(bytes)}`,
      });
    }
  }
});

export const BALLOON_TOUCH_POLICIES = ["populate", "mmio"] as const;

const balloonSchema = strict({
  driver: bool().default(true),
  target: size(4 * KiB).optional(),
  floor: size(4 * KiB).optional(),
  on_touch: z
    .enum(BALLOON_TOUCH_POLICIES, {
      error: `expected one of ${BALLOON_TOUCH_POLICIES.join(", ")}`,
    })
    .default("populate"),
  retry_delay: int(1).default(SCENARIO_DEFAULTS.balloonRetryDelay),
  max_retry_delay: int(1).default(SCENARIO_DEFAULTS.balloonMaxRetryDelay),
  schedule: z
    .array(strict({ at: int(0), target: size(4 * KiB) }), {
      error: "expected a list of { at, target }",
    })
    .default([]),
});

/** The balloon's sizes must fit the domain's memory, and its schedule must go forward. */
function checkBalloon(
  b: z.output<typeof balloonSchema>,
  memory: number,
  ctx: z.RefinementCtx,
): void {
  const atMost = (path: (string | number)[], bytes: number | undefined) => {
    if (bytes !== undefined && bytes > memory) {
      ctx.addIssue({
        code: "custom",
        path: ["balloon", ...path],
        message: `must be at most the domain's memory (${formatSize(memory)}), got ${formatSize(bytes)}`,
      });
    }
  };
  atMost(["target"], b.target);
  atMost(["floor"], b.floor);
  const target = b.target ?? memory;
  if (b.floor !== undefined && b.floor <= memory && b.floor > target) {
    ctx.addIssue({
      code: "custom",
      path: ["balloon", "floor"],
      message: `must be at most the balloon's target (${formatSize(target)}), got ${formatSize(b.floor)}`,
    });
  }
  b.schedule.forEach((step, i) => {
    atMost(["schedule", i, "target"], step.target);
    if (i > 0 && step.at < b.schedule[i - 1].at) {
      ctx.addIssue({
        code: "custom",
        path: ["balloon", "schedule", i, "at"],
        message: `must not be before the previous change (at ${b.schedule[i - 1].at})`,
      });
    }
  });
  if (b.max_retry_delay < b.retry_delay) {
    ctx.addIssue({
      code: "custom",
      path: ["balloon", "max_retry_delay"],
      message: `must be at least retry_delay (${b.retry_delay})`,
    });
  }
}

const domainSchema = strict({
  name: name(),
  memory: size(2 * MiB, MAX_DOMAIN_MEMORY),
  mode: z
    .enum(PAGING_MODES, { error: `expected one of ${PAGING_MODES.join(", ")}` })
    .default(SCENARIO_DEFAULTS.mode),
  os_image: name().default(SCENARIO_DEFAULTS.osImage),
  shadow: shadowSchema.prefault({}),
  hap: strict({ large_pages: bool().default(false) }).prefault({}),
  balloon: balloonSchema.prefault({}),
  quantum: int(1).default(SCENARIO_DEFAULTS.quantum),
  processes: z
    .array(processSchema, { error: "expected a list of processes" })
    .min(1, { error: "expected at least one process" }),
}).superRefine((d, ctx) => {
  uniqueNames(d.processes, "processes", "process", ctx);
  if (Number.isFinite(d.memory)) checkBalloon(d.balloon, d.memory, ctx);
  const problem = fitProblem(d.memory, d.processes);
  if (problem !== "") ctx.addIssue({ code: "custom", path: ["processes"], message: problem });
});

/**
 * Why a domain of `memory` bytes cannot hold its processes, or "". traceBytes gives the pages
 * of each trace process's trace (by index) once the traces are read.
 */
export function fitProblem(
  memory: number,
  processes: readonly FootprintInput[],
  traceBytes: readonly number[] = [],
): string {
  const footprints = processes.map((p, i) => processFootprint(p, traceBytes[i] ?? 0));
  if (!footprints.every(Number.isFinite) || !Number.isFinite(memory)) return "";
  const need = footprints.reduce((a, b) => a + b, 0);
  const limit = memory * MEMORY_FIT_FRACTION;
  if (need <= limit) return "";
  const parts = processes.map((p, i) => `${p.name} ${formatSizeApprox(footprints[i])}`).join(", ");
  return (
    `the processes need ${formatSizeApprox(need)} (${parts}), more than ` +
    `${MEMORY_FIT_FRACTION * 100}% of the domain's ${formatSizeApprox(memory)} of memory ` +
    `(${formatSizeApprox(limit)}); give the domain more memory or the processes less`
  );
}

function uniqueNames(
  items: { name: string }[],
  listKey: string,
  what: string,
  ctx: z.RefinementCtx,
): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const first = seen.get(item.name);
    if (first === undefined) {
      seen.set(item.name, i);
      return;
    }
    ctx.addIssue({
      code: "custom",
      path: [listKey, i, "name"],
      message: `the ${what} name "${item.name}" is already used by ${listKey}[${first}]`,
    });
  });
}

export const scenarioFileSchema = strict({
  name: name().optional(),
  description: z.string({ error: "expected a text string" }).default(SCENARIO_DEFAULTS.description),
  seed: int(0, 0xffff_ffff).default(SCENARIO_DEFAULTS.seed),
  hardware: hardwareSchema.prefault({}),
  host: hostSchema.prefault({}),
  costs: costsSchema.prefault({}),
  run: runSchema.prefault({}),
  domains: z
    .array(domainSchema, { error: "expected a list of domains" })
    .min(1, { error: "expected at least one domain" }),
}).superRefine((s, ctx) => {
  uniqueNames(s.domains, "domains", "domain", ctx);
  if (s.host.balloon_policy.type !== "fixed") {
    s.domains.forEach((d, i) => {
      if (d.balloon.schedule.length > 0) {
        ctx.addIssue({
          code: "custom",
          path: ["domains", i, "balloon", "schedule"],
          message: `applies only to host.balloon_policy type fixed, and this host's is ${s.host.balloon_policy.type}`,
        });
      }
    });
  }
});

/** A scenario file after validation: snake_case, sizes in bytes, defaults filled in. */
export type ScenarioFile = z.output<typeof scenarioFileSchema>;
