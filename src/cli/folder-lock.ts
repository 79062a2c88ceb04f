/**
 * One writer per results folder: a file `.memvisor.lock` made with O_EXCL holds the writer's
 * pid. Two experiments appending rows to one folder (a shard started twice by a job scheduler,
 * a run started while another runs) would mix their rows; the second is refused instead. A lock
 * whose process is gone (a kill -9) is stale and taken over. Released when the process exits.
 */

import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "./errors.js";

const LOCK = ".memvisor.lock";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, but is someone else's.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes the folder's lock, or throws UsageError naming the process that holds it. */
export function lockFolder(dir: string): () => void {
  const file = join(dir, LOCK);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, "wx");
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      const release = () => {
        try {
          unlinkSync(file);
        } catch {
          // already gone
        }
        process.off("exit", release);
      };
      process.on("exit", release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const pid = Number(readFileSync(file, "utf8").trim());
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw new UsageError(
        `--out ${dir}: another memvisor (pid ${pid}) is writing its results; wait for it, or name another folder`,
      );
    }
    unlinkSync(file); // stale: its process is gone
  }
  throw new UsageError(
    `--out ${dir}: cannot take its lock (${LOCK}); remove it if no memvisor runs`,
  );
}
