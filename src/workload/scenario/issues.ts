/**
 * zod's issues as human messages: the schema's own message with ", got <value>" appended, a
 * "missing required key", or one "unknown key" problem per key with the closest allowed key.
 */

import type { Document } from "yaml";
import type { z } from "zod";
import { ALLOWED_KEYS_MARK } from "./fields.js";
import { offsetAt, type Pos } from "./positions.js";
import { formatPath, type ScenarioProblem, type Segment } from "./problems.js";
import { quote } from "./text.js";

/** One zod issue as one or more human messages. */
export function issueProblems(
  issue: z.core.$ZodIssue,
  data: unknown,
  doc: Document,
  pos: Pos,
): ScenarioProblem[] {
  if (issue.code === "unrecognized_keys") {
    const allowed = allowedKeys(issue.message);
    return issue.keys.map((key) => {
      const path = [...issue.path, key];
      const close = allowed.length > 0 ? closest(key, allowed) : undefined;
      const hint =
        close !== undefined
          ? ` (did you mean "${close}"?)`
          : allowed.length > 0
            ? ` (expected one of ${allowed.join(", ")})`
            : "";
      return {
        path: formatPath(path),
        ...pos(offsetAt(doc, path, "key")),
        message: `unknown key ${quote(key)}${hint}`,
      };
    });
  }
  const at = valueAt(data, issue.path);
  const path = formatPath(issue.path);
  const where = pos(offsetAt(doc, issue.path, "value"));
  let message = humanMessage(issue);
  if (!at.found) {
    const last = issue.path[issue.path.length - 1];
    const absent = issue.code === "invalid_type" || issue.code === "invalid_union";
    if (absent && at.depth === issue.path.length - 1 && isPlainMapping(at.deepest)) {
      message = `missing required key "${String(last)}"`;
    } else if (isScalarValue(at.deepest)) {
      message = withGot(message, at.deepest);
    }
  } else if (isScalarValue(at.value)) {
    message = withGot(message, at.value);
  }
  return [{ path, ...where, message }];
}

export function isPlainMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** How a value reads in a message: strings quoted, containers named. */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return "an empty value";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return quote(v);
  return String(v);
}

/** The value at path in data: found, or the deepest value reached on the way. */
function valueAt(data: unknown, path: readonly Segment[]) {
  let cur: unknown = data;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (Array.isArray(cur) && typeof seg === "number" && seg < cur.length) cur = cur[seg];
    else if (isPlainMapping(cur) && Object.hasOwn(cur, String(seg))) cur = cur[String(seg)];
    else return { found: false as const, deepest: cur, depth: i };
  }
  return { found: true as const, value: cur };
}

function isScalarValue(v: unknown): boolean {
  return v === null || (typeof v !== "object" && v !== undefined);
}

function withGot(message: string, value: unknown): string {
  if (!/^(expected|must) /.test(message) || message.includes(", got ")) return message;
  const hint =
    typeof value === "string" && /number|integer/.test(message) && /^[\d_.,]+$/.test(value)
      ? " (write digits only, without quotes, underscores or commas)"
      : "";
  return `${message}, got ${describe(value)}${hint}`;
}

const NOUNS: Record<string, string> = {
  object: "a mapping",
  array: "a list",
  string: "a string",
  number: "a number",
  boolean: "true or false",
};

/** The schema's own message, or a plain one for the few zod defaults it does not override. */
function humanMessage(issue: z.core.$ZodIssue): string {
  if (!issue.message.startsWith("Invalid") && !issue.message.startsWith("Too ")) {
    return issue.message;
  }
  switch (issue.code) {
    case "invalid_type":
      return `expected ${NOUNS[issue.expected] ?? issue.expected}`;
    case "invalid_value":
      return `expected one of ${issue.values.map((v) => String(v)).join(", ")}`;
    case "invalid_union":
      return "expected a value of another form";
    default:
      return issue.message.toLowerCase();
  }
}

function allowedKeys(message: string): string[] {
  const i = message.indexOf(ALLOWED_KEYS_MARK);
  if (i < 0) return [];
  return message
    .slice(i + ALLOWED_KEYS_MARK.length)
    .split(",")
    .map((k) => k.trim())
    .filter((k) => k !== "");
}

/** The allowed key nearest to a misspelt one, if it is near enough to be the likely intent. */
function closest(key: string, allowed: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of allowed) {
    const d = editDistance(key.toLowerCase().replace(/-/g, "_"), candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur.push(Math.min(sub, prev[j] + 1, cur[j - 1] + 1));
    }
    prev = cur;
  }
  return prev[b.length];
}
