/**
 * An experiment's output folder. While it runs, each finished run's row is appended to
 * results.jsonl and results.csv (and its wall time to timings.csv) at once, so that a run that
 * is killed keeps every row it finished and `--resume` starts where it stopped. At the end every
 * table is written again in the experiment's order, atomically (written beside, then renamed),
 * so that the final results.csv is the same bytes whatever the number of jobs, shards or
 * machines; wall time is kept out of it (timings.csv) for that reason.
 *
 * experiment.json says which experiment (and which shard of it) the folder holds: a resume or a
 * merge refuses a folder of another experiment.
 */

import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import {
  csvHeader,
  csvLine,
  type Experiment,
  jsonLine,
  OutputError,
  type PlotSpec,
  parseJsonLines,
  type ResultRow,
  rowColumns,
  type Shard,
  toCsv,
  VERSION,
} from "../api/node.js";
import { UsageError } from "./errors.js";
import { lockFolder } from "./folder-lock.js";

export const RESULTS_JSONL = "results.jsonl";
export const RESULTS_CSV = "results.csv";
export const TIMINGS_CSV = "timings.csv";
export const SUMMARY_CSV = "summary.csv";
export const IDENTITY_JSON = "experiment.json";

const TIMING_COLUMNS = ["point", "wall_seconds"];

/** What experiment.json holds: the experiment's identity and the shard of it. */
export interface Identity {
  memvisor: string;
  experiment: string;
  scenario: string;
  modes: string[] | null;
  seeds: number[];
  grid: { key: string; values: unknown[] }[];
  runs: number;
  description: string;
  plots: PlotSpec[];
  /** A digest of every grid point's scenario: a changed base scenario is another experiment. */
  scenarios_digest: string;
  shard: string;
}

export function identityOf(e: Experiment, runs: number, shard: Shard): Identity {
  return {
    memvisor: VERSION,
    experiment: e.name,
    description: e.description,
    scenario: e.scenario,
    modes: e.modes,
    seeds: e.seeds,
    grid: e.grid.map((g) => ({ key: g.key, values: g.values })),
    runs,
    plots: e.plots,
    scenarios_digest: digest(
      // A trace's records are its file's: its name stands for them.
      JSON.stringify(e.scenarios, (k, v) =>
        k === "data" && v !== null && typeof v === "object" ? null : v,
      ),
    ),
    shard: `${shard.index}/${shard.count}`,
  };
}

/** The identity without its shard: what the shards of one experiment share. */
export function sameExperiment(a: Identity, b: Identity): boolean {
  return JSON.stringify({ ...a, shard: "" }) === JSON.stringify({ ...b, shard: "" });
}

/** FNV-1a, 32 bits, as 8 hex digits: enough to tell two experiments apart. */
function digest(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

const DEVICE_ERRORS = new Set(["ENOSPC", "EDQUOT", "EFBIG", "EIO"]);

/** A failed write: exit 74 for the device's errors, else a usage error naming the file. */
function writeFailure(file: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  const reason = err.code === "EACCES" || err.code === "EPERM" ? "permission denied" : err.message;
  return DEVICE_ERRORS.has(err.code ?? "")
    ? new OutputError(file, reason)
    : new UsageError(`cannot write ${file}: ${reason}`);
}

/** Writes a file whole or not at all: beside it first, then renamed over it. */
export function writeAtomic(file: string, data: string | Uint8Array): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // never made
    }
    throw writeFailure(file, e);
  }
}

/** Reads experiment.json of a folder, or null when there is none. */
export function readIdentity(dir: string): Identity | null {
  const file = join(dir, IDENTITY_JSON);
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Identity;
  } catch (e) {
    throw new UsageError(`${file}: not an experiment's identity: ${(e as Error).message}`);
  }
}

/** The rows of a folder's results.jsonl (a last line cut short by a kill left out). */
export function readRows(dir: string): ResultRow[] {
  const file = join(dir, RESULTS_JSONL);
  if (!existsSync(file)) return [];
  return parseJsonLines(readFileSync(file, "utf8"), (line) => {
    throw new UsageError(`${file}:${line}: not a row of results (a JSON object on one line)`);
  });
}

/** The wall times a folder's timings.csv holds, by point. */
function readTimings(dir: string): Map<number, string> {
  const file = join(dir, TIMINGS_CSV);
  const out = new Map<number, string>();
  if (!existsSync(file)) return out;
  for (const line of readFileSync(file, "utf8").split("\n").slice(1)) {
    const [point, seconds] = line.split(",");
    if (seconds !== undefined && /^\d+$/.test(point)) out.set(Number(point), seconds);
  }
  return out;
}

/**
 * The output folder of a run of an experiment: checked, made, and holding the rows a resume
 * keeps. Without `resume` or `force` a folder that holds an experiment's results is refused;
 * with `resume` it must hold this experiment (this shard of it).
 */
export class ExperimentFolder {
  readonly columns: string[];
  /** The rows already there (a resume's), by point. */
  readonly done = new Map<number, ResultRow>();
  private timings = new Map<number, string>();
  /** Gives the folder's lock back (see folder-lock.ts). */
  readonly release: () => void;

  constructor(
    readonly dir: string,
    readonly experiment: Experiment,
    readonly identity: Identity,
    options: { resume: boolean; force: boolean },
  ) {
    this.columns = rowColumns(experiment);
    let stat: ReturnType<typeof statSync> | null = null;
    try {
      stat = statSync(dir);
    } catch {
      // not there yet: made below
    }
    if (stat !== null && !stat.isDirectory()) {
      throw new UsageError(`--out ${dir}: is a file; name a folder for the results`);
    }
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw writeFailure(dir, e);
    }
    this.release = lockFolder(dir);
    try {
      this.open(dir, identity, options);
    } catch (e) {
      this.release();
      throw e;
    }
  }

  /** Checks what the folder holds against the options, keeps a resume's rows, starts the tables. */
  private open(
    dir: string,
    identity: Identity,
    options: { resume: boolean; force: boolean },
  ): void {
    const there = readIdentity(dir);
    const ours = [RESULTS_JSONL, RESULTS_CSV, TIMINGS_CSV, SUMMARY_CSV];
    const theirs = ours.find((f) => existsSync(join(dir, f)));
    if (there === null && theirs !== undefined && !options.force) {
      throw new UsageError(
        `--out ${dir}: already holds ${theirs}, not made by an experiment; --force to replace it, or name another folder`,
      );
    }
    if (there !== null && !options.resume && !options.force) {
      throw new UsageError(
        `--out ${dir}: already holds the results of experiment ${there.experiment} (shard ${there.shard}); ` +
          "--resume to finish it, --force to start again (its files are replaced), or name another folder",
      );
    }
    if (there !== null && options.resume && !options.force) {
      if (!sameExperiment(there, identity) || there.shard !== identity.shard) {
        throw new UsageError(
          `--resume: ${dir} holds another experiment (${there.experiment}, shard ${there.shard}, ` +
            `scenarios ${there.scenarios_digest}) than this one (${identity.experiment}, shard ` +
            `${identity.shard}, scenarios ${identity.scenarios_digest}); name another --out folder`,
        );
      }
      for (const row of readRows(dir)) this.done.set(row.point as number, row);
    }
    this.timings =
      there !== null && options.resume && !options.force ? readTimings(dir) : new Map();
    writeAtomic(join(dir, IDENTITY_JSON), `${JSON.stringify(identity, null, 2)}\n`);
    // What a resume keeps, rewritten whole (a line a kill cut short is gone), then appended to.
    const kept = [...this.done.values()].sort((a, b) => (a.point as number) - (b.point as number));
    writeAtomic(join(dir, RESULTS_JSONL), kept.map((r) => jsonLine(this.columns, r)).join(""));
    writeAtomic(join(dir, RESULTS_CSV), toCsv(this.columns, kept));
    writeAtomic(join(dir, TIMINGS_CSV), this.timingsCsv(kept.map((r) => r.point as number)));
  }

  /** Appends a finished run's row and wall time to the tables, at once. */
  append(row: ResultRow, wallSeconds: number): void {
    this.done.set(row.point as number, row);
    const seconds = wallSeconds.toFixed(3);
    this.timings.set(row.point as number, seconds);
    this.appendTo(RESULTS_JSONL, jsonLine(this.columns, row));
    this.appendTo(RESULTS_CSV, csvLine(this.columns, row));
    this.appendTo(TIMINGS_CSV, `${row.point},${seconds}\n`);
  }

  /** Every table again, in the experiment's order; the lock is kept until release(). */
  finish(): ResultRow[] {
    const rows = [...this.done.values()].sort((a, b) => (a.point as number) - (b.point as number));
    writeAtomic(join(this.dir, RESULTS_JSONL), rows.map((r) => jsonLine(this.columns, r)).join(""));
    writeAtomic(join(this.dir, RESULTS_CSV), toCsv(this.columns, rows));
    writeAtomic(join(this.dir, TIMINGS_CSV), this.timingsCsv(rows.map((r) => r.point as number)));
    return rows;
  }

  private timingsCsv(points: number[]): string {
    return (
      csvHeader(TIMING_COLUMNS) + points.map((p) => `${p},${this.timings.get(p) ?? ""}\n`).join("")
    );
  }

  private appendTo(name: string, text: string): void {
    const file = join(this.dir, name);
    let fd: number | undefined;
    try {
      fd = openSync(file, "a");
      appendFileSync(fd, text);
    } catch (e) {
      throw writeFailure(file, e);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}

/**
 * The experiment an identity describes, as far as tables, summaries and plots need it (merge
 * has the shards' folders, not the experiment file).
 */
export function experimentOf(id: Identity): Experiment {
  return {
    name: id.experiment,
    description: id.description,
    file: "",
    scenario: id.scenario,
    modes: id.modes as Experiment["modes"],
    seeds: id.seeds,
    grid: id.grid.map((g) => ({
      key: g.key,
      path: null,
      values: g.values as Experiment["grid"][number]["values"],
    })),
    plots: id.plots,
    scenarios: [],
  };
}
