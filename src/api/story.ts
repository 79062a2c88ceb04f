/**
 * One step as a story: the events the simulator recorded while it made one access (the vCPU,
 * the VMM, the P2M, the guest kernel; hw/step-trace.ts), each told as one sentence in Xen's
 * words with its details under it. Every address names its space and is written in hex.
 */

import type { PagingMode } from "../config/scenario.js";
import { formatGva } from "../hw/addr.js";
import { EPT_VIOLATION } from "../hw/nested.js";
import { describePte, PFEC_I, PFEC_P, PFEC_RSVD, PFEC_U, PFEC_W, pteFrame } from "../hw/pte.js";
import type { TraceEvent, WalkTrace } from "../hw/step-trace.js";
import { hex64 } from "./inspect.js";
import type { StepWalk } from "./step.js";

/** The kinds of event a step's story tells, in the words a student looks for. */
export const STEP_EVENT_KINDS = [
  "tlb",
  "walk",
  "pf-exit",
  "guest-walk",
  "true-fault",
  "hidden-fault",
  "shadow-new",
  "write-protect",
  "shadow-entry",
  "p2m-populate",
  "emulate-write",
  "revalidate",
  "unshadow",
  "shadow-reclaim",
  "cow-break",
  "share-merge",
  "balloon-inflate",
  "balloon-deflate",
  "ept-violation",
  "hypercall",
  "cr3",
  "invlpg",
  "pf-bounce",
  "guest-fault",
  "process-exit",
  "syscall",
  "result",
] as const;

export type StepEventKind = (typeof STEP_EVENT_KINDS)[number];

/** One event of a step, told. */
export interface StepEvent {
  kind: StepEventKind;
  /** One sentence: what happened, with its addresses (each named: gva, gfn, mfn) in hex. */
  text: string;
  /** Details, one line each (a walk's levels, an entry's flags). */
  details: string[];
  /** The values the sentence names, by name ("gva", "gfn", "mfn", "old", "new", "code"...). */
  values: Record<string, string>;
  /** For a hardware walk: its place in the step's walks. */
  walk?: number;
  /** For the VMM's walk of the guest's tables: the walk (gfns). */
  guestWalk?: StepWalk;
}

/** A number in hex, or "-" for none. */
export function hexOf(n: number | undefined): string {
  return n === undefined || n < 0 ? "-" : `0x${n.toString(16)}`;
}

/** A #PF error code in words (SDM 4.7): "0x6 (not present, write, user mode)". */
export function decodeErrorCode(code: number): string {
  const words = [
    (code & PFEC_P) !== 0 ? "protection violation" : "not present",
    (code & PFEC_W) !== 0 ? "write" : "read",
    (code & PFEC_U) !== 0 ? "user mode" : "kernel mode",
  ];
  if ((code & PFEC_RSVD) !== 0) words.push("reserved bit set");
  if ((code & PFEC_I) !== 0) words.push("instruction fetch");
  return `0x${code.toString(16)} (${words.join(", ")})`;
}

const LEVEL_NAMES = ["", "L1 (page table)", "L2 (page directory)", "L3 (PDPT)", "L4 (PML4)"];

/** What the hardware walks in each mode. */
const WALKED: Record<PagingMode, string> = {
  native: "the guest's own page tables",
  shadow: "the shadow page tables (the VMM's virtual TLB)",
  hap: "the guest's page tables, each reference translated through the EPT (2D walk)",
  pv: "the guest's own page tables, which hold mfns (PV direct paging)",
};

/** A walk's levels, one line each: the table's host frame, the entry read and its flags. */
function walkLines(w: WalkTrace, frame: "mfn", entry: string): string[] {
  return w.levels.map(
    (l) =>
      `${LEVEL_NAMES[l.level]} table ${frame} ${hexOf(l.tableMfn)} entry [${l.index}]: ${entry} ${hex64(l.lo, l.hi)} (${describePte(l.lo, l.hi)})`,
  );
}

/** Where a failed walk stopped: the level of its last entry read. */
function stopLevel(w: WalkTrace): number {
  return w.levels.length > 0 ? w.levels[w.levels.length - 1].level : 4;
}

function event(
  kind: StepEventKind,
  text: string,
  values: Record<string, string>,
  details: string[] = [],
): StepEvent {
  return { kind, text, details, values };
}

const FIXES: Record<string, string> = {
  demand: "demand paging: it allocates a guest page, zeroes it and writes the gpte that maps it",
  file: "a file page: it maps the page cache's frame (reading the page in if it is not cached)",
  cow: "copy on write: it copies the page (or reuses it if it is the last mapping) and makes the gpte writable",
  huge: "a 2 MiB page: it allocates and maps a huge page",
  spurious: "nothing to do (the gpte already allows it: a stale TLB entry)",
  segv: "no area of the process allows the access: SIGSEGV, the process is killed",
};

/** Tell one recorded event; `walks` are the step's hardware walks (for walk events). */
export function tellEvent(e: TraceEvent, walks: WalkTrace[], mode: PagingMode): StepEvent {
  const gva = e.gva === undefined || e.gva < 0 ? "-" : formatGva(e.gva);
  const gfn = hexOf(e.gfn);
  const mfn = hexOf(e.mfn);
  switch (e.kind) {
    case "walk": {
      const w = walks[e.index ?? 0];
      const code = e.code ?? -1;
      const refs = w.nested ? `, ${w.nested.length} memory references` : "";
      const root = w.nested ? `guest root gfn ${hexOf(w.root)}` : `root mfn ${hexOf(w.root)}`;
      const lines = w.nested
        ? w.nested.map(
            (r, n) =>
              `#${n + 1} ${r.dim === "ept" ? "EPT" : "guest"} L${r.level} for gfn ${hexOf(r.gfn)}: table mfn ${hexOf(r.tableMfn)} [${r.index}] = ${hex64(r.lo, r.hi)}`,
          )
        : walkLines(w, "mfn", "entry");
      const ev =
        code < 0 && code !== EPT_VIOLATION
          ? event(
              "walk",
              `The hardware walks ${WALKED[mode]} from ${root}${refs}: it reaches mfn ${hexOf(lastFrame(w))} and fills the TLB.`,
              { root: hexOf(w.root), result: "ok", mfn: hexOf(lastFrame(w)) },
              lines,
            )
          : code === EPT_VIOLATION
            ? event(
                "walk",
                `The hardware walks ${WALKED[mode]} from ${root}${refs}: an EPT entry does not allow it (EPT violation).`,
                { root: hexOf(w.root), result: "EPT violation" },
                lines,
              )
            : event(
                "walk",
                `The hardware walks ${WALKED[mode]} from ${root}${refs}: it stops at ${LEVEL_NAMES[stopLevel(w)]} and raises #PF, error code ${decodeErrorCode(code)}.`,
                { root: hexOf(w.root), result: `#PF 0x${code.toString(16)}`, code: hexOf(code) },
                lines,
              );
      ev.walk = e.index ?? 0;
      return ev;
    }
    case "pf-exit":
      return event(
        "pf-exit",
        `#PF exit to the VMM at gva ${gva}, error code ${decodeErrorCode(e.code ?? 0)}.`,
        { gva, code: hexOf(e.code) },
      );
    case "guest-walk": {
      const w = e.walk as WalkTrace;
      const ok = (e.code ?? -1) < 0;
      const leaf = w.levels[w.levels.length - 1];
      // A large leaf maps the gva's page inside it: its base frame plus the gva's page number.
      const span = leaf?.level === 2 ? 512 : leaf?.level === 3 ? 262144 : 1;
      const pageGfn = leaf
        ? pteFrame(leaf.lo, leaf.hi) + (Math.floor((e.gva ?? 0) / 4096) % span)
        : -1;
      return event(
        "guest-walk",
        ok
          ? `The VMM walks the guest's own page tables in software (guest CR3 gfn ${hexOf(w.root)}): the gptes map gva ${gva} to gfn ${hexOf(pageGfn)}, and allow the access.`
          : `The VMM walks the guest's own page tables in software (guest CR3 gfn ${hexOf(w.root)}): at ${LEVEL_NAMES[stopLevel(w)]} the gpte does not allow the access (error code ${decodeErrorCode(e.code ?? 0)}).`,
        { gva, root: hexOf(w.root), result: ok ? "ok" : hexOf(e.code) },
        walkLines(w, "mfn", "gpte"),
      );
    }
    case "true-fault":
      return event(
        "true-fault",
        `True fault: the guest's own tables do not allow this access to gva ${gva}, so the guest would fault natively too. The VMM injects #PF ${decodeErrorCode(e.code ?? 0)} into the guest.`,
        { gva, code: hexOf(e.code) },
      );
    case "hidden-fault":
      return event(
        "hidden-fault",
        `Hidden fault: the guest's tables allow the access to gva ${gva} (gfn ${gfn}); only the shadow lacked it. The VMM fixed the shadow and resumes the guest, which never sees this fault.`,
        { gva, gfn, mfn },
      );
    case "shadow-new":
      return event(
        "shadow-new",
        `The VMM shadows guest table gfn ${gfn} for the first time: a new ${e.note} shadow in pool frame mfn ${mfn}.`,
        { gfn, mfn, type: e.note ?? "" },
      );
    case "write-protect":
      return event(
        "write-protect",
        `The VMM write-protects guest table gfn ${gfn} (mfn ${mfn}): ${e.count} writable mapping${e.count === 1 ? "" : "s"} of it made read-only, so every guest write to it will trap.`,
        { gfn, mfn, count: String(e.count ?? 0) },
      );
    case "shadow-entry": {
      const spte = hex64(e.lo ?? 0, e.hi ?? 0);
      const gpte = hex64(e.oldLo ?? 0, e.oldHi ?? 0);
      const target = pteFrame(e.lo ?? 0, e.hi ?? 0);
      return event(
        "shadow-entry",
        `The VMM builds the shadow entry: sl1e [${e.index}] in ${e.level === 2 ? "FL1 shadow (the guest's 2 MiB page splintered into 4 KiB entries)" : "L1 shadow"} mfn ${mfn} = ${spte}, from the gpte ${gpte} and the P2M entry gfn ${gfn} -> mfn ${hexOf(target)} (${e.note === "populated" ? "populated just now" : "found there"}).`,
        { mfn, index: String(e.index), spte, gpte, gfn, target: hexOf(target) },
        [
          `gpte flags: ${describePte(e.oldLo ?? 0, e.oldHi ?? 0)}`,
          `spte flags: ${describePte(e.lo ?? 0, e.hi ?? 0)}`,
        ],
      );
    }
    case "p2m-populate":
      return event(
        "p2m-populate",
        e.note === "ram_paged"
          ? `The P2M swaps gfn ${gfn} back in from the host's swap: new host frame mfn ${mfn}.`
          : `The P2M is populated on demand: gfn ${gfn} had no host frame (${e.note}); the VMM allocates mfn ${mfn} and fills the P2M entry gfn ${gfn} -> mfn ${mfn}.`,
        { gfn, mfn, was: e.note ?? "" },
      );
    case "emulate-write": {
      const old = hex64(e.oldLo ?? 0, e.oldHi ?? 0);
      const now = hex64(e.lo ?? 0, e.hi ?? 0);
      const op =
        e.note === "zero"
          ? "zeroes the whole page"
          : e.note === "copy"
            ? "copies a whole page onto it"
            : `writes entry [${e.index}]: ${old} -> ${now}`;
      const who =
        e.note === "ptwr"
          ? "Xen emulates the store into the L1 table after validating it (ptwr)"
          : "the VMM emulates the write into guest memory";
      return event(
        "emulate-write",
        `The guest writes its page table: the store at gva ${gva} hits write-protected guest table gfn ${gfn} (mfn ${mfn}, an L${e.level} table) and traps; ${who}: it ${op}.`,
        { gva, gfn, mfn, index: String(e.index), old, new: now },
        e.note === "store" || e.note === "ptwr"
          ? [
              `old: ${describePte(e.oldLo ?? 0, e.oldHi ?? 0)}`,
              `new: ${describePte(e.lo ?? 0, e.hi ?? 0)}`,
            ]
          : [],
      );
    }
    case "revalidate": {
      const shadows = e.shadows ?? [];
      const range = e.index === e.count ? `entry [${e.index}]` : `entries [${e.index}..${e.count}]`;
      return event(
        "revalidate",
        shadows.length === 0
          ? `No shadow of gfn ${gfn} is left to revalidate.`
          : `The VMM revalidates ${range} of ${shadows.map((s) => `the L${s.level} shadow mfn ${hexOf(s.mfn)}`).join(" and ")} of guest table gfn ${gfn} (sh_validate_guest_entry).`,
        { gfn, shadows: shadows.map((s) => hexOf(s.mfn)).join(" ") },
      );
    }
    case "unshadow":
      return event(
        "unshadow",
        `The VMM unshadows guest page gfn ${gfn}: ${e.note}; its ${(e.shadows ?? []).length} shadow${(e.shadows ?? []).length === 1 ? "" : "s"} go back to the pool and the page is writable again.`,
        { gfn, why: e.note ?? "" },
      );
    case "shadow-reclaim":
      return event(
        "shadow-reclaim",
        e.note === "1"
          ? `The shadow pool is full: the VMM reclaims ${e.count} pages by unpinning the least recently used top-level shadows (shadow_prealloc stage 1).`
          : `The shadow pool is full: the VMM unhooks every top-level shadow's entries, freeing all lower shadows (${e.count} pages; shadow_prealloc stage 2).`,
        { count: String(e.count) },
      );
    case "cow-break":
      return event(
        "cow-break",
        e.note === "last"
          ? `Copy on write: gfn ${gfn} was the last user of shared mfn ${mfn}; the write takes the frame back as the domain's own.`
          : `Copy on write: gfn ${gfn} was a shared page (mfn ${mfn}); the write breaks the sharing: the page is copied into new mfn ${hexOf(e.count)}.`,
        { gfn, mfn, new: hexOf(e.count) },
      );
    case "share-merge":
      return event(
        "share-merge",
        e.note === "first"
          ? `Page sharing: gfn ${gfn} (mfn ${mfn}) has the same content as another page: it becomes a shared, read-only frame.`
          : `Page sharing: gfn ${gfn} has the same content as shared mfn ${mfn}: merged, and its own frame mfn ${hexOf(e.count)} is freed.`,
        { gfn, mfn },
      );
    case "balloon": {
      const inflate = e.note === "decrease_reservation";
      return event(
        inflate ? "balloon-inflate" : "balloon-deflate",
        inflate
          ? `The balloon inflates: the guest's balloon driver hands ${e.count} of ${e.index} guest pages (the first gfn ${gfn}) to the VMM (XENMEM_decrease_reservation); their host frames are freed.`
          : `The balloon deflates: ${e.count} of ${e.index} guest pages (the first gfn ${gfn}) are given back (XENMEM_populate_physmap); each gets a host frame at its first touch.`,
        { gfn, count: String(e.count) },
      );
    }
    case "ept-violation":
      return event(
        "ept-violation",
        `EPT violation exit for gfn ${gfn} (${e.note}); the EPT now maps gfn ${gfn} -> mfn ${mfn}.`,
        { gfn, mfn },
      );
    case "hypercall":
      return event("hypercall", `Hypercall ${hypercallText(e)}.`, {
        name: e.note ?? "",
        answer: String(e.code ?? 0),
      });
    case "cr3":
      return event(
        "cr3",
        `CR3 write exit: the guest loads its table gfn ${gfn}; the VMM finds or builds its top-level shadow and loads shadow root mfn ${mfn}.`,
        { gfn, mfn },
      );
    case "invlpg":
      return event(
        "invlpg",
        `INVLPG exit for gva ${gva}: ${e.count ? "the VMM drops the shadow leaf entry and the TLB entry" : "no shadow leaf maps it; the TLB entry is dropped"}.`,
        { gva },
      );
    case "pf-bounce":
      return event(
        "pf-bounce",
        `#PF at gva ${gva} enters Xen first and is bounced to the guest's handler, error code ${decodeErrorCode(e.code ?? 0)}.`,
        { gva, code: hexOf(e.code) },
      );
    case "guest-fault":
      return event(
        "guest-fault",
        `The guest kernel's #PF handler runs for gva ${gva}: ${FIXES[e.note ?? ""] ?? e.note}${(e.gfn ?? -1) >= 0 ? `; the gpte now maps gfn ${gfn}` : ""}.`,
        { gva, how: e.note ?? "", gfn },
      );
    case "process-exit":
      return event(
        "process-exit",
        `The guest kernel ends process pid ${e.count} ${e.note} and frees its page tables; the VMM is not told (it sees only the writes).`,
        { pid: String(e.count) },
      );
  }
}

function lastFrame(w: WalkTrace): number {
  if (w.nested && w.nested.length > 0) {
    const r = w.nested[w.nested.length - 1];
    return pteFrame(r.lo, r.hi);
  }
  const l = w.levels[w.levels.length - 1];
  return l ? pteFrame(l.lo, l.hi) : -1;
}

function hypercallText(e: TraceEvent): string {
  const answer = (e.code ?? 0) < 0 ? `Xen refuses it (errno ${-(e.code ?? 0)})` : "Xen does it";
  switch (e.note) {
    case "mmu_update":
      return e.count
        ? `mmu_update: ${e.count} request${e.count === 1 ? "" : "s"}, the first writes entry [${e.index}] of table mfn ${hexOf(e.mfn)} = ${hex64(e.lo ?? 0, e.hi ?? 0)}; ${answer}`
        : `mmu_update with no request; ${answer}`;
    case "update_va_mapping":
      return `update_va_mapping: the L1 entry of gva ${formatGva(e.gva ?? 0)} = ${hex64(e.lo ?? 0, e.hi ?? 0)}; ${answer}`;
    case "memory_op":
      return `memory_op for ${e.count} pages; Xen answers ${e.code} done`;
    default:
      return `${e.note} (${e.gva !== undefined ? `gva ${formatGva(e.gva)}` : `mfn ${hexOf(e.mfn)}`}); ${answer}`;
  }
}
