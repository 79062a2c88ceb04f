/** Validation of the numeric options, with messages that say what was expected and what came. */

import {
  LIMITS,
  parseSize,
  SEED_MAX,
  SWEEP_MAX_DOMAINS,
  VARIABLE_PARAMETERS,
  type VariableParameter,
} from "../api/index.js";
import { defaultJobs } from "../api/node.js";
import { UsageError } from "./errors.js";

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
  return parseInteger("--domains", text, 1, SWEEP_MAX_DOMAINS);
}

/** --accesses: 1 to 10^12 (the library's limit). */
export function parseAccesses(text: string): number {
  return parseInteger("--accesses", text, 1, LIMITS.accesses);
}

/** --vary PARAM=V1,V2,...: a parameter of the scenario's processes and the values to try. */
export function parseVary(text: string): { parameter: VariableParameter; values: number[] } {
  const option = "--vary";
  const eq = text.indexOf("=");
  const names = Object.keys(VARIABLE_PARAMETERS).join(", ");
  if (eq < 0) {
    throw new UsageError(
      `${option}: expected PARAMETER=V1,V2,... such as child_accesses=1000,10000, got ${JSON.stringify(text)}`,
    );
  }
  const name = text.slice(0, eq).trim();
  if (!(name in VARIABLE_PARAMETERS)) {
    throw new UsageError(`${option}: expected one of ${names}, got ${JSON.stringify(name)}`);
  }
  const parameter = name as VariableParameter;
  const parts = text
    .slice(eq + 1)
    .split(",")
    .map((v) => v.trim());
  if (parts.length < 2 || parts.length > 20) {
    throw new UsageError(`${option}: expected 2 to 20 values for ${name}, got ${parts.length}`);
  }
  const what = `${option} ${name}`;
  const values = parts.map((v) => {
    if (parameter === "writes" || parameter === "fetches") {
      const x = /^[0-9]*\.?[0-9]+$/.test(v) ? Number(v) : Number.NaN;
      if (!(x >= 0 && x <= 1)) {
        throw new UsageError(`${what}: expected numbers from 0 to 1, got ${JSON.stringify(v)}`);
      }
      return x;
    }
    if (parameter === "working_set") {
      let bytes: number;
      try {
        bytes = parseSize(v);
      } catch (e) {
        throw new UsageError(`${what}: ${(e as Error).message}`);
      }
      if (bytes === 0 || bytes % 4096 !== 0) {
        throw new UsageError(
          `${what}: expected sizes that are positive multiples of 4KiB, got ${JSON.stringify(v)}`,
        );
      }
      return bytes;
    }
    if (parameter === "jobs") return parseInteger(what, v, 1, 64);
    return parseInteger(what, v, parameter === "lifetime" ? 0 : 1, Number.MAX_SAFE_INTEGER);
  });
  return { parameter, values };
}

/** --jobs: runs at once, in worker threads, 1 to 256 (default: the cores this process may use). */
export function parseJobs(text: string | undefined): number {
  return text === undefined ? defaultJobs() : parseInteger("--jobs", text, 1, 256);
}
