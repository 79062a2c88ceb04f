/**
 * What an interrupted command does: remove what it was writing, or stop a run at its next turn
 * and print the report so far.
 */

import { discardPendingOutputs } from "../api/node.js";
import { EXIT_SIGINT, EXIT_SIGTERM } from "./errors.js";
import { writeErr } from "./output.js";

type Signal = "SIGINT" | "SIGTERM";

/** The exit code of a death by the signal, as a shell reports it. */
export function signalCode(signal: Signal): number {
  return signal === "SIGINT" ? EXIT_SIGINT : EXIT_SIGTERM;
}

/**
 * Notes SIGINT and SIGTERM instead of ending the process, for a loop that looks at `signal`
 * between its steps; a second signal ends the process at once (a loop that no longer looks).
 */
export class SignalWatch {
  /** The first signal that came, or null. */
  signal: Signal | null = null;
  private readonly handlers: [Signal, () => void][] = [];

  constructor() {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      const handler = () => {
        if (this.signal !== null) process.exit(signalCode(signal));
        this.signal = signal;
      };
      process.on(signal, handler);
      this.handlers.push([signal, handler]);
    }
  }

  dispose(): void {
    for (const [signal, handler] of this.handlers) process.off(signal, handler);
  }
}

/**
 * Runs `work` with SIGINT and SIGTERM removing what it was writing (and `cleanup`) before the
 * process ends with 130 or 143, as a shell reports a death by those signals.
 */
export async function interruptible<T>(work: () => Promise<T>, cleanup = () => {}): Promise<T> {
  const handlers = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const handler = () => {
      discardPendingOutputs();
      cleanup();
      writeErr(`interrupted (${signal}): nothing written`);
      process.exit(signalCode(signal));
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  try {
    return await work();
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }
}
