#!/usr/bin/env node
// Usage: node scripts/same-reports.mjs REF_CHECKOUT [--modes own,native,shadow,hap,pv] [--accesses N]
//        [--only name,name] [--add field,field]
//
// Runs every built-in scenario at seed 42 with this checkout's and REF_CHECKOUT's bin/memvisor.js
// (both built) and reports any difference in their --json reports, ignoring what differs from run
// to run (provenance: commit, command line, wall time). A change that must not change results
// (a faster data structure, a leaner hot path) is judged by this (paths into either checkout
// are read as the same path); fields a change adds on
// purpose are named with --add and dropped from this checkout's report before comparing.
// Exit 0: identical; 1: a difference (the first differing path of each report is printed).

import { execFile } from "node:child_process";
import { cpus } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const args = process.argv.slice(2);
const ref = args.find((a) => !a.startsWith("--") && !args[args.indexOf(a) - 1]?.startsWith("--"));
if (!ref) {
  process.stderr.write("usage: node scripts/same-reports.mjs REF_CHECKOUT [--modes own,hap]\n");
  process.exit(2);
}
function opt(name, fallback) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
}
const modes = opt("--modes", "own").split(",");
const accesses = opt("--accesses", null);
const only = opt("--only", null)?.split(",");
const added = opt("--add", "").split(",").filter(Boolean);
const here = resolve(import.meta.dirname, "..");
const there = resolve(ref);

async function report(root, scenario, mode) {
  const argv = [join(root, "bin/memvisor.js"), "run", scenario, "--json", "--seed", "42"];
  if (mode !== "own") argv.push("--mode", mode);
  if (accesses) argv.push("--accesses", accesses);
  try {
    const { stdout } = await run(process.execPath, argv, { maxBuffer: 1 << 30 });
    // A trace's path names the checkout it was read from: the same file in both.
    const r = JSON.parse(stdout.replaceAll(root, "<checkout>"));
    delete r.provenance;
    return r;
  } catch (e) {
    return { failed: String(e.stderr || e.message).slice(0, 400) };
  }
}

function dropAdded(x) {
  if (Array.isArray(x)) return x.map(dropAdded);
  if (x === null || typeof x !== "object") return x;
  const out = {};
  for (const [k, v] of Object.entries(x)) if (!added.includes(k)) out[k] = dropAdded(v);
  return out;
}

function firstDiff(a, b, path = "") {
  if (
    typeof a !== typeof b ||
    Array.isArray(a) !== Array.isArray(b) ||
    (a === null) !== (b === null)
  )
    return `${path || "/"}: ${JSON.stringify(a)?.slice(0, 80)} vs ${JSON.stringify(b)?.slice(0, 80)}`;
  if (a === null || typeof a !== "object")
    return a === b ? null : `${path || "/"}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const d = firstDiff(a[k], b[k], `${path}/${k}`);
    if (d) return d;
  }
  return null;
}

const { stdout } = await run(process.execPath, [
  join(here, "bin/memvisor.js"),
  "scenarios",
  "--json",
]);
const listed = JSON.parse(stdout);
const names = (Array.isArray(listed) ? listed : listed.scenarios).map((s) => s.name);
const jobs = [];
for (const name of names) {
  if (only && !only.includes(name)) continue;
  for (const mode of modes) jobs.push({ name, mode });
}
let differ = 0;
let next = 0;
async function worker() {
  while (next < jobs.length) {
    const { name, mode } = jobs[next++];
    const [mine, theirs] = await Promise.all([report(here, name, mode), report(there, name, mode)]);
    const d = firstDiff(dropAdded(mine), theirs);
    if (d) differ++;
    process.stdout.write(`${d ? "DIFFER" : "same  "} ${name} (${mode})${d ? `  ${d}` : ""}\n`);
  }
}
await Promise.all(Array.from({ length: Math.max(1, Math.floor(cpus().length / 2)) }, worker));
process.stdout.write(`${jobs.length - differ} of ${jobs.length} reports identical\n`);
process.exitCode = differ > 0 ? 1 : 0;
