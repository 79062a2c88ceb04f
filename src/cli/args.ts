/** Validation of the numeric options, with messages that say what was expected and what came. */

import { UsageError } from "./errors.js";

/** Seeds are 32-bit: the largest accepted is 2^32 - 1. */
export const SEED_MAX = 2 ** 32 - 1;

/** Digits, optionally grouped by underscores as in a JS literal ("1_000_000"). */
const INTEGER = /^[0-9]+(_[0-9]+)*$/;

function parseInteger(option: string, text: string, min: number, max: number): number {
  const value = INTEGER.test(text) ? Number(text.replaceAll("_", "")) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range =
      max === Number.MAX_SAFE_INTEGER ? `a positive integer` : `an integer from ${min} to ${max}`;
    throw new UsageError(`${option}: expected ${range}, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** --seed: 0 to 2^32 - 1. */
export function parseSeed(text: string): number {
  return parseInteger("--seed", text, 0, SEED_MAX);
}

/** --domains: 1 to 16 (a sweep runs the scenario once per count). */
export function parseDomains(text: string): number {
  return parseInteger("--domains", text, 1, 16);
}

/** --accesses: at least 1. */
export function parseAccesses(text: string): number {
  return parseInteger("--accesses", text, 1, Number.MAX_SAFE_INTEGER);
}
