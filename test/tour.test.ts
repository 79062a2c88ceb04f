/**
 * `memvisor run` with no scenario and no mode (what `npm start` runs): the default scenario
 * under shadow paging beside native, the overhead and the shadow counters explained a line each
 * with the comparison's own figures, and commands to try next that run. With a scenario, a mode
 * or --json, `run` prints a run's report as before.
 */

import { describe, expect, it } from "vitest";
import { type Comparison, DEFAULT_SCENARIO, type Report } from "../src/api/index.js";
import { formatInt } from "../src/cli/format.js";
import { TRY_NEXT } from "../src/cli/tour.js";
import { cli } from "./support/cli.js";

/** The tour's lines after "Try next:": [command, what it shows]. */
function tryNext(stdout: string): string[][] {
  const lines = stdout.split("\n");
  return lines
    .slice(lines.indexOf("Try next:") + 1)
    .filter((l) => l.trim() !== "")
    .map((l) => l.trim().split(/ {2,}/));
}

describe("memvisor run with no scenario and no mode", () => {
  it("sets shadow paging beside native on the default scenario and explains the figures", async () => {
    const r = await cli("run", "--accesses", "20000");
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const cmp = await cli("compare", "--modes", "native,shadow", "--accesses", "20000", "--json");
    const c = JSON.parse(cmp.stdout) as Comparison;
    const [, shadow] = c.results;
    expect(c.scenario).toBe(DEFAULT_SCENARIO);
    expect(r.stdout).toContain(`scenario ${DEFAULT_SCENARIO}`);
    expect(r.stdout).toMatch(/│ +│ +native │ +shadow │/);
    expect(r.stdout).toContain("(20,000 user accesses of the scenario's 2,000,000)");
    const line = (label: string) =>
      r.stdout.split("\n").find((l) => l.startsWith(`  ${label} `)) ?? "";
    expect(line("overhead")).toContain(`+${shadow.overhead_pct.toFixed(1)}% cycles against native`);
    expect(line("overhead")).toMatch(/most of them \w/);
    const counter = (name: string) =>
      shadow.report.domains.reduce((s, d) => s + (d.counters[name as "vmexits"] ?? 0), 0);
    expect(line("shadow_fault")).toContain(
      `${formatInt(shadow.shadow_fault)} #PF exits: ${formatInt(counter("shadow_fault_fixed"))} ` +
        `hidden (the VMM's), ${formatInt(counter("shadow_fault_bail_real_fault"))} true`,
    );
    expect(line("shadow_emulate_write")).toContain(
      `${formatInt(shadow.shadow_emulate_write)} writes to the guest's page tables`,
    );
    expect(line("vmexits")).toContain(
      `${formatInt(shadow.vmexits.total)} entries into the VMM: ${formatInt(shadow.vmexits.pf)} #PFs`,
    );
    expect(line("shadow_pages_peak")).toContain(`${formatInt(shadow.shadow_pages_peak)} (`);
    expect(tryNext(r.stdout)).toEqual(TRY_NEXT.map(([command, what]) => [command, what]));
    for (const l of r.stdout.split("\n")) expect(l.length, l).toBeLessThanOrEqual(100);
  });

  it("suggests commands that run", async () => {
    const r = await cli("run", "--accesses", "2000");
    const commands = tryNext(r.stdout).map(([command]) => command.split(" "));
    expect(commands.length).toBeGreaterThanOrEqual(4);
    for (const [memvisor, ...argv] of commands) {
      expect(memvisor).toBe("memvisor");
      if (argv[0] === "ui") {
        // A server that runs until Ctrl-C: its own tests start it; here, that it is a command.
        const help = await cli("help", "ui");
        expect(help.code).toBe(0);
        expect(help.stdout).toContain("serve the web visualizer");
        continue;
      }
      const small = argv[0] === "scenarios" ? argv : [...argv, "--accesses", "3000"];
      const ran = await cli(...small);
      expect(ran.code, `${small.join(" ")}: ${ran.stderr}`).toBe(0);
      expect(ran.stdout.length).toBeGreaterThan(100);
    }
  }, 60_000);

  it("keeps a run's report for a scenario, a mode or --json", async () => {
    const named = await cli("run", DEFAULT_SCENARIO, "--accesses", "2000");
    expect(named.stdout).toMatch(/^memvisor \S+ · scenario mixed · seed \d+ · mode native\n/);
    expect(named.stdout).not.toContain("Try next:");
    const mode = await cli("run", "--mode", "shadow", "--accesses", "2000");
    expect(mode.stdout).toContain("· mode shadow\n");
    expect(mode.stdout).not.toContain("Try next:");
    const text = await cli("run", "--accesses", "2000", "--format", "text");
    expect(text.stdout).toMatch(/^memvisor \S+ · scenario mixed · seed \d+ · mode native\n/);
    const json = await cli("run", "--accesses", "2000", "--json");
    const report = JSON.parse(json.stdout) as Report;
    expect(report.scenario).toBe(DEFAULT_SCENARIO);
    expect(report.domains.map((d) => d.mode)).toEqual(["native"]);
  });
});
