/**
 * `memvisor experiment merge FOLDER`: joins the folders the shards of one experiment wrote (the
 * folders in FOLDER that hold an experiment.json) into the tables, summary and plots one machine
 * running the whole experiment would have written, byte for byte. Every shard must be there and
 * finished, and all must be of the same experiment.
 */

import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { jsonLine, type ResultRow, rowColumns, toCsv } from "../api/node.js";
import { EXIT_OK, EXIT_USAGE, UsageError } from "./errors.js";
import {
  experimentOf,
  IDENTITY_JSON,
  type Identity,
  RESULTS_CSV,
  RESULTS_JSONL,
  readIdentity,
  readRows,
  sameExperiment,
  TIMINGS_CSV,
  writeAtomic,
} from "./experiment-files.js";
import { writeSummary } from "./experiment-summary.js";
import { writeErr, writeOut } from "./output.js";

export interface MergeOptions {
  out?: string;
  force?: boolean;
}

export async function experimentMergeCommand(
  folder: string,
  options: MergeOptions,
): Promise<number> {
  let names: string[];
  try {
    names = readdirSync(folder).sort();
  } catch (e) {
    throw new UsageError(`${folder}: cannot read the folder: ${(e as Error).message}`);
  }
  const shards: { dir: string; id: Identity }[] = [];
  for (const name of names) {
    const dir = join(folder, name);
    if (!statSync(dir).isDirectory()) continue;
    const id = readIdentity(dir);
    if (id !== null) shards.push({ dir, id });
  }
  if (shards.length === 0) {
    throw new UsageError(`${folder}: no shard's folder in it (a folder with an ${IDENTITY_JSON})`);
  }
  const first = shards[0];
  for (const s of shards) {
    if (!sameExperiment(s.id, first.id)) {
      throw new UsageError(
        `${s.dir} holds another experiment (${s.id.experiment}, scenarios ${s.id.scenarios_digest}) ` +
          `than ${first.dir} (${first.id.experiment}, scenarios ${first.id.scenarios_digest})`,
      );
    }
  }
  const count = Number(first.id.shard.split("/")[1]);
  const seen = new Map<number, string>();
  for (const s of shards) {
    const [index, n] = s.id.shard.split("/").map(Number);
    if (n !== count) {
      throw new UsageError(
        `${s.dir} is shard ${s.id.shard}, ${first.dir} shard ${first.id.shard}: not one split`,
      );
    }
    const other = seen.get(index);
    if (other !== undefined)
      throw new UsageError(`${s.dir} and ${other} are both shard ${s.id.shard}`);
    seen.set(index, s.dir);
  }
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !seen.has(i));
  if (missing.length > 0) {
    throw new UsageError(
      `${folder}: shards ${missing.map((i) => `${i}/${count}`).join(", ")} are missing`,
    );
  }

  const e = experimentOf(first.id);
  const columns = rowColumns(e);
  const rows = new Map<number, ResultRow>();
  for (const s of shards) for (const row of readRows(s.dir)) rows.set(row.point as number, row);
  const absent = Array.from({ length: first.id.runs }, (_, i) => i).filter((i) => !rows.has(i));
  if (absent.length > 0) {
    const shown = absent.slice(0, 10).join(", ");
    throw new UsageError(
      `${folder}: runs ${shown}${absent.length > 10 ? ", ..." : ""} are in no shard's results ` +
        `(${absent.length} of ${first.id.runs}): finish those shards with --resume, then merge`,
    );
  }
  const out = options.out ?? folder;
  if (readIdentity(out) !== null && !options.force) {
    throw new UsageError(
      `--out ${out}: already holds an experiment's results; --force to replace them`,
    );
  }
  const sorted = [...rows.values()].sort((a, b) => (a.point as number) - (b.point as number));
  writeAtomic(
    join(out, IDENTITY_JSON),
    `${JSON.stringify({ ...first.id, shard: "0/1" }, null, 2)}\n`,
  );
  writeAtomic(join(out, RESULTS_JSONL), sorted.map((r) => jsonLine(columns, r)).join(""));
  writeAtomic(join(out, RESULTS_CSV), toCsv(columns, sorted));
  writeAtomic(join(out, TIMINGS_CSV), mergedTimings(shards.map((s) => s.dir)));
  const { text, files } = await writeSummary(out, e, sorted);
  writeOut(text);
  writeErr(`merged ${count} shards: wrote ${[join(out, RESULTS_CSV), ...files].join(", ")}`);
  return sorted.some((r) => r.ending === "not-run") ? EXIT_USAGE : EXIT_OK;
}

/** The shards' timings.csv joined, in the experiment's order. */
function mergedTimings(dirs: string[]): string {
  const lines: [number, string][] = [];
  for (const dir of dirs) {
    let text = "";
    try {
      text = readFileSync(join(dir, TIMINGS_CSV), "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const point = line.split(",")[0];
      if (/^\d+$/.test(point)) lines.push([Number(point), line]);
    }
  }
  lines.sort((a, b) => a[0] - b[0]);
  return `point,wall_seconds\n${lines.map(([, l]) => `${l}\n`).join("")}`;
}
