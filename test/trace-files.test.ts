/**
 * Trace files as the file system gives them: inputs that are not files, outputs that are inputs,
 * outputs that already exist, imports that fail or are interrupted (the old file intact, no
 * half-written one), and inputs that inflate without end (bounded memory, an early stop).
 */

import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { importLackey, readLackeyFile, readTrace } from "../src/workload/trace/file.js";
import { traceHeader } from "../src/workload/trace/format.js";
import { TraceError } from "../src/workload/trace/lackey.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "memvisor-tracefiles-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const LACKEY = "I  04001e90,3\n L 1ffefffd58,8\n S 1ffefffd50,8\n";

function file(name: string, content: string | Uint8Array): string {
  const path = join(tmp, name);
  writeFileSync(path, content);
  return path;
}

async function importError(input: string, out: string, overwrite = false): Promise<TraceError> {
  try {
    await importLackey(input, out, { overwrite });
  } catch (e) {
    expect(e).toBeInstanceOf(TraceError);
    return e as TraceError;
  }
  throw new Error("expected a TraceError");
}

function readError(path: string): string {
  try {
    readTrace(path);
  } catch (e) {
    expect(e).toBeInstanceOf(TraceError);
    return (e as Error).message;
  }
  throw new Error("expected a TraceError");
}

describe("inputs", () => {
  it("a missing file, a directory, a device: named, before any work", async () => {
    const out = join(tmp, "never.mvtr");
    expect((await importError(join(tmp, "gone"), out)).message).toBe(
      `${join(tmp, "gone")}: cannot read it: no such file`,
    );
    expect((await importError(tmp, out)).message).toBe(
      `${tmp}: cannot read it: is a directory, not a trace`,
    );
    expect((await importError("/dev/zero", out)).message).toBe(
      "/dev/zero: cannot read it: is a device, not a trace",
    );
    expect(readError("/dev/urandom")).toBe(
      "/dev/urandom: cannot read it: is a device, not a trace",
    );
    expect(existsSync(out)).toBe(false);
  });

  it("a gzip file that inflates to gigabytes of one line stops at its first line", () => {
    // 300 MiB of zeroes in 300 KiB: more than is inflated at once, so it is streamed.
    const bomb = file("bomb.gz", gzipSync(new Uint8Array(300 << 20), { level: 1 }));
    expect(readError(bomb)).toBe(`${bomb}:1: a line longer than 256 bytes: not a lackey trace`);
  });

  it("a header that claims more records than a run holds is refused before reading them", () => {
    const header = traceHeader(2 ** 40);
    const path = file("huge.mvtr", header);
    expect(readError(path)).toMatch(
      /huge\.mvtr: the header says 1099511627776 records: more than 134,217,728 records/,
    );
  });

  it("a lackey file with more records than allowed stops at the line that passes the limit", async () => {
    const path = file("many.lackey", LACKEY.repeat(10));
    await expect(readLackeyFile(path, { maxRecords: 20 }, () => {})).rejects.toThrow(
      "many.lackey:21: more than 134,217,728 records",
    );
  });

  it("reads the same records plain, gzip-compressed at once and gzip-compressed in a stream", () => {
    const text = LACKEY.repeat(50_000);
    const plain = readTrace(file("t.lackey", text));
    const gz = readTrace(file("t.lackey.gz", gzipSync(text)));
    expect(gz.count).toBe(plain.count);
    expect(gz.words).toEqual(plain.words);
  });
});

describe("outputs", () => {
  it("never the input: the same path, or the same file by another name", async () => {
    const input = file("in.lackey", LACKEY);
    expect((await importError(input, input, true)).message).toBe(
      `${input}: is the input file; write to another file`,
    );
    const link = join(tmp, "link.mvtr");
    symlinkSync(input, link);
    expect((await importError(input, link, true)).message).toBe(
      `${link}: is the input (${input}); write to another file`,
    );
    expect(readFileSync(input, "utf8")).toBe(LACKEY);
  });

  it("a failed import with --force leaves the old output as it was, and no temporary file", async () => {
    const out = file("kept.mvtr", "old contents");
    const bad = file("bad.lackey", `${LACKEY}not a line\n`);
    const e = await importError(bad, out, true);
    expect(e.message).toContain("bad.lackey:4: not a trace line");
    expect(readFileSync(out, "utf8")).toBe("old contents");
    expect(readdirSync(tmp).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("an output in a folder that does not exist is refused before the input is read", async () => {
    const e = await importError(file("ok.lackey", LACKEY), join(tmp, "no", "such", "x.mvtr"));
    expect(e.message).toBe(
      `${join(tmp, "no", "such", "x.mvtr")}: cannot write it: its folder does not exist`,
    );
  });
});

describe("an interrupted import (the CLI)", () => {
  // dist/ is built once for the suite (test/support/build-dist.ts).
  const bin = join(ROOT, "bin", "memvisor.js");

  it("SIGINT removes what it was writing and exits 130; the old output stays", async () => {
    const fifo = join(tmp, "fifo");
    expect(spawnSync("mkfifo", [fifo]).status).toBe(0);
    const out = file("out.mvtr", "old contents");
    const child = spawn(process.execPath, [bin, "trace", "import", fifo, "-o", out, "--force"]);
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    const writer = spawn("sh", ["-c", `cat > "${fifo}"`]);
    writer.stdin.write(LACKEY.repeat(1000));
    // Wait until the temporary file is there (the import is under way), then interrupt it.
    const deadline = Date.now() + 10_000;
    while (!readdirSync(tmp).some((f) => f.startsWith(".out.mvtr.")) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill("SIGINT");
    const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    writer.kill();
    expect(code).toBe(130);
    expect(stderr).toBe("memvisor: interrupted (SIGINT): nothing written\n");
    expect(readFileSync(out, "utf8")).toBe("old contents");
    expect(readdirSync(tmp).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  }, 20_000);
});
