/**
 * `memvisor trace record` against a fake valgrind on PATH (a script that writes lackey logs as
 * valgrind does, one per process with --trace-children): it follows children and keeps the
 * program that did the work, names it, passes options through, warns when the log has no
 * end-of-run summary, and checks the command and -o before running anything.
 */

import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { readTrace } from "../src/workload/trace/file.js";
import { cli } from "./support/cli.js";

const tmp = mkdtempSync(join(tmpdir(), "memvisor-record-"));
const bin = join(tmp, "bin");
const argsFile = join(bin, "args");

/** A valgrind that writes the log of a python (pid 4100) and, following children, a readlink. */
const FAKE_VALGRIND = `#!/bin/sh
if [ "$1" = "--version" ]; then echo valgrind-3.19.0; exit 0; fi
log=""; follow=""
for a in "$@"; do
  case "$a" in
    --log-file=*) log="\${a#--log-file=}" ;;
    --trace-children=*) follow="\${a#--trace-children=}" ;;
  esac
done
printf '%s\\n' "$@" > "${argsFile}"
root=$(printf %s "$log" | sed 's/%p/4100/')
child=$(printf %s "$log" | sed 's/%p/4101/')
{
  echo "==4100== Command: /opt/py/bin/python3.11 -c x"
  i=0; while [ $i -lt 50 ]; do echo " S 1fff000768,8"; echo "I  0401ab70,3"; i=$((i+1)); done
  [ -z "$FAKE_KILLED" ] && echo "==4100== Exit code:       0"
} > "$root"
if [ "$follow" = yes ]; then
  { echo "==4101== Command: /usr/bin/readlink pyenv"; echo " L 04a17de0,8"; echo "==4101== Exit code:       0"; } > "$child"
fi
exit 0
`;

let savedPath: string | undefined;
beforeAll(() => {
  mkdirSync(bin);
  writeFileSync(join(bin, "valgrind"), FAKE_VALGRIND);
  chmodSync(join(bin, "valgrind"), 0o755);
  writeFileSync(join(bin, "python3"), "#!/bin/sh\nexit 0\n");
  chmodSync(join(bin, "python3"), 0o755);
  savedPath = process.env.PATH;
  process.env.PATH = `${bin}${delimiter}${savedPath}`;
});
afterAll(() => {
  process.env.PATH = savedPath;
  rmSync(tmp, { recursive: true, force: true });
});
afterEach(() => {
  rmSync(argsFile, { force: true });
  delete process.env.FAKE_KILLED;
  vi.restoreAllMocks();
});

const valgrindArgs = () => readFileSync(argsFile, "utf8").trim().split("\n");

describe("memvisor trace record", () => {
  it("follows children and keeps the program that made the most accesses, naming it", async () => {
    const out = join(tmp, "py.mvtr");
    const r = await cli(
      "trace",
      "record",
      "-o",
      out,
      "--valgrind-option=--trace-children-skip=*git*",
      "--",
      "python3",
      "-c",
      "x",
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("pid 4100 (/opt/py/bin/python3.11 -c x): 102 lines, 100 accesses");
    expect(r.stdout).toContain(
      "recorded the process with the most accesses of 2; the others: readlink (pid 4101",
    );
    expect(readTrace(out).count).toBe(100);
    const args = valgrindArgs();
    expect(args).toContain("--trace-children=yes");
    expect(args).toContain("--trace-children-skip=*git*");
    expect(args.slice(-3)).toEqual(["python3", "-c", "x"]);
  });

  it("--program picks a process by its program; --no-follow-children traces the command alone", async () => {
    const out = join(tmp, "readlink.mvtr");
    const r = await cli("trace", "record", "-o", out, "--program", "readlink", "--", "python3");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("pid 4101 (/usr/bin/readlink pyenv)");
    expect(readTrace(out).count).toBe(1);
    const alone = await cli(
      "trace",
      "record",
      "-o",
      join(tmp, "alone.mvtr"),
      "--no-follow-children",
      "--",
      "python3",
    );
    expect(alone.code).toBe(0);
    expect(valgrindArgs()).toContain("--trace-children=no");
    expect(alone.stdout).not.toContain("the others");
  });

  it("warns when the log has no end-of-run summary (the program was killed)", async () => {
    process.env.FAKE_KILLED = "1";
    const r = await cli("trace", "record", "-o", join(tmp, "killed.mvtr"), "--", "python3");
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      "memvisor: warning: the lackey log of pid 4100 has no end-of-run summary: the program did " +
        "not run to its end (killed by a signal?); the trace holds what it did until then\n",
    );
  });

  it("checks the program, -o and the options before running anything", async () => {
    const missing = await cli(
      "trace",
      "record",
      "-o",
      join(tmp, "m.mvtr"),
      "--",
      "no-such-program-x",
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(
      'memvisor: trace record: no program "no-such-program-x": not an executable file on PATH\n',
    );
    const noFolder = join(tmp, "none", "x.mvtr");
    const folder = await cli("trace", "record", "-o", noFolder, "--", "python3");
    expect(folder.code).toBe(2);
    expect(folder.stderr).toBe(
      `memvisor: ${noFolder}: cannot write it: its folder does not exist\n`,
    );
    const own = await cli(
      "trace",
      "record",
      "-o",
      join(tmp, "o.mvtr"),
      "--valgrind-option=--log-file=x",
      "--",
      "python3",
    );
    expect(own.code).toBe(2);
    expect(own.stderr).toContain("memvisor sets --log-file itself");
    expect(existsSync(argsFile)).toBe(false);
  });
});
