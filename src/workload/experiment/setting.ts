/**
 * A scenario setting named by its path in the scenario file, as an experiment's grid names it:
 * keys joined by dots, list items by index, `[*]` for every item of a list
 * ("domains[*].processes[0].working_set", "host.sharing.pages_to_scan", "costs.vmexit").
 * A setting is written into the scenario's data before the schema checks it, so a value means
 * what it means in a scenario file ("16MiB", true) and the schema refuses what it would refuse
 * there. `domain_count` is not a path: it clones the scenario's first domain, as `sweep` does.
 */

import { formatPath, type Segment } from "../scenario/problems.js";

/** The grid key that clones the first domain N times (named <name>-1..N). */
export const DOMAIN_COUNT = "domain_count";

/** Every item of a list. */
export const EVERY = "*";

const SEGMENT = /^([A-Za-z_][A-Za-z0-9_]*)((?:\[(?:\d+|\*)\])*)$/;

/** The path's steps, or a problem in words. */
export function parseSettingPath(text: string): Segment[] | string {
  const segments: Segment[] = [];
  for (const part of text.split(".")) {
    const m = SEGMENT.exec(part);
    if (m === null) {
      return (
        `expected a setting's path such as domains[0].memory or domains[*].processes[0].working_set, ` +
        `got "${text}" (keys joined by ".", list items as [index] or [*])`
      );
    }
    segments.push(m[1]);
    for (const index of m[2].matchAll(/\[(\d+|\*)\]/g)) {
      segments.push(index[1] === EVERY ? EVERY : Number(index[1]));
    }
  }
  return segments;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Sets the value at path in data (in place); a mapping on the way that the scenario leaves out is
 * created (the schema then judges its keys). Returns why it cannot be set, or "".
 */
export function setSetting(data: unknown, path: readonly Segment[], value: unknown): string {
  return setFrom(data, path, 0, value);
}

function setFrom(node: unknown, path: readonly Segment[], at: number, value: unknown): string {
  const seg = path[at];
  const last = at === path.length - 1;
  const where = formatPath(path.slice(0, at)) || "the scenario";
  if (typeof seg === "number" || seg === EVERY) {
    if (!Array.isArray(node)) return `${where} is not a list, so it has no item ${String(seg)}`;
    const indices = seg === EVERY ? node.map((_, i) => i) : [seg];
    if (seg === EVERY && node.length === 0) return `${where} is an empty list`;
    for (const i of indices) {
      if (i >= node.length) {
        return `${where} has ${node.length} item${node.length === 1 ? "" : "s"}, so no [${i}]`;
      }
      if (last) node[i] = value;
      else {
        const problem = setFrom(node[i], path, at + 1, value);
        if (problem !== "") return problem;
      }
    }
    return "";
  }
  if (!isMapping(node)) return `${where} is not a mapping, so it has no key ${String(seg)}`;
  const key = String(seg);
  if (last) {
    node[key] = value;
    return "";
  }
  if (node[key] === undefined || node[key] === null) {
    if (typeof path[at + 1] === "number" || path[at + 1] === EVERY) {
      return `${formatPath(path.slice(0, at + 1))} is not in the scenario, so it has no items to set`;
    }
    node[key] = {};
  }
  return setFrom(node[key], path, at + 1, value);
}

/**
 * The data with its first domain cloned n times (named <name>-1..n) and run.accesses scaled so
 * each clone makes as many accesses as a domain of the base did (`perDomain`), as `sweep` does.
 */
export function cloneFirstDomain(
  data: Record<string, unknown>,
  n: number,
  perDomain: number,
): string {
  const domains = data.domains;
  if (!Array.isArray(domains) || domains.length === 0 || !isMapping(domains[0])) {
    return "the scenario has no domain to clone";
  }
  const first = domains[0];
  const base = typeof first.name === "string" ? first.name : "vm";
  data.domains = Array.from({ length: n }, (_, i) => ({
    ...structuredClone(first),
    name: `${base}-${i + 1}`,
  }));
  const run = isMapping(data.run) ? data.run : {};
  data.run = { ...run, accesses: perDomain * n };
  return "";
}
