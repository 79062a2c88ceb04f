/**
 * The guest's round-robin scheduler: runnable processes take turns of one quantum of the guest's
 * own clock, which counts the steps its processes make (accesses and system calls), as QEMU's
 * -icount does: so the guest schedules the same way in every paging mode. A switch is a CR3 write
 * (context_switches). Blocked processes (a make waiting for a child) stay out of the queue.
 */

import type { Kernel } from "./kernel.js";
import type { Process } from "./process.js";

export class Scheduler {
  private readonly queue: Process[] = [];
  /** The guest's clock (its steps) at which the running process's quantum ends. */
  sliceEnd = 0;

  constructor(
    private readonly kernel: Kernel,
    readonly quantum: number,
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

  /**
   * The process to run at guest time `now`: the current one while its quantum lasts and it is still
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
    this.sliceEnd = now + this.quantum;
    return next;
  }
}
