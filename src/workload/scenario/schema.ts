/**
 * The file form of a scenario: snake_case YAML or JSON, checked by one zod schema (its parts in
 * fields.ts, host-schema.ts, domain-schema.ts and process-schema.ts).
 */

import { z } from "zod";
import { CPU_NAMES, CPU_PROFILES, DEFAULT_CPU } from "../../config/cpu.js";
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

/** A TLB level's geometry; what it leaves out comes from the CPU profile. */
const tlbLevel = strict({
  entries: int(1, 65536).optional(),
  ways: int(1, 65536).optional(),
});

const hardwareSchema = strict({
  cpu: z.enum(CPU_NAMES, { error: `expected one of ${CPU_NAMES.join(", ")}` }).default(DEFAULT_CPU),
  tlb: strict({
    l1: tlbLevel.prefault({}),
    l2: tlbLevel.prefault({}),
  }).prefault({}),
  pcid: bool().default(SCENARIO_DEFAULTS.pcid),
  giga_pages: bool().default(SCENARIO_DEFAULTS.gigaPages),
  walk_caches: strict({
    pwc: bool().optional(),
    ept_pwc: bool().optional(),
    nested_tlb: bool().optional(),
  }).prefault({}),
  data_cache: bool().default(true),
}).superRefine((h, ctx) => {
  // A TLB level's sets must be a power of two, whichever of its numbers the profile gives.
  const profile = CPU_PROFILES[h.cpu];
  for (const key of ["l1", "l2"] as const) {
    const entries = h.tlb[key].entries ?? profile.tlb[key].entries;
    const ways = h.tlb[key].ways ?? profile.tlb[key].ways;
    if (entries % ways !== 0 || ways > entries) {
      ctx.addIssue({
        code: "custom",
        path: ["tlb", key, "ways"],
        message: `must divide entries (${entries})`,
      });
      continue;
    }
    const sets = entries / ways;
    if ((sets & (sets - 1)) !== 0) {
      ctx.addIssue({
        code: "custom",
        path: ["tlb", key, "entries"],
        message: `entries / ways (the number of sets, here ${sets}) must be a power of two`,
      });
    }
  }
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
  may_end_early: bool().default(false),
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
