/**
 * Sizes in a scenario: bytes, written as plain integers or as strings with a binary unit
 * ("4KiB", "512MiB", "1.5GiB"). Decimal units ("1GB") are refused with a hint, so that a size
 * is never off by 7%.
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

/** Largest unit first, so formatSize picks the shortest exact form. */
const SIZE_UNITS: readonly [string, number][] = [
  ["TiB", TiB],
  ["GiB", GiB],
  ["MiB", MiB],
  ["KiB", KiB],
  ["B", 1],
];

export const SIZE_EXPECTED = 'expected a size such as "512MiB" or a number of bytes';

/** The bytes in `input`, or a message saying why it is not a size. */
export function sizeOrProblem(input: unknown): number | { problem: string } {
  if (typeof input === "number") {
    if (Number.isSafeInteger(input) && input >= 0) return input;
    return { problem: 'expected a whole number of bytes (or a size such as "512MiB")' };
  }
  if (typeof input !== "string") return { problem: SIZE_EXPECTED };
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(input);
  if (!m) return { problem: SIZE_EXPECTED };
  const unitName = m[2] === "" ? "B" : m[2];
  const unit = SIZE_UNITS.find(([name]) => name === unitName);
  if (!unit) {
    const hint = binaryUnitFor(unitName);
    return {
      problem: hint
        ? `${SIZE_EXPECTED} (units are binary: write "${m[1]}${hint}")`
        : `${SIZE_EXPECTED} (units: B, KiB, MiB, GiB, TiB)`,
    };
  }
  const bytes = Number(m[1]) * unit[1];
  if (!Number.isSafeInteger(bytes)) {
    return { problem: 'expected a whole number of bytes (or a size such as "512MiB")' };
  }
  return bytes;
}

/** "GiB" for "G", "GB", "gib" and so on; undefined when the unit is not a near miss. */
function binaryUnitFor(unitName: string): string | undefined {
  const m = /^([kmgt])(?:i?b)?$/i.exec(unitName);
  if (m) return `${m[1].toUpperCase()}iB`;
  if (/^b$/i.test(unitName) || /^bytes?$/i.test(unitName)) return "B";
  return undefined;
}

/** Bytes from a size such as "512MiB", "1.5GiB", "4096" or 4096; throws RangeError otherwise. */
export function parseSize(input: string | number): number {
  const r = sizeOrProblem(input);
  if (typeof r === "number") return r;
  throw new RangeError(`${r.problem}, got ${JSON.stringify(input)}`);
}

/** The shortest exact form: 1073741824 -> "1GiB", 3145728 -> "3MiB", 1000 -> "1000B". */
export function formatSize(bytes: number): string {
  if (!Number.isSafeInteger(bytes)) return formatSizeApprox(bytes);
  if (bytes === 0) return "0B";
  for (const [name, unit] of SIZE_UNITS) {
    if (bytes % unit === 0) return `${bytes / unit}${name}`;
  }
  return `${bytes}B`;
}

/** For messages and reports: at most two decimals, 966367641.6 -> "921.6MiB". */
export function formatSizeApprox(bytes: number): string {
  const abs = Math.abs(bytes);
  for (const [name, unit] of SIZE_UNITS) {
    if (abs >= unit || unit === 1) {
      return `${Number((bytes / unit).toFixed(2))}${name}`;
    }
  }
  return `${bytes}B`;
}
