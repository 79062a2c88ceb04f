/** The compare view: the same scenario and seed under several modes, one column per mode. */

import type { Comparison, ModeResult } from "../../../src/api/index.js";
import { h } from "../dom.js";

const ROWS: [string, (r: ModeResult) => string | number][] = [
  // Cycles are priced in fractions (a CPI of 0.6): a whole cycle is as fine as they mean here.
  ["cycles", (r) => Math.round(r.cycles)],
  ["overhead against the first mode", (r) => `${r.overhead_pct.toFixed(1)}%`],
  ["user accesses", (r) => r.user_accesses],
  ["guest page faults", (r) => r.guest_page_faults],
  ["TLB misses", (r) => r.tlb_misses],
  ["walk references per walk", (r) => (r.walks ? r.walk_refs / r.walks : 0).toFixed(2)],
  ["VM exits", (r) => r.vmexits.total],
  ["  #PF exits", (r) => r.vmexits.pf],
  ["  CR3 exits", (r) => r.vmexits.cr3],
  ["  INVLPG exits", (r) => r.vmexits.invlpg],
  ["  EPT violations", (r) => r.vmexits.ept_violation],
  ["  hypercalls", (r) => r.vmexits.hypercall],
  ["shadow faults", (r) => r.shadow_fault],
  ["emulated page-table writes", (r) => r.shadow_emulate_write],
  ["shadow pages at the peak", (r) => r.shadow_pages_peak],
  ["EPT pages", (r) => r.ept_pages],
  ["P2M pages", (r) => r.p2m_pages],
  ["VMM memory (KiB)", (r) => r.vmm_memory_bytes / 1024],
];

function key(label: string): string {
  return label
    .trim()
    .replace(/[^a-zA-Z0-9]+/g, "-")
    .toLowerCase();
}

export function renderCompare(root: HTMLElement, c: Comparison): void {
  root.replaceChildren(
    h(
      "p",
      {},
      `${c.scenario}, seed ${c.seed}. The guest saw the same faults and data in every mode: `,
      h("strong", { "data-field": "same-guest-view" }, c.same_guest_view ? "yes" : "NO"),
    ),
    h(
      "table",
      { class: "compare" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", {}, ""),
          c.results.map((r) => h("th", { scope: "col" }, r.mode)),
        ),
      ),
      h(
        "tbody",
        {},
        ROWS.map(([label, get]) =>
          h(
            "tr",
            { "data-row": key(label) },
            h("th", { scope: "row" }, label),
            c.results.map((r) => h("td", { class: "num", "data-mode": r.mode }, String(get(r)))),
          ),
        ),
      ),
    ),
    // What the table cannot show: a mode that ended before its accesses, or could not run.
    ...c.results
      .filter((r) => r.report.ending.status === "early")
      .map((r) =>
        h(
          "p",
          { "data-field": "ended-early", "data-mode": r.mode },
          `${r.mode} ended early: ${r.report.ending.reasons.map((x) => `domain ${x.domain}: ${x.detail}`).join("; ")}`,
        ),
      ),
    ...c.not_run.map((n) =>
      h(
        "p",
        { "data-field": "not-run", "data-mode": n.mode },
        `${n.mode} could not run: ${n.reason}`,
      ),
    ),
  );
}
