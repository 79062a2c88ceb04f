/**
 * The three address spaces, each with one colour and one label everywhere on the page: guest
 * virtual (gva), guest physical (gpa, gfn), host physical (hpa, mfn). Every hex address the page
 * shows goes through here, so a student tells them apart at a glance.
 */

import { h } from "./dom.js";

export type Space = "gva" | "gpa" | "hpa";

/** The space each word names. */
const SPACE_OF: Record<string, Space> = {
  gva: "gva",
  gpa: "gpa",
  gfn: "gpa",
  hpa: "hpa",
  mfn: "hpa",
};

export const SPACE_TITLES: Record<Space, string> = {
  gva: "guest virtual address: what the program uses",
  gpa: "guest physical: what the guest kernel thinks is RAM (gpa; its frame number, gfn)",
  hpa: "host physical: the machine's real memory (hpa; its frame number, mfn)",
};

/** A value in its space's colour, with the space named in its tooltip. */
export function spaced(space: Space, child: Node | string): HTMLElement {
  return h("span", { class: `addr sp-${space}`, title: SPACE_TITLES[space] }, child);
}

/**
 * A sentence of the step API with each "gva 0x..", "gfn 0x..", "mfn 0x..", "gpa 0x..",
 * "hpa 0x.." set in its space's colour.
 */
export function withSpaces(text: string): (Node | string)[] {
  const out: (Node | string)[] = [];
  const re = /\b(gva|gpa|gfn|hpa|mfn) (0x[0-9a-f]+)/g;
  let last = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(spaced(SPACE_OF[m[1]], m[0]));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}
