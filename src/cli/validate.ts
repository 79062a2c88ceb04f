/** `memvisor validate`: memvisor's figures beside published ones, row by row. */

import { VALIDATION_ROWS, type Validation, validate } from "../api/index.js";
import { EXIT_OK, UsageError } from "./errors.js";
import { newTable } from "./format.js";
import { writeJson, writeOut } from "./output.js";

/** What a row's kind means, after its id. */
const KIND_NOTE: Record<Validation["rows"][number]["kind"], string> = {
  validation: "",
  constant: " (a constant from its source: checks the plumbing only)",
  fitted: " (the scenario was fitted to these figures: checks the arithmetic only)",
};

/** A row failed: the model disagrees with a publication (documented in README). */
export const EXIT_VALIDATION_FAILED = 4;

export interface ValidateOptions {
  quick?: boolean;
  json?: boolean;
}

export function validateCommand(rows: string[], options: ValidateOptions): number {
  const known = VALIDATION_ROWS.map((r) => r.id);
  const unknown = rows.filter((r) => !known.includes(r));
  if (unknown.length > 0) {
    throw new UsageError(
      `unknown validation row ${unknown.join(", ")} (rows: ${known.join(", ")})`,
    );
  }
  const v = validate(options.quick ? "quick" : "full", rows.length > 0 ? rows : undefined);
  if (options.json) writeJson(v);
  else writeOut(formatValidation(v));
  return v.failed > 0 ? EXIT_VALIDATION_FAILED : EXIT_OK;
}

/** A figure with three significant digits at most. */
function figure(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 100
    ? Math.round(x).toLocaleString("en-US")
    : String(Number(x.toPrecision(3)));
}

export function formatValidation(v: Validation): string {
  const out = [
    `memvisor ${v.memvisor} · validate${v.size === "quick" ? " (quick)" : ""} · ` +
      `${v.passed} of ${v.rows.length} rows agree with the publications`,
  ];
  const table = newTable({
    head: ["row", "published", "memvisor", "unit", ""],
    colAligns: ["left", "right", "right", "left", "left"],
  });
  for (const r of v.rows) {
    table.push([r.id, r.published, figure(r.measured), r.unit, r.pass ? "pass" : "FAIL"]);
  }
  out.push(table.toString(), "");
  for (const r of v.rows) {
    out.push(`${r.pass ? "pass" : "FAIL"} ${r.id}${KIND_NOTE[r.kind]}`);
    out.push(`  claim: ${r.claim}`, `  source: ${r.source}`, `  run: ${r.scenario}`);
    if (r.reason !== undefined) out.push(`  why it fails: ${r.reason}`);
  }
  return `${out.join("\n")}\n`;
}
