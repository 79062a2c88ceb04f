/**
 * Address spaces and their number types. JavaScript numbers are exact to 2^53, bitwise operators
 * work on 32 bits, so addresses are plain numbers handled with arithmetic, never BigInt.
 *
 * 48-bit virtual address (4-level paging, SDM Vol. 3A 4.5):
 *   47      39 38      30 29      21 20      12 11         0
 *   | l4 idx  | l3 idx   | l2 idx   | l1 idx   |   offset   |
 * Canonical upper-half addresses (0xffff8880_00000000) are stored without the sign extension
 * (0x8880_00000000): the 16 copies of bit 47 carry no information.
 */

/** A guest virtual address, 0 .. 2^48-1 (sign extension dropped). */
export type Gva = number;
/** A guest physical address, 0 .. 2^44-1. */
export type Gpa = number;
/** A guest frame number (gpa >> 12), unsigned 32-bit. */
export type Gfn = number;
/** A host (machine) physical address. */
export type Hpa = number;
/** A machine frame number (hpa >> 12), unsigned 32-bit. */
export type Mfn = number;
/** A virtual page number of a 4 KiB page (gva >> 12), 0 .. 2^36-1. */
export type Vpn = number;

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
/** Entries in one page-table page (4 KiB / 8 bytes). */
export const PT_ENTRIES = 512;
/** 4 KiB pages in a 2 MiB page. */
export const PAGES_PER_2M = 512;
/** 4 KiB pages in a 1 GiB page. */
export const PAGES_PER_1G = 512 * 512;
export const SIZE_2M = 2 * 1024 * 1024;
export const SIZE_1G = 1024 * 1024 * 1024;
/** One past the highest stored virtual address. */
export const GVA_LIMIT = 2 ** 48;

/** The 4 KiB virtual page number of gva. */
export function vpnOf(gva: Gva): Vpn {
  return Math.floor(gva / PAGE_SIZE);
}

/** Bytes one entry maps at each paging level (index 1..4): 4 KiB, 2 MiB, 1 GiB, 512 GiB. */
export const LEVEL_SPAN = [0, PAGE_SIZE, SIZE_2M, SIZE_1G, 2 ** 39];

/** Table index of gva at paging level 1..4 (1 = page table, 4 = PML4): see the diagram above. */
export function tableIndex(gva: Gva, level: number): number {
  return Math.floor(gva / LEVEL_SPAN[level]) % PT_ENTRIES;
}

/** The canonical 64-bit form of a stored gva, as hex, for display. */
export function formatGva(gva: Gva): string {
  const hi = gva >= 2 ** 47 ? "ffff" : "0000";
  return `0x${hi}${gva.toString(16).padStart(12, "0")}`;
}

/** Stored form of a 64-bit canonical address given as hex (for scenario and test inputs). */
export function gvaFromCanonical(hex: string): Gva {
  const clean = hex.replace(/^0x/i, "").padStart(16, "0");
  const top = clean.slice(0, 4).toLowerCase();
  if (top !== "0000" && top !== "ffff") throw new RangeError(`not a canonical address: ${hex}`);
  return Number.parseInt(clean.slice(4), 16);
}
