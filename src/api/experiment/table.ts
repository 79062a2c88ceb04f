/**
 * The results table as text: CSV (RFC 4180: a header, then one line per row, cells with a comma,
 * a quote or a line break quoted) and JSON Lines (one object per row, keys in column order).
 * Numbers are written as JavaScript writes them (the shortest text that reads back the same
 * double), so the same runs give the same bytes on every machine.
 */

import type { Cell, ResultRow } from "./row.js";

function csvCell(v: Cell): string {
  if (v === null) return "";
  const text = String(v);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The CSV header line, with its newline. */
export function csvHeader(columns: readonly string[]): string {
  return `${columns.map(csvCell).join(",")}\n`;
}

/** One row as a CSV line, with its newline. */
export function csvLine(columns: readonly string[], row: ResultRow): string {
  return `${columns.map((c) => csvCell(row[c] ?? null)).join(",")}\n`;
}

/** A whole table as CSV. */
export function toCsv(columns: readonly string[], rows: readonly ResultRow[]): string {
  return csvHeader(columns) + rows.map((r) => csvLine(columns, r)).join("");
}

/** One row as a JSON line, keys in column order, with its newline. */
export function jsonLine(columns: readonly string[], row: ResultRow): string {
  const ordered: ResultRow = {};
  for (const c of columns) ordered[c] = row[c] ?? null;
  return `${JSON.stringify(ordered)}\n`;
}

/**
 * The rows of a JSON Lines text, each parsed; a last line cut short (a run killed while
 * writing it) is left out, as its point never finished. Other bad lines are errors: `bad`
 * receives their 1-based line numbers.
 */
export function parseJsonLines(text: string, bad: (line: number) => void): ResultRow[] {
  const lines = text.split("\n");
  const rows: ResultRow[] = [];
  lines.forEach((line, i) => {
    if (line === "") return;
    try {
      rows.push(JSON.parse(line) as ResultRow);
    } catch {
      // Only the last line may be cut short (it has no newline after it).
      if (i !== lines.length - 1) bad(i + 1);
    }
  });
  return rows;
}
