/**
 * The step panel: one access as the step API recorded it. First its story: what the hardware,
 * the VMM and the guest kernel did, in order, a sentence each with its details folded under it.
 * Then the reference cards: the gva split into its indices, the guest's walk (gptes), the P2M
 * lookup, the TLB sets, the hardware's walks (the shadow walk, or under HAP the 2D walk as a
 * grid), the exits. Every value carries a data-field attribute so that the browser tests can
 * read exactly what is shown; every address is set in its space's colour (spaces.ts).
 */

import type {
  PagingMode,
  StepEvent,
  StepExit,
  StepRecord,
  StepWalk,
} from "../../../src/api/index.js";
import { h, hex } from "../dom.js";
import { type Space, spaced, withSpaces } from "../spaces.js";

const LEVEL_NAMES = ["", "PT", "PD", "PDPT", "PML4"];

function field(name: string, value: string | number, space: Space | null = null): HTMLElement {
  const code = h("code", { "data-field": name }, String(value));
  return space === null ? code : spaced(space, code);
}

/** The cards a student opened: they stay open from step to step. */
const opened = new Set<string>(["story", "guest", "p2m", "exits"]);

function section(key: string, title: string, ...body: (Node | null)[]): HTMLElement {
  const card = h(
    "details",
    { class: "card", "data-key": key, open: opened.has(key) },
    h("summary", {}, h("h3", {}, title)),
    ...body,
  );
  card.addEventListener("toggle", () => {
    if (card.open) opened.add(key);
    else opened.delete(key);
  });
  return card;
}

/** Short names of the story's events, for the badge before each sentence. */
export const EVENT_LABELS: Record<StepEvent["kind"], string> = {
  tlb: "TLB",
  walk: "hardware walk",
  "pf-exit": "#PF exit",
  "guest-walk": "VMM walks guest tables",
  "true-fault": "true fault",
  "hidden-fault": "hidden fault",
  "shadow-new": "new shadow",
  "write-protect": "write-protect",
  "shadow-entry": "shadow entry",
  "p2m-populate": "P2M populate",
  "emulate-write": "emulated write",
  revalidate: "revalidate",
  unshadow: "unshadow",
  "shadow-reclaim": "shadow reclaim",
  "cow-break": "copy on write",
  "share-merge": "pages merged",
  "balloon-inflate": "balloon inflate",
  "balloon-deflate": "balloon deflate",
  "ept-violation": "EPT violation",
  hypercall: "hypercall",
  cr3: "CR3 exit",
  invlpg: "INVLPG exit",
  "pf-bounce": "#PF bounce",
  "guest-fault": "guest #PF handler",
  "process-exit": "process exit",
  syscall: "system call",
  result: "result",
};

/** The step's events in order: a badge, the sentence, the details folded under it. */
function story(r: StepRecord): HTMLElement {
  return section(
    "story",
    `What happened, in order (${r.events.length} events)`,
    h(
      "ol",
      { class: "story" },
      r.events.map((e, n) => {
        const key = `event-${e.kind}`;
        const more =
          e.details.length > 0
            ? h(
                "details",
                { "data-key": key, open: opened.has(key) },
                h("summary", {}, "details"),
                h(
                  "ul",
                  {},
                  e.details.map((d) => h("li", {}, withSpaces(d))),
                ),
              )
            : null;
        more?.addEventListener("toggle", () => {
          if ((more as HTMLDetailsElement).open) opened.add(key);
          else opened.delete(key);
        });
        return h(
          "li",
          { id: `ev-${n}`, "data-event": e.kind, class: `ev ev-${e.kind}` },
          h("span", { class: "badge", "data-field": `event-${n}-kind` }, EVENT_LABELS[e.kind]),
          " ",
          h("span", { "data-field": `event-${n}-text` }, withSpaces(e.text)),
          more,
        );
      }),
    ),
  );
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
        h("div", {}, "offset ", field("offset", hex(r.offset), "gva")),
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
  heads: { table: string; entry: string; space: Space },
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
          h("td", {}, field(id("table", l.level), hex(l.table), heads.space)),
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
    { table: frameLabel, entry: "entry", space: frameLabel.endsWith("gfn") ? "gpa" : "hpa" },
    (column, level) => `${prefix}-${column}-${level}`,
    { "data-walk": prefix },
  );
}

function guestWalk(r: StepRecord): HTMLElement {
  const g = r.guest;
  // The guest's entries are gptes: "gpte-<level>" (not "gpte-entry-<level>").
  const table = entriesTable(
    g.levels.map((l) => ({ ...l, table: l.tableGfn })),
    { table: "table gfn", entry: "gpte", space: "gpa" },
    (column, level) => (column === "entry" ? `gpte-${level}` : `gpte-${column}-${level}`),
  );
  return section(
    "guest",
    "Guest walk (the guest's own tables, gva -> gpa)",
    h("p", {}, "CR3 root gfn ", field("guest-root", hex(g.rootGfn), "gpa")),
    table,
    h("p", {}, "gfn ", field("gfn", hex(g.gfn), "gpa"), " gpa ", field("gpa", g.gpa, "gpa")),
  );
}

function p2m(r: StepRecord): HTMLElement {
  if (r.p2m === null) {
    return section("p2m", "P2M lookup", h("p", {}, "native: no P2M, the gfn is the host frame"));
  }
  return section(
    "p2m",
    "P2M lookup (gfn -> mfn)",
    h(
      "p",
      {},
      "gfn ",
      field("p2m-gfn", hex(r.p2m.gfn), "gpa"),
      " -> mfn ",
      field("p2m-mfn", hex(r.p2m.mfn), "hpa"),
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
      h(
        "div",
        {},
        spaced("gpa", `gfn ${hex(ref.gfn)}`),
        " ",
        spaced("hpa", `mfn ${hex(ref.tableMfn)}`),
        `[${ref.index}]`,
      ),
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

/**
 * The TLB sets the gva indexes: the valid ways (the entry for this access marked in words), and
 * how many ways are empty, in one line, so that a mostly empty set takes little room.
 */
function tlbSets(r: StepRecord): HTMLElement[] {
  return r.tlbSets.map((set) => {
    const key = set.array.toLowerCase().replace(/ /g, "-");
    const empty = set.ways.filter((w) => !w.valid).length;
    return h(
      "table",
      { class: "tlbset", "data-tlb": key },
      h(
        "caption",
        {},
        `${set.array} TLB, set ${set.set}: ${set.ways.length - empty} of ${set.ways.length} ways valid (age 0 = most recent)`,
      ),
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
        set.ways
          .filter((w) => w.valid)
          .map((w) =>
            h(
              "tr",
              { class: w.current ? "current" : "" },
              h("td", {}, w.way),
              h("td", {}, w.tag),
              h("td", {}, spaced("gva", w.gva)),
              h("td", {}, spaced("hpa", hex(w.mfn))),
              h("td", {}, w.perms),
              h("td", {}, w.age),
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

function hardwareWalks(r: StepRecord): HTMLElement {
  const walks = r.walks.map((w, i) =>
    h(
      "details",
      { class: "hwwalk" },
      h(
        "summary",
        {},
        `walk ${i + 1}: root ${w.nested ? "gfn" : "mfn"} `,
        field(`walk-${i}-root`, hex(w.rootMfn), w.nested ? "gpa" : "hpa"),
        ", result ",
        field(`walk-${i}-result`, w.result),
      ),
      w.nested ? nestedGrid(w, i) : levelsTable(w, `walk-${i}`, "table mfn"),
    ),
  );
  return section(
    "walks",
    `Hardware walks during the step (${r.walks.length})`,
    h("p", {}, "walks: ", field("walks", r.walks.length)),
    ...walks,
  );
}

function tlbCard(r: StepRecord): HTMLElement {
  const tlb =
    r.tlb === "l1"
      ? "hit in the L1 TLB: no walk"
      : r.tlb === "l2"
        ? "missed the L1 TLB, hit in the L2 TLB (L1 filled): no walk"
        : "missed both TLBs: the page walker ran and the TLBs were filled";
  return section(
    "tlb",
    `TLB: ${r.tlb}`,
    h("p", {}, "TLB: ", field("tlb", r.tlb), ` (${tlb})`),
    h("div", { class: "tlbsets" }, tlbSets(r)),
  );
}

function exitItem(e: StepExit, i: number): HTMLElement {
  return h(
    "li",
    { "data-exit": i },
    field(`exit-${i}-reason`, e.reason),
    e.gva !== "" ? [" at gva ", field(`exit-${i}-gva`, e.gva, "gva")] : null,
    ": ",
    h("span", { "data-field": `exit-${i}-outcome` }, withSpaces(e.outcome)),
    " ",
    h("a", { href: `#ev-${e.event}` }, `(event ${e.event + 1})`),
    e.guestWalk
      ? h(
          "details",
          {},
          h("summary", {}, `the VMM's software walk of the guest tables (${e.guestWalk.result})`),
          levelsTable(e.guestWalk, `exit-${i}-walk`, "table mfn"),
        )
      : null,
  );
}

function exits(r: StepRecord): HTMLElement {
  return section(
    "exits",
    `Exits to the VMM (${r.exits.length})`,
    h("p", {}, "exits: ", field("exits", r.exits.length)),
    r.exits.length > 0 ? h("ol", {}, r.exits.map(exitItem)) : null,
  );
}

/** Render a step; `mode` is its domain's paging mode, `n` the access's number in the run. */
export function renderStep(
  root: HTMLElement,
  r: StepRecord | null,
  mode: PagingMode | undefined,
  n: number,
): void {
  if (r === null) {
    root.replaceChildren(h("p", { "data-field": "no-step" }, "The run is over: no access left."));
    return;
  }
  root.replaceChildren(
    h(
      "div",
      { class: "access card" },
      h(
        "p",
        {},
        h("strong", {}, `Access ${n}`),
        ": domain ",
        field("domain", r.domain),
        mode ? ` (${mode})` : "",
        ", process ",
        field("process", r.process),
        " (pid ",
        field("pid", r.pid),
        "), ",
        field("access", r.access),
        " of gva ",
        field("gva", r.gva, "gva"),
        " -> gpa ",
        field("gpa-top", r.guest.gpa, "gpa"),
        " -> hpa ",
        field("hpa", r.hpa, "hpa"),
        " (mfn ",
        field("mfn", hex(r.mfn), "hpa"),
        "); guest page faults ",
        field("guest-faults", r.guestFaults),
        ", cycles ",
        // Cycles are priced in fractions (a CPI of 0.6): a tenth is as fine as they mean.
        field("cycles", Math.round(r.cycles * 10) / 10),
      ),
      gvaSplit(r),
    ),
    story(r),
    guestWalk(r),
    p2m(r),
    tlbCard(r),
    hardwareWalks(r),
    exits(r),
  );
}
