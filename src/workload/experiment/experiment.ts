/** An experiment as the engine runs it: its grid's settings, and one scenario per grid point. */

import type { PagingMode, Scenario } from "../../config/scenario.js";
import type { Segment } from "../scenario/problems.js";

/** A value of a grid setting, as written in the experiment file. */
export type GridValue = number | string | boolean;

export interface GridSetting {
  /** The key as written in the file: a path such as domains[*].memory, or domain_count. */
  key: string;
  /** Its steps into the scenario's data; null for domain_count. */
  path: Segment[] | null;
  values: GridValue[];
}

export interface PlotSpec {
  /** A grid setting's key: the x axis. */
  x: string;
  /** A numeric column of the results table: the y axis. */
  y: string;
  title: string;
  logX: boolean;
}

export interface Experiment {
  name: string;
  description: string;
  /** The experiment file's name, as given. */
  file: string;
  /** The base scenario's name. */
  scenario: string;
  /** The modes every point runs under; null: each domain in the scenario's own mode. */
  modes: PagingMode[] | null;
  seeds: number[];
  grid: GridSetting[];
  plots: PlotSpec[];
  /** One scenario per combination of the grid's values, in grid order (see gridCombos). */
  scenarios: Scenario[];
}

/** One run: a combination of grid values under a mode and a seed. */
export interface ExperimentPoint {
  /** Its place in the whole experiment's order: combinations, then modes, then seeds. */
  index: number;
  /** Which of experiment.scenarios. */
  combo: number;
  /** The grid's values, one per setting. */
  values: GridValue[];
  mode: PagingMode | null;
  seed: number;
}

/** Every combination of the settings' values; the first setting varies slowest. */
export function gridCombos(grid: readonly GridSetting[]): GridValue[][] {
  let combos: GridValue[][] = [[]];
  for (const setting of grid) {
    combos = combos.flatMap((c) => setting.values.map((v) => [...c, v]));
  }
  return combos;
}

/** Every run of the experiment in its order: combinations, then modes, then seeds. */
export function experimentPoints(e: Experiment): ExperimentPoint[] {
  const points: ExperimentPoint[] = [];
  const modes = e.modes ?? [null];
  gridCombos(e.grid).forEach((values, combo) => {
    for (const mode of modes) {
      for (const seed of e.seeds) points.push({ index: points.length, combo, values, mode, seed });
    }
  });
  return points;
}
