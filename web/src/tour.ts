/**
 * The guided tour: the article's sequence as stops, each the next access whose story has an
 * event of one kind, in the built-in scenario `tour`, with one sentence of explanation.
 */

import type { StepEventKind } from "../../src/api/index.js";

export interface TourStop {
  kind: StepEventKind;
  text: string;
}

export const TOUR_SCENARIO = "tour";

export const TOUR_STOPS: readonly TourStop[] = [
  {
    kind: "write-protect",
    text: "A process starts. The VMM shadows each of its page tables the first time the hardware needs it, and write-protects the guest's table, so that the guest's writes to it will trap.",
  },
  {
    kind: "hidden-fault",
    text: "A hidden fault: the guest's own tables map the address, only the shadow (the virtual TLB) lacks it. The VMM fills the shadow entry from the guest entry and the P2M; the guest never sees the fault.",
  },
  {
    kind: "true-fault",
    text: "A true fault: the guest's own tables do not map the address. The VMM injects the #PF; the guest kernel allocates a page, and the P2M gives it a host frame the first time it is touched.",
  },
  {
    kind: "emulate-write",
    text: "The guest kernel writes one of its page tables. The page is write-protected, so the store traps; the VMM emulates it and revalidates the shadow entries it changes.",
  },
  {
    kind: "process-exit",
    text: "A process exits. The guest kernel frees its page tables; the VMM is not told: it sees only the writes to the tables.",
  },
  {
    kind: "unshadow",
    text: "The VMM guesses that a page is no longer a page table (two zero writes in a row: Xen's early unshadow) and removes its shadows, reclaiming their memory.",
  },
  {
    kind: "balloon-inflate",
    text: "The host lowers the guest's memory target. The balloon driver in the guest allocates guest pages and hands them to the VMM, which frees their host frames.",
  },
  {
    kind: "share-merge",
    text: "The page-sharing scanner finds pages with the same content and merges them into one read-only host frame.",
  },
  {
    kind: "cow-break",
    text: "A write to a shared page: the VMM breaks the sharing with a copy (copy on write), so that no one sees another's data.",
  },
];
