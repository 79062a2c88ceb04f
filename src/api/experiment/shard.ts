/**
 * Sharing an experiment's runs between machines: shard I of N (0 <= I < N) takes the runs whose
 * index is I modulo N, so every shard gets a like mix of the grid (its small and its large
 * points) and the shards together take every run once. Merging puts the rows back in the
 * experiment's order, which is the order a single machine writes them in.
 */

import type { ExperimentPoint } from "../../workload/experiment/experiment.js";

export interface Shard {
  index: number;
  count: number;
}

/** The whole experiment as one shard. */
export const WHOLE: Shard = { index: 0, count: 1 };

/** "I/N" to a shard, or a problem in words. */
export function parseShard(text: string): Shard | string {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const expected = `expected I/N with 0 <= I < N, such as 0/4 (a Kubernetes JOB_COMPLETION_INDEX or a Slurm array index from 0), got "${text}"`;
  if (m === null) return expected;
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > 10_000 || index >= count) return expected;
  return { index, count };
}

/** The shard's runs, in order. */
export function shardPoints(points: readonly ExperimentPoint[], shard: Shard): ExperimentPoint[] {
  return points.filter((p) => p.index % shard.count === shard.index);
}
