/**
 * Everything the CLI prints goes through here: text with the characters a terminal would act on
 * escaped (a scenario's description or file name may hold them), JSON with the ones
 * JSON.stringify leaves (DEL, C1, bidi controls) escaped too, and a failed write to stdout or
 * stderr (a full disk, a closed pipe, a closed descriptor) reported with exit code 74, where
 * Node would print a stack trace or the run would end with 0.
 */

import { escapeControls } from "../api/index.js";
import { EXIT_IO } from "./errors.js";

/** What JSON.stringify leaves unescaped that a terminal acts on (only ever inside strings). */
const JSON_UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Prints text on stdout, escaped. */
export function writeOut(text: string): void {
  process.stdout.write(escapeControls(text));
}

/** Prints a message on stderr, escaped: "memvisor: " and the text. */
export function writeErr(text: string): void {
  process.stderr.write(escapeControls(`memvisor: ${text}\n`));
}

/** Prints a value as indented JSON on stdout. */
export function writeJson(value: unknown): void {
  const json = JSON.stringify(value, null, 2).replace(
    JSON_UNSAFE,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  process.stdout.write(`${json}\n`);
}

const WRITE_REASONS: Record<string, string> = {
  EPIPE: "the reading end of the pipe was closed",
  ENOSPC: "no space left on the device",
  EDQUOT: "the disk quota is exceeded",
  EBADF: "it is closed",
  EIO: "an input/output error",
  EFBIG: "the file is too large",
};

/** Why writing failed, in words (the error code's, else Node's message). */
export function writeReason(e: NodeJS.ErrnoException): string {
  return WRITE_REASONS[e.code ?? ""] ?? e.message;
}

let installed = false;

/** Makes a failed write to stdout or stderr end the process with 74 and a message. Idempotent. */
export function exitOnOutputError(): void {
  if (installed) return;
  installed = true;
  const streams = [
    [process.stdout, "standard output"],
    [process.stderr, "standard error"],
  ] as const;
  for (const [stream, name] of streams) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (stream === process.stdout) {
        try {
          process.stderr.write(`memvisor: cannot write to ${name}: ${writeReason(e)}\n`);
        } catch {
          // stderr is gone too: the exit code is all that is left.
        }
      }
      process.exit(EXIT_IO);
    });
  }
}
