/** The schema of the host: its memory, host swapping, the balloon policy, page sharing. */

import { z } from "zod";
import { MOM_DEFAULTS, SCENARIO_DEFAULTS } from "../../config/defaults.js";
import { HOST_MEMORY_MAX } from "../../config/limits.js";
import { BALLOON_POLICIES, SHARING_ALGORITHMS } from "../../config/scenario.js";
import { formatSize, KiB, MiB } from "../../config/sizes.js";
import { bool, fraction, int, size, strict } from "./fields.js";

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

export const hostSchema = strict({
  memory: size(2 * MiB, HOST_MEMORY_MAX).optional(),
  swap: hostSwapSchema.prefault({}),
  balloon_policy: balloonPolicySchema.default({ type: "fixed" }),
  sharing: sharingSchema.prefault({}),
  contents: bool().default(true),
}).superRefine((h, ctx) => {
  if (!h.contents && h.sharing.enabled) {
    ctx.addIssue({
      code: "custom",
      path: ["contents"],
      message:
        "false turns off the page-contents model, and page sharing (sharing.enabled) merges pages by their contents: turn one of them off",
    });
  }
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
