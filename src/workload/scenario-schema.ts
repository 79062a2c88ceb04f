/**
 * The file form of a scenario: snake_case YAML or JSON, checked by one zod schema.
 * Every message here is written for a person: "expected ..." messages get ", got <value>"
 * appended by the loader (scenario-load.ts), which also adds the file, line, column and path.
 * Sizes are bytes, written as plain integers or strings such as "512MiB" (binary units only).
 */

import { z } from "zod";
import { MAX_DOMAIN_MEMORY, MOM_DEFAULTS, SCENARIO_DEFAULTS } from "../config/defaults.js";
import { fitProblem } from "../config/fit.js";
import {
  BALLOON_POLICIES,
  BALLOON_TOUCH_POLICIES,
  COST_EVENTS,
  type CostEvent,
  PAGING_MODES,
  PATTERN_TYPES,
  PROCESS_KINDS,
  type ProcessKind,
  SHARING_ALGORITHMS,
  UNSHADOW_POLICIES,
  WRITABLE_SEARCHES,
} from "../config/scenario.js";
import { formatSize, KiB, MiB, SIZE_EXPECTED, sizeOrProblem } from "../config/sizes.js";

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
