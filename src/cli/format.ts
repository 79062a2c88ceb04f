/**
 * Number formatting and the table style shared by the CLI's tables. Output is the same on every
 * machine: no locale, no colors, no terminal width (the tables fit in 100 columns).
 */

import Table from "cli-table3";

/** Columns the CLI's tables are laid out for. */
export const OUTPUT_WIDTH = 100;

/** 1234567 -> "1,234,567" (rounded to an integer). */
export function formatInt(n: number): string {
  const s = Math.round(Math.abs(n))
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return n < 0 ? `-${s}` : s;
}

/**
 * part/whole as a percentage with one decimal, "-" when whole is 0. Never rounds a non-zero
 * share to "0.0%" or a partial one to "100.0%".
 */
export function formatPercent(part: number, whole: number): string {
  if (whole === 0) return "-";
  const pct = (100 * part) / whole;
  if (part > 0 && pct < 0.05) return "<0.1%";
  if (part < whole && pct >= 99.95) return ">99.9%";
  return `${pct.toFixed(1)}%`;
}

/** A ratio with two decimals, "-" when the divisor is 0. */
export function formatRatio(n: number, d: number): string {
  return d === 0 ? "-" : (n / d).toFixed(2);
}

/** A table with the CLI's style: light borders, no row separators, no colors. */
export function newTable(options: Table.TableConstructorOptions = {}): Table.Table {
  return new Table({
    ...options,
    style: { head: [], border: [], compact: true, ...options.style },
  });
}
