/**
 * The field builders every part of the scenario schema is made of: strict mappings, integers,
 * fractions, names, sizes, unique names. Every message is written for a person: "expected ..."
 * messages get ", got <value>" appended by issues.ts, which also adds the file, line, column
 * and path. Sizes are bytes, written as plain integers or strings such as "512MiB" (binary
 * units only).
 */

import { z } from "zod";
import { formatSize, SIZE_EXPECTED, sizeOrProblem } from "../../config/sizes.js";

/** Marks an unknown-key message; the loader turns it into one problem per key. */
export const ALLOWED_KEYS_MARK = "allowed keys: ";

/** A strict mapping: unknown keys are errors that list the keys it allows. */
export function strict<T extends z.ZodRawShape>(shape: T) {
  const keys = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === "unrecognized_keys" ? `${ALLOWED_KEYS_MARK}${keys}` : "expected a mapping",
  });
}

export function int(lo: number, hi = Number.MAX_SAFE_INTEGER) {
  const expected =
    hi === Number.MAX_SAFE_INTEGER
      ? `expected an integer >= ${lo}`
      : `expected an integer from ${lo} to ${hi}`;
  return z
    .number({ error: expected })
    .refine((v) => Number.isSafeInteger(v) && v >= lo && v <= hi, { error: expected });
}

export function num(expected: string, ok: (v: number) => boolean) {
  return z.number({ error: `expected ${expected}` }).refine(ok, { error: `expected ${expected}` });
}

export const fraction = () => num("a number between 0 and 1", (v) => v >= 0 && v <= 1);
export const probability = () =>
  num("a number greater than 0 and at most 1", (v) => v > 0 && v <= 1);
export const bool = () => z.boolean({ error: "expected true or false" });
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
export const name = () =>
  z
    .string({ error: "expected a name" })
    .regex(NAME_RE, { error: 'expected a name of letters, digits, ".", "_" or "-"' })
    .max(64, { error: "expected a name of at most 64 characters" });

/** A size in bytes: a positive multiple of `multiple`, from `min` to `max`. */
export function size(multiple: number, max = Number.MAX_SAFE_INTEGER, min = 1) {
  return z.union([z.number(), z.string()], { error: SIZE_EXPECTED }).transform((input, ctx) => {
    const bytes = sizeOrProblem(input);
    const fail = (message: string) => {
      ctx.addIssue({ code: "custom", message, input });
      return z.NEVER;
    };
    if (typeof bytes !== "number") return fail(bytes.problem);
    if (bytes === 0) return fail("must be greater than 0");
    if (bytes % multiple !== 0) return fail(`must be a multiple of ${formatSize(multiple)}`);
    if (bytes > max) return fail(`must be at most ${formatSize(max)}`);
    if (bytes < min) return fail(`must be at least ${formatSize(min)}`);
    return bytes;
  });
}

/** Each item of a list must have a name of its own. */
export function uniqueNames(
  items: { name: string }[],
  listKey: string,
  what: string,
  ctx: z.RefinementCtx,
): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const first = seen.get(item.name);
    if (first === undefined) {
      seen.set(item.name, i);
      return;
    }
    ctx.addIssue({
      code: "custom",
      path: [listKey, i, "name"],
      message: `the ${what} name "${item.name}" is already used by ${listKey}[${first}]`,
    });
  });
}

/** A time slice as written: Linux's rule by name, a duration, or cycles of the guest's clock. */
export type SliceInput =
  | { type: "cfs" }
  | { type: "eevdf" }
  | { type: "seconds"; value: number }
  | { type: "cycles"; value: number };

const SLICE_EXPECTED =
  'expected cfs, eevdf, a duration such as "3ms" (units ns, us, ms, s) or a number of cycles';
const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(ns|us|ms|s)$/;
const DURATION_UNIT: Record<string, number> = { ns: 1e-9, us: 1e-6, ms: 1e-3, s: 1 };
/** The longest slice: 1,000 s (longer is no slice at all). */
const MAX_SLICE_SECONDS = 1000;

/** The guest scheduler's slice (see SliceRule): "cfs", "eevdf", "3ms", or cycles. */
export function slice() {
  return z
    .union([z.number(), z.string()], { error: SLICE_EXPECTED })
    .transform((input, ctx): SliceInput => {
      const fail = (message: string) => {
        ctx.addIssue({ code: "custom", message, input });
        return z.NEVER;
      };
      if (input === "cfs" || input === "eevdf") return { type: input };
      if (typeof input === "number") {
        if (!Number.isSafeInteger(input) || input < 1) return fail(SLICE_EXPECTED);
        return { type: "cycles", value: input };
      }
      const m = DURATION_RE.exec(input.trim());
      if (!m) return fail(SLICE_EXPECTED);
      const seconds = Number(m[1]) * DURATION_UNIT[m[2]];
      if (seconds <= 0) return fail("must be longer than 0");
      if (seconds > MAX_SLICE_SECONDS) return fail("must be at most 1000s");
      return { type: "seconds", value: seconds };
    });
}
