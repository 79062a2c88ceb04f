/**
 * The file form of an experiment: a base scenario, the modes and seeds to run it with, and a grid
 * of scenario settings (each by its path, with the values to try). Every point of the grid runs
 * under every mode and seed.
 */

import { z } from "zod";
import { MAX_ACCESSES } from "../../config/limits.js";
import { PAGING_MODES } from "../../config/scenario.js";
import { int, name, strict } from "../scenario/fields.js";

/** Runs an experiment may have (grid points x modes x seeds): a typo of a zero is an error. */
export const EXPERIMENT_MAX_RUNS = 10_000;

/** Values of one grid setting. */
export const GRID_MAX_VALUES = 100;

/** The metrics a plot may put on its y axis: any numeric column of the results table. */
const plotSchema = strict({
  x: z.string({ error: "expected a grid setting's path" }),
  y: z.string({ error: "expected a column of the results table" }).default("cycles_per_access"),
  title: z.string({ error: "expected a text string" }).optional(),
  log_x: z.boolean({ error: "expected true or false" }).default(false),
});

export const experimentFileSchema = strict({
  name: name().optional(),
  description: z.string({ error: "expected a text string" }).default(""),
  scenario: z
    .string({ error: "expected a built-in scenario's name or a scenario file's path" })
    .min(1, { error: "expected a built-in scenario's name or a scenario file's path" }),
  modes: z
    .array(z.enum(PAGING_MODES, { error: `expected one of ${PAGING_MODES.join(", ")}` }), {
      error: `expected a list of paging modes (${PAGING_MODES.join(", ")})`,
    })
    .min(1, { error: "expected at least one mode" })
    .refine((m) => new Set(m).size === m.length, { error: "a mode is listed twice" })
    .optional(),
  seeds: z
    .array(int(0, 0xffff_ffff), { error: "expected a list of seeds" })
    .min(1, { error: "expected at least one seed" })
    .refine((s) => new Set(s).size === s.length, { error: "a seed is listed twice" })
    .optional(),
  accesses: int(1, MAX_ACCESSES).optional(),
  set: z
    .record(z.string(), z.union([z.number(), z.string(), z.boolean()]), {
      error: "expected a mapping of setting paths to values (numbers, sizes, true or false, names)",
    })
    .default({}),
  grid: z
    .record(
      z.string(),
      z
        .array(z.union([z.number(), z.string(), z.boolean()]), {
          error: "expected a list of values (numbers, sizes such as 4MiB, true or false, names)",
        })
        .min(1, { error: "expected at least one value" })
        .max(GRID_MAX_VALUES, { error: `expected at most ${GRID_MAX_VALUES} values` }),
      { error: "expected a mapping of setting paths to lists of values" },
    )
    .default({}),
  plots: z.array(plotSchema, { error: "expected a list of plots" }).default([]),
});

/** An experiment file after validation (values of the grid still as written). */
export type ExperimentFile = z.output<typeof experimentFileSchema>;
export type PlotFile = ExperimentFile["plots"][number];
