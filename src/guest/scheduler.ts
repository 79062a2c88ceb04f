/**
 * The guest's round-robin scheduler: runnable processes take turns of a time slice of the
 * guest's own clock. That clock is the guest's work, not the host's cycles: the cycles its
 * processes' instructions take at their base CPI, stalls left out, as QEMU's -icount counts
 * instructions; so the guest schedules the same way in every paging mode, while the host's
 * cycles measure what each mode costs. A switch is a CR3 write (context_switches). Blocked
 * processes (a make waiting for a child) stay out of the queue.
 *
 * The slice is Linux's, or a fixed one (see SliceRule). Linux's figures are for one CPU (the
 * guest has one vCPU), where the scheduler's tunables are not scaled up.
 */

import type { SliceRule } from "../config/scenario.js";
import { DOUBLE_ZERO } from "../hw/double-zero.js";
import type { Kernel } from "./kernel.js";
import type { Process } from "./process.js";

/**
 * CFS (Linux 2.6.23 to 6.5, kernel/sched/fair.c): sysctl_sched_latency 6 ms is the period in
 * which every runnable task runs once, and sysctl_sched_min_granularity 0.75 ms the shortest
 * slice; with more than 6 / 0.75 = 8 tasks the period stretches to 0.75 ms each. Both are
 * multiplied by 1 + log2(CPUs) (at most 8 CPUs counted): by 1 on one CPU.
 */
export const CFS_LATENCY_SECONDS = 6e-3;
export const CFS_MIN_GRANULARITY_SECONDS = 0.75e-3;
/**
 * EEVDF (Linux 6.6 on, kernel/sched/fair.c): sysctl_sched_base_slice, the slice every task asks
 * for, 0.75 ms on one CPU (0.70 ms from Linux 6.15).
 */
export const EEVDF_BASE_SLICE_SECONDS = 0.75e-3;

export class Scheduler {
  private readonly queue: Process[] = [];
  /** The guest's clock (cycles of work) at which the running process's slice ends. */
  sliceEnd = DOUBLE_ZERO;

  /**
   * `rule` gives the slice; `hz` converts Linux's seconds to the guest clock's cycles (the CPU
   * profile's clock).
   */
  constructor(
    private readonly kernel: Kernel,
    readonly rule: SliceRule,
    private readonly hz: number,
  ) {}

  add(proc: Process): void {
    if (proc.alive && !this.queue.includes(proc)) this.queue.push(proc);
  }

  remove(proc: Process): void {
    const i = this.queue.indexOf(proc);
    if (i >= 0) this.queue.splice(i, 1);
  }

  get runnable(): number {
    return this.queue.length;
  }

  /** The slice a process gets, in cycles of the guest's clock, with `n` processes runnable. */
  slice(n: number): number {
    switch (this.rule.type) {
      case "fixed":
        return this.rule.cycles;
      case "eevdf":
        return EEVDF_BASE_SLICE_SECONDS * this.hz;
      default: {
        const period = Math.max(CFS_LATENCY_SECONDS, n * CFS_MIN_GRANULARITY_SECONDS);
        return (period / Math.max(1, n)) * this.hz;
      }
    }
  }

  /**
   * The process to run at guest time `now`: the current one while its slice lasts and it is still
   * runnable, else the next in the queue (loading its address space). Null when none can run.
   */
  pick(now: number): Process | null {
    const cur = this.kernel.current;
    if (cur?.alive && now < this.sliceEnd && this.queue.includes(cur)) return cur;
    if (this.queue.length === 0) return null;
    let next = this.queue[0];
    if (cur !== null && this.queue.length > 1) {
      const i = this.queue.indexOf(cur);
      if (i >= 0) next = this.queue[(i + 1) % this.queue.length];
    }
    this.kernel.switchTo(next);
    this.sliceEnd = now + this.slice(this.queue.length);
    return next;
  }
}
