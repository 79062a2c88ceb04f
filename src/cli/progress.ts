/**
 * A progress bar on stderr for long runs. It appears only once a run has lasted `delayMs` of
 * wall time, so short runs (and tests) never draw it; the caller creates it only for a TTY.
 */

import cliProgress from "cli-progress";
import { formatInt } from "./format.js";

/** Wall time before the bar appears. */
export const PROGRESS_DELAY_MS = 1000;

export class LazyProgress {
  private bar: cliProgress.SingleBar | null = null;
  private readonly started: number;

  constructor(
    private readonly total: number,
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream,
    /** What is counted, in the plural: "accesses", "runs". */
    private readonly unit = "accesses",
    private readonly delayMs = PROGRESS_DELAY_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
  }

  /** `done` of `total` units finished. */
  update(done: number): void {
    if (this.bar === null) {
      if (this.now() - this.started < this.delayMs) return;
      this.bar = new cliProgress.SingleBar(
        {
          stream: this.stream,
          format: `${this.label} [{bar}] {percentage}% {done}/{all} ${this.unit}, ETA {eta_formatted}`,
          barsize: 30,
          clearOnComplete: true,
          // Leave the terminal's line wrapping alone: a second Ctrl-C ends the process at once,
          // before anything could turn it back on.
          linewrap: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(this.total, 0, { done: formatInt(0), all: formatInt(this.total) });
    }
    this.bar.update(done, { done: formatInt(done) });
  }

  /** Removes the bar, if it was drawn. */
  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
