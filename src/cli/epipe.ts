/**
 * `memvisor run --json | head` closes the pipe before the report is written. Node reports that
 * as an unhandled EPIPE 'error' event with a stack trace; a command-line tool should just stop.
 */

let installed = false;

/** Makes a closed stdout or stderr end the process quietly. Idempotent. */
export function exitQuietlyOnBrokenPipe(): void {
  if (installed) return;
  installed = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
}
