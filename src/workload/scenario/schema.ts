/**
 * The file form of a scenario: snake_case YAML or JSON, checked by one zod schema (its parts in
 * fields.ts, host-schema.ts, domain-schema.ts and process-schema.ts).
 */

import { z } from "zod";
import { SCENARIO_DEFAULTS } from "../../config/defaults.js";
import {
  COST_MAX,
  MAX_ACCESSES,
  MAX_DOMAINS,
  simulatorMemoryProblem,
} from "../../config/limits.js";
import { COST_EVENTS, type CostEvent } from "../../config/scenario.js";
import { domainSchema } from "./domain-schema.js";
import { bool, int, name, strict, uniqueNames } from "./fields.js";
import { hostSchema } from "./host-schema.js";

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

const cycles = () => int(0, COST_MAX);
const costsSchema = strict(
  Object.fromEntries(COST_EVENTS.map((e) => [e, cycles().optional()])) as Record<
    CostEvent,
    z.ZodOptional<ReturnType<typeof cycles>>
  >,
);

const runSchema = strict({
  accesses: int(1, MAX_ACCESSES).default(SCENARIO_DEFAULTS.accesses),
  sample_every: int(1).default(SCENARIO_DEFAULTS.sampleEvery),
  warmup: int(0, MAX_ACCESSES).default(0),
});

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
    .min(1, { error: "expected at least one domain" })
    .max(MAX_DOMAINS, { error: `expected at most ${MAX_DOMAINS} domains` }),
}).superRefine((s, ctx) => {
  uniqueNames(s.domains, "domains", "domain", ctx);
  const memory = simulatorMemoryProblem(s.domains, s.host.memory ?? 0);
  if (memory !== "") ctx.addIssue({ code: "custom", path: ["domains"], message: memory });
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
