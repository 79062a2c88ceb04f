/**
 * Scenario files that are not what they claim: too large, too deep, binary, UTF-16, devices,
 * several documents, JSON with YAML's freedoms, thousands of mistakes, values with control and
 * bidi characters. Each gets one short message with its file and line, never a stack trace.
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { loadScenarioFile } from "../src/workload/scenario/file.js";
import { parseScenario } from "../src/workload/scenario/parse.js";
import { ScenarioError } from "../src/workload/scenario/problems.js";

const tmp = mkdtempSync(join(tmpdir(), "memvisor-hostile-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Characters a terminal acts on (tab and newline aside). */
const C0 = "\\u0000-\\u0008\\u000b-\\u001f";
const UNSAFE = new RegExp(
  `[${C0}\\u007f-\\u009f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]`,
);

function messageOf(load: () => unknown): string {
  try {
    load();
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as Error).message;
  }
  throw new Error("expected a ScenarioError");
}

const parse = (text: string, file = "x.yaml") => messageOf(() => parseScenario(text, file));

function fileOf(name: string, content: string | Uint8Array): string {
  const path = join(tmp, name);
  writeFileSync(path, content);
  return path;
}

const load = (path: string) => messageOf(() => loadScenarioFile(path));

describe("what is not a scenario file", () => {
  it("a device, a directory: refused before reading", () => {
    expect(load("/dev/zero")).toBe(
      "/dev/zero: cannot read the file: is a device or socket, not a scenario file",
    );
    expect(load(tmp)).toBe(`${tmp}: cannot read the file: is a directory, not a scenario file`);
  });

  it("a file over 4 MiB: refused after reading 4 MiB", () => {
    const path = fileOf("big.yaml", `description: "${"x".repeat(5 * 2 ** 20)}"\n`);
    expect(load(path)).toBe(
      `${path}: the file is larger than 4MiB: not a scenario (the largest built-in is 3 KiB)`,
    );
  });

  it("binary, UTF-16 and bad UTF-8, each with its line", () => {
    const elf = fileOf("ls.yaml", new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0]));
    expect(load(elf)).toBe(`${elf}:1:1: a binary file, not a scenario: a NUL byte at byte 7`);
    const utf16 = fileOf("u16.yaml", Buffer.from("\ufeffdomains: []\n", "utf16le"));
    expect(load(utf16)).toBe(
      `${utf16}:1:1: the file is UTF-16 text; save it as UTF-8 (a scenario is UTF-8 YAML or JSON)`,
    );
    const latin1 = fileOf("l1.yaml", Buffer.from("name: x\ndescription: caf\xe9\n", "latin1"));
    expect(load(latin1)).toBe(`${latin1}:2:1: not UTF-8 text: byte 24 (0xe9) is not UTF-8`);
  });

  it("a line longer than 64 KiB", () => {
    expect(parse(`name: x\ndomains: [${"1,".repeat(40_000)}1]\n`)).toBe(
      "x.yaml:2:1: a line longer than 65,536 characters (80,012): not a scenario",
    );
  });
});

describe("YAML and JSON that would hurt", () => {
  it("nesting deeper than 64, in flow and in block style, at the first level too deep", () => {
    expect(parse(`domains: ${"[".repeat(5000)}${"]".repeat(5000)}\n`)).toBe(
      "x.yaml:1:73: lists and mappings nested more than 64 deep (a scenario needs 6)",
    );
    const block = Array.from({ length: 100 }, (_, i) => `${" ".repeat(i)}- `).join("\n");
    expect(parse(`domains:\n${block}x\n`)).toBe(
      "x.yaml:65:64: lists and mappings nested more than 64 deep (a scenario needs 6)",
    );
  });

  it("several documents: the second's line", () => {
    expect(parse("domains: []\n---\nseed: 1\n")).toBe(
      "x.yaml:2:1: the file holds 2 YAML documents (separated by ---); a scenario is one",
    );
  });

  it("a .json file is JSON: a trailing comma or a comment is a JSON error at its line and column", () => {
    const json = '{\n  "domains": [\n    {"name": "d"},\n  ],\n}\n';
    expect(parse(json, "s.json")).toBe(
      's.json:4:3: JSON syntax error: a comma before "]" (JSON allows no trailing comma)',
    );
    expect(parse('{"seed": 1 // one\n}', "s.json")).toBe(
      's.json:1:12: JSON syntax error: expected "," or "}", got "/"',
    );
    expect(parse('{"seed": 1}{', "s.json")).toBe(
      's.json:1:12: JSON syntax error: expected the end of the file after the value, got "{"',
    );
    // The same text named .yaml is YAML, which allows it; its mistakes are the schema's.
    expect(parse(json)).toContain("x.yaml:3:5: domains[0].memory: missing required key");
  });

  it("valid JSON of any shape passes the JSON check (the schema judges it)", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (value) => {
        const message = parse(JSON.stringify(value, null, 1), "s.json");
        expect(message).not.toContain("JSON syntax error");
      }),
      { numRuns: 200 },
    );
  });
});

describe("messages stay short and inert", () => {
  it("thousands of mistakes: the first 20, then a count", () => {
    const domains = Array.from({ length: 64 }, () => "  - { bad: 1 }").join("\n");
    const lines = parse(`domains:\n${domains}\n`).split("\n");
    expect(lines).toHaveLength(21);
    expect(lines[20]).toMatch(/^x\.yaml: and \d+ more problems$/);
  });

  it("long values are cut, their length said", () => {
    const message = parse(`name: "${"y".repeat(5000)}"\ndomains: []\n`);
    expect(message).toContain(`got "${"y".repeat(60)}..." (5,000 characters)`);
    expect(message.length).toBeLessThan(400);
  });

  it("control and bidi characters in values and keys are escaped", () => {
    const message = parse(
      'name: "a\\e[31mred\\u202eevil"\ndomains:\n  - { "\\e]0;x\\u0007": 1 }\n',
    );
    expect(message).toContain('got "a\\u001b[31mred\\u202eevil"');
    expect(message).toContain('unknown key "\\u001b]0;x\\u0007"');
    expect(message).not.toMatch(UNSAFE);
  });

  it("whatever the text, a ScenarioError whose message is inert and bounded", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "binary", maxLength: 300 }),
        fc.constantFrom("x.yaml", "x.json"),
        (text, file) => {
          try {
            parseScenario(text, file);
          } catch (e) {
            expect(e).toBeInstanceOf(ScenarioError);
            const message = (e as Error).message;
            expect(message.replace(/^x\.(yaml|json)/gm, "")).not.toMatch(UNSAFE);
            expect(message.split("\n").length).toBeLessThanOrEqual(21);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
