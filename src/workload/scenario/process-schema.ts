/** The schema of one process: its kind, its generator fields or its trace, its pattern. */

import { z } from "zod";
import { SCENARIO_DEFAULTS } from "../../config/defaults.js";
import { PATTERN_TYPES, PROCESS_KINDS, type ProcessKind } from "../../config/scenario.js";
import { KiB } from "../../config/sizes.js";
import { bool, fraction, int, name, num, probability, size, strict } from "./fields.js";

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
  "instructions_per_access",
] as const;

export const processSchema = strict({
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
  instructions_per_access: num("a number of instructions greater than 0", (v) => v > 0).optional(),
  cpi: num("a number of cycles per instruction greater than 0", (v) => v > 0).optional(),
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
