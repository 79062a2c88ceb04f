/**
 * The frame map: one pixel per host frame, row after row (512 frames, 2 MiB, a row: a bigger
 * host has more rows), coloured by owner. A legend gives each owner a letter and its count in words, so the
 * map reads without colour too.
 */

import { h } from "../dom.js";

/** Colours of the fixed owners (free, shadow, vmm, shared), then one per domain. */
const FIXED = ["#e8e8e8", "#d62728", "#7f3fbf", "#2ca02c"];
/** Domain colours, by the domain's place in the scenario: the charts use the same ones. */
export const DOMAIN_COLOURS = [
  "#1f77b4",
  "#ff7f0e",
  "#8c564b",
  "#e377c2",
  "#17becf",
  "#bcbd22",
  "#393b79",
];
const LETTERS = ["·", "S", "V", "H"];
const DESCRIPTIONS = [
  "free",
  "shadow pool (shadow page tables)",
  "VMM tables (EPT, P2M)",
  "shared (page sharing)",
];

function colour(code: number): string {
  return code < FIXED.length
    ? FIXED[code]
    : DOMAIN_COLOURS[(code - FIXED.length) % DOMAIN_COLOURS.length];
}

function letter(code: number): string {
  return code < LETTERS.length ? LETTERS[code] : String(code - LETTERS.length + 1);
}

function rgb(css: string): [number, number, number] {
  const n = Number.parseInt(css.slice(1), 16);
  return [n >> 16, (n >> 8) & 255, n & 255];
}

export function renderFrames(
  canvas: HTMLCanvasElement,
  legend: HTMLElement,
  owners: Uint8Array,
  names: string[],
  counts: number[],
  used: number,
  ballooned: Record<string, number>,
): void {
  // 512 frames (2 MiB) a row whatever the host's size: a big host gets more rows, so that no
  // frame shares a pixel with another when the map is drawn at its size.
  const width = 512;
  const height = Math.max(1, Math.ceil(owners.length / width));
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext("2d");
  if (ctx !== null) {
    const img = ctx.createImageData(width, height);
    const palette = names.map((_, code) => rgb(colour(code)));
    const px = img.data;
    for (let i = 0; i < owners.length; i++) {
      const [r, g, b] = palette[owners[i]] ?? [0, 0, 0];
      px[4 * i] = r;
      px[4 * i + 1] = g;
      px[4 * i + 2] = b;
      px[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }
  const summary = names
    .map((name, code) => `${name}: ${counts[code]}`)
    .filter((_, code) => counts[code] > 0)
    .join(", ");
  canvas.setAttribute(
    "aria-label",
    `Host frames, ${owners.length} in all, ${used} in use. ${summary}`,
  );
  const rows = names.map((name, code) =>
    h(
      "tr",
      { "data-owner": name },
      h(
        "td",
        {},
        h(
          "span",
          { class: "swatch", style: `background:${colour(code)}`, "aria-hidden": "true" },
          letter(code),
        ),
      ),
      h("td", {}, code < DESCRIPTIONS.length ? DESCRIPTIONS[code] : `domain ${name}`),
      h("td", { class: "num", "data-field": `frames-${name}` }, counts[code] ?? 0),
      h("td", { class: "num" }, `${(((counts[code] ?? 0) * 4096) / 2 ** 20).toFixed(1)} MiB`),
    ),
  );
  legend.replaceChildren(
    h(
      "table",
      { class: "legend" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", {}, "key"),
          h("th", {}, "owner"),
          h("th", {}, "frames"),
          h("th", {}, "memory"),
        ),
      ),
      h(
        "tbody",
        {},
        rows,
        Object.entries(ballooned).map(([name, pages]) =>
          h(
            "tr",
            { "data-owner": `${name} ballooned` },
            h("td", {}, h("span", { class: "swatch ballooned", "aria-hidden": "true" }, "B")),
            h("td", {}, `ballooned out of ${name} (given back: no host frame, not on the map)`),
            h("td", { class: "num", "data-field": `ballooned-${name}` }, pages),
            h("td", { class: "num" }, `${((pages * 4096) / 2 ** 20).toFixed(1)} MiB`),
          ),
        ),
      ),
      h(
        "tfoot",
        {},
        h(
          "tr",
          {},
          h("td", {}),
          h("td", {}, "in use / total"),
          h("td", { class: "num", "data-field": "frames-used" }, used),
          h("td", { class: "num", "data-field": "frames-total" }, owners.length),
        ),
      ),
    ),
  );
}
