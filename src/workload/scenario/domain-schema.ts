/** The schema of a domain: its memory and mode, shadow and HAP options, balloon, processes. */

import { z } from "zod";
import { SCENARIO_DEFAULTS } from "../../config/defaults.js";
import { fitProblem } from "../../config/fit.js";
import {
  GUEST_MEMORY_MAX,
  GUEST_MEMORY_MIN,
  MAX_PROCESSES,
  MAX_SCHEDULE,
} from "../../config/limits.js";
import {
  BALLOON_TOUCH_POLICIES,
  PAGING_MODES,
  UNSHADOW_POLICIES,
  WRITABLE_SEARCHES,
} from "../../config/scenario.js";
import { formatSize, KiB, MiB } from "../../config/sizes.js";
import { bool, int, name, size, slice, strict, uniqueNames } from "./fields.js";
import { processSchema } from "./process-schema.js";

const shadowSchema = strict({
  pool: size(4 * KiB).optional(),
  unshadow: z
    .enum(UNSHADOW_POLICIES, { error: `expected one of ${UNSHADOW_POLICIES.join(", ")}` })
    .default("early"),
  // Xen's PREFETCH_DISTANCE 32: the faulting entry and up to 31 after it.
  prefetch: int(0, 511).default(SCENARIO_DEFAULTS.shadowPrefetch),
  writable_search: z
    .enum(WRITABLE_SEARCHES, { error: `expected one of ${WRITABLE_SEARCHES.join(", ")}` })
    .default("rmap"),
  // Xen's out-of-sync L1 shadows, on as Xen 3.3 and later ship them (xl.cfg's oos=1).
  out_of_sync: bool().default(true),
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
    .max(MAX_SCHEDULE, { error: `expected at most ${MAX_SCHEDULE} changes of target` })
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

export const domainSchema = strict({
  name: name(),
  memory: size(2 * MiB, GUEST_MEMORY_MAX, GUEST_MEMORY_MIN),
  mode: z
    .enum(PAGING_MODES, { error: `expected one of ${PAGING_MODES.join(", ")}` })
    .default(SCENARIO_DEFAULTS.mode),
  os_image: name().default(SCENARIO_DEFAULTS.osImage),
  shadow: shadowSchema.prefault({}),
  hap: strict({ large_pages: bool().default(false) }).prefault({}),
  balloon: balloonSchema.prefault({}),
  quantum: slice().prefault(SCENARIO_DEFAULTS.quantum),
  processes: z
    .array(processSchema, { error: "expected a list of processes" })
    .min(1, { error: "expected at least one process" })
    .max(MAX_PROCESSES, { error: `expected at most ${MAX_PROCESSES} processes` }),
}).superRefine((d, ctx) => {
  uniqueNames(d.processes, "processes", "process", ctx);
  if (Number.isFinite(d.memory)) checkBalloon(d.balloon, d.memory, ctx);
  const problem = fitProblem(d.memory, d.processes);
  if (problem !== "") ctx.addIssue({ code: "custom", path: ["processes"], message: problem });
});
