/**
 * What makes a printed report reproducible beyond what the library puts in it (the version, the
 * resolved scenario, the cost model): the git commit memvisor was built from, the command line
 * and the wall time. The commit is read from the package's own .git without running git (a
 * worktree's .git file, loose refs, packed-refs); an installed package has none: null.
 */

import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The package's folder (from src/cli or dist/cli alike). */
const PACKAGE_DIR = fileURLToPath(new URL("../..", import.meta.url));

/** The `provenance` object of a printed report. */
export interface Provenance {
  /** The git commit of memvisor's checkout (40 hex digits), or null outside one. */
  commit: string | null;
  /** The command line, as a shell would take it back. */
  command: string;
  /** Wall-clock seconds the command took to make the report (varies from run to run). */
  wall_seconds: number;
}

/** The keys of Provenance (README names them; the ones that vary between runs are marked). */
export const PROVENANCE_KEYS = ["commit", "command", "wall_seconds"] as const;

/** The keys of a printed report that differ between two runs of the same command. */
export const VOLATILE_KEYS = ["command", "wall_seconds"] as const;

function readText(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

const HEX40 = /^[0-9a-f]{40}$/;

/**
 * The commit HEAD names in the repository whose .git is at `dotGit` (a folder, or a worktree's
 * file "gitdir: PATH"), or null. A worktree keeps its HEAD in its own git folder and its refs in
 * the common one ("commondir").
 */
export function gitCommit(dotGit: string): string | null {
  let gitDir = dotGit;
  try {
    if (statSync(dotGit).isFile()) {
      const m = /^gitdir: (.+)$/m.exec(readText(dotGit) ?? "");
      if (!m) return null;
      gitDir = m[1].startsWith("/") ? m[1] : join(dotGit, "..", m[1]);
    }
  } catch {
    return null;
  }
  const head = readText(join(gitDir, "HEAD"))?.trim() ?? "";
  if (HEX40.test(head)) return head;
  const ref = /^ref: (refs\/\S+)$/.exec(head)?.[1];
  if (ref === undefined) return null;
  const common = readText(join(gitDir, "commondir"))?.trim();
  const dirs = [gitDir];
  if (common) dirs.push(common.startsWith("/") ? common : join(gitDir, common));
  for (const dir of dirs) {
    const loose = readText(join(dir, ref))?.trim() ?? "";
    if (HEX40.test(loose)) return loose;
  }
  for (const dir of dirs) {
    for (const line of (readText(join(dir, "packed-refs")) ?? "").split("\n")) {
      const [sha, name] = line.split(" ");
      if (name === ref && HEX40.test(sha)) return sha;
    }
  }
  return null;
}

let commit: string | null | undefined;

/** memvisor's own commit, read once. */
export function memvisorCommit(): string | null {
  commit ??= gitCommit(join(PACKAGE_DIR, ".git"));
  return commit;
}

/** An argument as a POSIX shell takes it back: quoted when it holds anything but safe characters. */
function shellWord(arg: string): string {
  return /^[A-Za-z0-9_./:=,@%+-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** The command line of memvisor with these arguments. */
export function commandLine(argv: readonly string[]): string {
  return ["memvisor", ...argv].map(shellWord).join(" ");
}

/** The arguments main() was called with (set by main, read by the commands that print reports). */
let currentArgv: readonly string[] = [];
/** When main() started (Date.now()). */
let startedAt = 0;

/** Notes the command line and the start time (main() calls it first). */
export function startCommand(argv: readonly string[]): void {
  currentArgv = [...argv];
  startedAt = Date.now();
}

/** The provenance of a report printed now. */
export function provenance(): Provenance {
  return {
    commit: memvisorCommit(),
    command: commandLine(currentArgv),
    wall_seconds: (Date.now() - startedAt) / 1000,
  };
}

/**
 * The object with its provenance after the version field ("memvisor"), where a reader looks first.
 */
export function withProvenance<T extends { memvisor: string }>(
  value: T,
): T & { provenance: Provenance } {
  const { memvisor, ...rest } = value;
  return { memvisor, provenance: provenance(), ...rest } as T & { provenance: Provenance };
}
