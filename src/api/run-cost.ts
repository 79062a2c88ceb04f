/**
 * A rough guess at what a run costs, for a pool to start a batch's dearest runs first (pool.ts):
 * with the cheapest runs last, the threads run out of work close together, where the dearest
 * left to the end keep one thread busy while the others wait. The guess orders runs and does
 * nothing else: a wrong one makes the last thread finish later, never changes a result.
 *
 * It counts what every paging mode does alike: the user accesses the run plans (its warm-up's
 * included), and the 4 KiB pages of the processes' working sets, which a run maps and faults in
 * (a page's first touch takes a fault, a zeroing and page-table writes, and the mapping is made
 * whether or not the run touches all of it). The mode, the cost model and the data caches are
 * not counted: a grid that varies only those leaves the pool its callers' order.
 */

import type { RunTask } from "./run-task.js";

/**
 * What a page of working set weighs against one access. Measured from the per-run wall times
 * (timings.csv) of experiments/jobs-bench.yaml with --jobs 1, shadow-steady at 400,000 accesses
 * with working sets of 4 and 128 MiB: a page cost about as much as 35 accesses under native
 * paging and 55 under hap. The weight matters only between runs that differ in both accesses
 * and working set; a grid over one of them is ordered the same by any weight.
 */
export const PAGE_WEIGHT = 50;

const PAGE = 4096;

/**
 * The guess for one task, in accesses: larger for a dearer run. A task whose scenario it cannot
 * read (a bug in the code that made it) is guessed at 0: the run itself then fails, in that
 * task's own promise, with the error that says what is wrong.
 */
export function estimatedCost(task: RunTask): number {
  let cost: number;
  try {
    const { run, domains } = task.scenario;
    let pages = 0;
    for (const d of domains) {
      for (const p of d.processes) pages += p.instances * Math.ceil(p.workingSet / PAGE);
    }
    cost = run.accesses + run.warmup + PAGE_WEIGHT * pages;
  } catch {
    return 0;
  }
  return Number.isFinite(cost) ? cost : 0;
}

/**
 * The order to take tasks in: the indices of `tasks`, dearest guess first, tasks of equal guess
 * in the order given (the caller's own order then decides between them).
 */
export function takeOrder(tasks: readonly RunTask[]): number[] {
  const cost = tasks.map(estimatedCost);
  return tasks.map((_, i) => i).sort((a, b) => cost[b] - cost[a] || a - b);
}
