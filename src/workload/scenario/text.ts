/**
 * A scenario's text before YAML sees it: its bytes decoded as UTF-8 (with a plain word for
 * UTF-16, binary files and bad bytes), its size and line lengths bounded; and values quoted for
 * messages, short and with no control or bidi characters. No node imports: browsers use it too.
 */

import { SCENARIO_FILE_MAX, SCENARIO_LINE_MAX } from "../../config/limits.js";
import { formatSizeApprox } from "../../config/sizes.js";
import type { ScenarioProblem } from "./problems.js";

/** Characters a terminal acts on: C0 but tab and newline, DEL, C1, bidi controls. */
const CONTROLS =
  "\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069";
const UNSAFE = new RegExp(`[${CONTROLS}]`, "g");
/** The same, and line breaks: what a one-line quotation escapes. */
const UNSAFE_IN_LINE = new RegExp(`[${CONTROLS}\\n\\t\\u2028\\u2029]`, "g");

const asEscape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/** Text with every character a terminal would act on written as \uXXXX (tab, newline kept). */
export function escapeControls(text: string): string {
  return text.replace(UNSAFE, asEscape);
}

/** Characters of a value a message quotes; a longer one is cut, its length said. */
export const QUOTE_MAX = 60;

/** A string as a message shows it: in double quotes, escaped, at most QUOTE_MAX characters. */
export function quote(value: string): string {
  const cut = value.length > QUOTE_MAX ? value.slice(0, QUOTE_MAX) : value;
  const body = cut.replace(/["\\]/g, (c) => `\\${c}`).replace(UNSAFE_IN_LINE, asEscape);
  return value.length > QUOTE_MAX
    ? `"${body}..." (${value.length.toLocaleString("en-US")} characters)`
    : `"${body}"`;
}

/** The 1-based line of `offset` in `bytes` (newlines before it, plus one). */
function lineOfByte(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (bytes[i] === 10) line++;
  return line;
}

/**
 * A scenario file's bytes as text, or the problem: UTF-16 (by its byte-order mark or its NULs),
 * binary (a NUL byte), or a byte sequence that is not UTF-8, each with its line.
 */
export function decodeScenarioBytes(bytes: Uint8Array): string | ScenarioProblem {
  const at = (offset: number, message: string): ScenarioProblem => ({
    path: "",
    line: lineOfByte(bytes, offset),
    column: 1,
    message,
  });
  const utf16 =
    (bytes[0] === 0xff && bytes[1] === 0xfe) ||
    (bytes[0] === 0xfe && bytes[1] === 0xff) ||
    (bytes.length >= 2 && (bytes[0] === 0) !== (bytes[1] === 0));
  if (utf16) {
    return {
      path: "",
      line: 1,
      column: 1,
      message: "the file is UTF-16 text; save it as UTF-8 (a scenario is UTF-8 YAML or JSON)",
    };
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    return at(nul, `a binary file, not a scenario: a NUL byte at byte ${nul}`);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const bad = firstBadUtf8(bytes);
    return at(bad, `not UTF-8 text: byte ${bad} (0x${bytes[bad].toString(16)}) is not UTF-8`);
  }
}

/**
 * Where UTF-8 decoding first fails (the file is known to hold a bad sequence): the shortest
 * prefix a streaming decoder refuses, found by bisection, and the first byte of the sequence
 * its last byte broke.
 */
function firstBadUtf8(bytes: Uint8Array): number {
  const refuses = (length: number) => {
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, length), { stream: true });
      return false;
    } catch {
      return true;
    }
  };
  let lo = 1;
  let hi = bytes.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (refuses(mid)) hi = mid;
    else lo = mid + 1;
  }
  // The refused byte may end a sequence that began up to 3 bytes before: name its first byte.
  let start = lo - 1;
  while (start > 0 && lo - 1 - start < 3 && bytes[start] < 0xc0 && bytes[start - 1] >= 0x80) {
    start--;
  }
  return start;
}

/** What is wrong with a scenario's text as text: too large, binary, a line too long. */
export function textProblem(text: string): ScenarioProblem | null {
  if (text.length > SCENARIO_FILE_MAX) {
    return {
      path: "",
      message: `the file is larger than ${formatSizeApprox(SCENARIO_FILE_MAX)} (${formatSizeApprox(text.length)}): not a scenario`,
    };
  }
  const nul = text.indexOf("\0");
  if (nul >= 0) {
    const line = text.slice(0, nul).split("\n").length;
    return { path: "", line, column: 1, message: "a binary file, not a scenario: a NUL character" };
  }
  let start = 0;
  let line = 1;
  while (start <= text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    if (end - start > SCENARIO_LINE_MAX) {
      return {
        path: "",
        line,
        column: 1,
        message: `a line longer than ${SCENARIO_LINE_MAX.toLocaleString("en-US")} characters (${(end - start).toLocaleString("en-US")}): not a scenario`,
      };
    }
    start = end + 1;
    line++;
  }
  return null;
}
