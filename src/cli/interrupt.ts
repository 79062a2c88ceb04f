/** What an interrupted command does with what it was writing. */

import { discardPendingOutputs } from "../api/node.js";
import { writeErr } from "./output.js";

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
      process.exit(signal === "SIGINT" ? 130 : 143);
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
