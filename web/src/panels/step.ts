/**
 * The step panel: one access as the step API recorded it. The gva split into its indices, the
 * guest's walk (gptes), the P2M lookup, the hardware's walks (the shadow walk, or under HAP the
 * 2D walk as a grid), the TLB, the exits and what the VMM did, and the hpa. Every value carries a
 * data-field attribute so that the browser tests can read exactly what is shown.
 */

import type { PagingMode, StepExit, StepRecord, StepWalk } from "../../../src/api/index.js";
import { h, hex } from "../dom.js";

const LEVEL_NAMES = ["", "PT", "PD", "PDPT", "PML4"];

function field(name: string, value: string | number, extra: Record<string, string> = {}) {
  return h("code", { "data-field": name, ...extra }, String(value));
}

function section(title: string, ...body: (Node | null)[]): HTMLElement {
  return h("section", { class: "card", "aria-label": title }, h("h3", {}, title), ...body);
}

function gvaSplit(r: StepRecord): HTMLElement {
  const cells = r.indices.map((idx, i) => {
    const level = 4 - i;
    const hi = 47 - 9 * i;
    return h(
      "td",
      {},
      h("div", { class: "bits" }, `bits ${hi}..${hi - 8}`),
      h("div", {}, `L${level} (${LEVEL_NAMES[level]}) index `, field(`index-${level}`, idx)),
    );
  });
  return h(
    "table",
    { class: "split" },
    h(
      "tr",
      {},
      ...cells,
      h(
        "td",
        {},
        h("div", { class: "bits" }, "bits 11..0"),
        h("div", {}, "offset ", field("offset", hex(r.offset))),
      ),
    ),
  );
}

/** One row of a walk's table: a level, the table read, the index, the entry and its flags. */
interface LevelRow {
  level: number;
  table: number;
  index: number;
  entry: string;
  flags: string;
}

/**
 * A walk as a table of its levels. `id` names each cell's field (what the browser tests read):
 * column "table", "index", "entry" or "flags" at a level.
 */
function entriesTable(
  rows: LevelRow[],
  heads: { table: string; entry: string },
  id: (column: string, level: number) => string,
  attrs: Record<string, string> = {},
): HTMLElement {
  return h(
    "table",
    { class: "walk", ...attrs },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", {}, "level"),
        h("th", {}, heads.table),
        h("th", {}, "index"),
        h("th", {}, heads.entry),
        h("th", {}, "flags"),
      ),
    ),
    h(
      "tbody",
      {},
      rows.map((l) =>
        h(
          "tr",
          { "data-level": l.level },
          h("td", {}, `L${l.level}`),
          h("td", {}, field(id("table", l.level), hex(l.table))),
          h("td", {}, field(id("index", l.level), l.index)),
          h("td", {}, field(id("entry", l.level), l.entry)),
          h("td", {}, field(id("flags", l.level), l.flags)),
        ),
      ),
    ),
  );
}

function levelsTable(walk: StepWalk, prefix: string, frameLabel: string): HTMLElement {
  return entriesTable(
    walk.levels.map((l) => ({ ...l, table: l.tableMfn })),
    { table: frameLabel, entry: "entry" },
    (column, level) => `${prefix}-${column}-${level}`,
    { "data-walk": prefix },
  );
}

function guestWalk(r: StepRecord): HTMLElement {
  const g = r.guest;
  // The guest's entries are gptes: "gpte-<level>" (not "gpte-entry-<level>").
  const table = entriesTable(
    g.levels.map((l) => ({ ...l, table: l.tableGfn })),
    { table: "table gfn", entry: "gpte" },
    (column, level) => (column === "entry" ? `gpte-${level}` : `gpte-${column}-${level}`),
  );
  return section(
    "Guest walk (the guest's own tables, gva -> gpa)",
    h("p", {}, "CR3 root gfn ", field("guest-root", hex(g.rootGfn))),
    table,
    h("p", {}, "gfn ", field("gfn", hex(g.gfn)), " gpa ", field("gpa", g.gpa)),
  );
}

function p2m(r: StepRecord): HTMLElement {
  if (r.p2m === null) {
    return section("P2M lookup", h("p", {}, "native: no P2M, the gfn is the host frame"));
  }
  return section(
    "P2M lookup (gfn -> mfn)",
    h(
      "p",
      {},
      "gfn ",
      field("p2m-gfn", hex(r.p2m.gfn)),
      " -> mfn ",
      field("p2m-mfn", hex(r.p2m.mfn)),
      ", type ",
      field("p2m-type", r.p2m.type),
    ),
  );
}

/**
 * The 2D walk as a grid: a row per gfn translated (each guest table, then the data page), a
 * column per EPT level and one for the guest entry read; each cell numbered in walk order.
 */
function nestedGrid(walk: StepWalk, w: number): HTMLElement | null {
  const refs = walk.nested;
  if (!refs) return null;
  const rows: (HTMLElement | null)[][] = [[]];
  const labels: string[] = [];
  let row = 0;
  refs.forEach((ref, n) => {
    const col = ref.dim === "ept" ? 4 - ref.level : 4;
    const cell = h(
      "td",
      { class: `ref ${ref.dim}`, "data-ref": n + 1 },
      h("div", { class: "refn" }, `#${n + 1} ${ref.dim === "ept" ? "EPT" : "guest"} L${ref.level}`),
      h("div", {}, `gfn ${hex(ref.gfn)} tbl ${hex(ref.tableMfn)}[${ref.index}]`),
      h("div", { class: "entry" }, ref.entry),
      h("div", { class: "flags" }, ref.flags),
    );
    rows[row][col] = cell;
    if (ref.dim === "guest") {
      labels[row] = `guest L${ref.level} table`;
      rows[++row] = [];
    }
  });
  const head = ["gfn translated", "EPT L4", "EPT L3", "EPT L2", "EPT L1", "guest entry"];
  return h(
    "table",
    { class: "grid2d", "data-walk": `nested-${w}`, "data-refs": refs.length },
    h("caption", {}, `2D walk: ${refs.length} memory references`),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        head.map((t) => h("th", {}, t)),
      ),
    ),
    h(
      "tbody",
      {},
      rows
        .filter((r) => r.length > 0)
        .map((r, i) =>
          h(
            "tr",
            {},
            h("th", {}, labels[i] ?? "data page"),
            [0, 1, 2, 3, 4].map((c) => r[c] ?? h("td", { class: "empty" }, "")),
          ),
        ),
    ),
  );
}

/** The TLB sets the gva indexes, every way, the entry for this access marked in words. */
function tlbSets(r: StepRecord): HTMLElement[] {
  return r.tlbSets.map((set) => {
    const key = set.array.toLowerCase().replace(/ /g, "-");
    return h(
      "table",
      { class: "tlbset", "data-tlb": key },
      h("caption", {}, `${set.array} TLB, set ${set.set} (LRU age 0 = most recent)`),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["way", "tag", "page gva", "mfn", "allows", "age", ""].map((t) => h("th", {}, t)),
        ),
      ),
      h(
        "tbody",
        {},
        set.ways.map((w) =>
          h(
            "tr",
            { class: w.current ? "current" : w.valid ? "" : "invalid" },
            h("td", {}, w.way),
            h("td", {}, w.valid ? w.tag : "-"),
            h("td", {}, w.valid ? w.gva : "(empty)"),
            h("td", {}, hex(w.mfn)),
            h("td", {}, w.perms),
            h("td", {}, w.valid ? w.age : ""),
            h(
              "td",
              {},
              w.current ? field(`tlb-${key}-current`, `${w.gva} -> ${hex(w.mfn)}`) : "",
              w.current ? " <- this access" : "",
            ),
          ),
        ),
      ),
    );
  });
}

/** What the hardware walks in each mode, for the walk section's heading. */
const WALKED: Record<PagingMode, string> = {
  native: "the guest's own tables, natively",
  shadow: "the shadow tables the VMM built from the guest's",
  hap: "the guest's tables, each reference translated through the EPT (2D walk)",
  pv: "the guest's own tables, which hold machine frames (PV direct paging)",
};

function hardwareWalks(r: StepRecord, mode: PagingMode | undefined): HTMLElement {
  const tlb =
    r.tlb === "l1"
      ? "hit in the L1 TLB: no walk"
      : r.tlb === "l2"
        ? "missed the L1 TLB, hit in the L2 TLB (L1 filled): no walk"
        : "missed both TLBs: the page walker ran and the TLBs were filled";
  const last = r.walks.length - 1;
  const walks = r.walks.map((w, i) =>
    h(
      "details",
      { class: "hwwalk", open: i === last },
      h(
        "summary",
        {},
        `walk ${i + 1}: root ${w.nested ? "gfn" : "mfn"} `,
        field(`walk-${i}-root`, hex(w.rootMfn)),
        ", result ",
        field(`walk-${i}-result`, w.result),
      ),
      w.nested ? nestedGrid(w, i) : levelsTable(w, `walk-${i}`, "table mfn"),
    ),
  );
  return section(
    mode ? `TLB and hardware walk: ${WALKED[mode]}` : "TLB and hardware walk",
    h("p", {}, "TLB: ", field("tlb", r.tlb), ` (${tlb})`),
    h("div", { class: "tlbsets" }, tlbSets(r)),
    h("p", {}, "walks: ", field("walks", r.walks.length)),
    ...walks,
  );
}

function exitItem(e: StepExit, i: number): HTMLElement {
  return h(
    "li",
    { "data-exit": i },
    field(`exit-${i}-reason`, e.reason),
    " at gva ",
    field(`exit-${i}-gva`, e.gva),
    ": ",
    field(`exit-${i}-outcome`, e.outcome),
    e.guestWalk
      ? h(
          "details",
          {},
          h("summary", {}, `the VMM's software walk of the guest tables (${e.guestWalk.result})`),
          levelsTable(e.guestWalk, `exit-${i}-walk`, "table gfn"),
        )
      : null,
  );
}

function exits(r: StepRecord): HTMLElement {
  return section(
    "Exits to the VMM",
    h("p", {}, "exits: ", field("exits", r.exits.length)),
    r.exits.length > 0 ? h("ol", {}, r.exits.map(exitItem)) : null,
  );
}

/** Render a step; `modes` gives each domain's paging mode by name. */
export function renderStep(
  root: HTMLElement,
  r: StepRecord | null,
  modes: Record<string, PagingMode>,
): void {
  if (r === null) {
    root.replaceChildren(h("p", { "data-field": "no-step" }, "The run is over: no access left."));
    return;
  }
  root.replaceChildren(
    section(
      "Access",
      h(
        "p",
        {},
        "domain ",
        field("domain", r.domain),
        ", process ",
        field("process", r.process),
        " (pid ",
        field("pid", r.pid),
        "), ",
        field("access", r.access),
        " of gva ",
        field("gva", r.gva),
      ),
      gvaSplit(r),
    ),
    guestWalk(r),
    p2m(r),
    hardwareWalks(r, modes[r.domain]),
    exits(r),
    section(
      "Result",
      h(
        "p",
        {},
        "mfn ",
        field("mfn", hex(r.mfn)),
        ", hpa ",
        field("hpa", r.hpa),
        ", guest page faults ",
        field("guest-faults", r.guestFaults),
        ", cycles ",
        field("cycles", r.cycles),
      ),
    ),
  );
}
