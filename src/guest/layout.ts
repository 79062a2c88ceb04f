/**
 * The guest kernel's virtual memory layout, after Linux x86-64 (Documentation/arch/x86/x86_64/mm.rst):
 *
 *   0x0000_0000_0040_0000  program text (code VMA)
 *   0x0000_0000_1000_0000  heap (brk area)
 *   0x0000_7f00_0000_0000  mmap area, growing down
 *   0x0000_7fff_ffff_f000  top of the user stack
 *   0xffff_8880_0000_0000  direct map of all guest memory (2 MiB pages, 4 KiB on PV; global, NX)
 *
 * Kernel addresses are stored without the sign extension (see hw/addr.ts).
 */

import type { Gfn, Gva } from "../hw/addr.js";

export const USER_CODE_BASE: Gva = 0x400000;
export const USER_HEAP_BASE: Gva = 0x10000000;
export const USER_MMAP_TOP: Gva = 0x7f0000000000;
export const USER_STACK_TOP: Gva = 0x7ffffffff000;
/** Default stack VMA size. */
export const USER_STACK_SIZE = 8 * 1024 * 1024;
/** One past the highest user address (the lower canonical half). */
export const USER_LIMIT: Gva = 0x800000000000;
/**
 * Stored form of 0xffff888000000000. directMap() adds the private copy: V8 reads an exported
 * constant from its module cell, checking that it is initialised, at every use.
 */
const DIRECT_MAP = 0x888000000000;
/** Its bits 32..47 (its bits 0..31 are zero). */
const DIRECT_MAP_HI = 0x8880;
export const DIRECT_MAP_BASE: Gva = DIRECT_MAP;
/** PML4 slots 256..511 belong to the kernel and are shared by every address space. */
export const FIRST_KERNEL_L4_INDEX = 256;

/** The direct-map address of guest frame `gfn`: how the kernel reaches any guest-physical page. */
export function directMap(gfn: Gfn): Gva {
  return DIRECT_MAP + gfn * 4096;
}

/**
 * directMap(gfn) + offset (0..4095) in the halves the vCPU's *Halves methods take: bits 0..31
 * as an int32, bits 32..47. The base's low 32 bits are zero, so gfn's low 20 bits make the rest
 * of the low half and its high bits add to the high half (a gfn is below 2^31).
 */
export function directMapLo(gfn: Gfn, offset: number): number {
  return (gfn << 12) | offset;
}

export function directMapHi(gfn: Gfn): number {
  return DIRECT_MAP_HI + (gfn >>> 20);
}
