/**
 * x86-64 paging-structure entries (SDM Vol. 3A 4.5, tables 4-15 to 4-20), kept as two unsigned
 * 32-bit halves: `lo` holds bits 0..31, `hi` bits 32..63.
 *
 *   63  62..52  51......32 | 31.......12 11..9 8 7  6 5 4   3   2  1  0
 *   NX  ignored  addr hi   |  addr lo    avail G PS D A PCD PWT US RW P
 *
 * In a 2 MiB leaf (PS in an L2 entry) bit 12 is PAT and bits 13..20 are reserved; in a 1 GiB
 * leaf (PS in an L3 entry) bits 13..29 are reserved.
 */

import type { Mfn } from "./addr.js";

// The helpers below use module-private copies of the bits: V8 reads an exported constant from
// its module cell, checking that it is initialised, at every use (a dozen such reads in one
// shadow fault's code, measured in its optimized code), where it folds a module's own constant
// into the code. Each export is its copy, so the two cannot disagree.
const P = 0x1;
const RW = 0x2;
const US = 0x4;
const A = 0x20;
const D = 0x40;
const PS = 0x80;
const G = 0x100;
const HI_NX = 0x80000000;
const HI_ADDR = 0x7ff;
const LO_ADDR_2M = 0xffe00000;
const LO_ADDR_1G = 0xc0000000;

export const PTE_P = P;
export const PTE_RW = RW;
export const PTE_US = US;
export const PTE_PWT = 0x8;
export const PTE_PCD = 0x10;
export const PTE_A = A;
export const PTE_D = D;
export const PTE_PS = PS;
export const PTE_G = G;
/** Bits 9..11, ignored by the hardware and left to software (nothing here sets them). */
export const PTE_AVAIL_MASK = 0xe00;
/** Address bits 12..31 in the low half. */
export const PTE_ADDR_LO_MASK = 0xfffff000;
/** Bits 13..20 of a 2 MiB leaf must be zero. */
export const PTE_2M_RESERVED_LO = 0x001fe000;
/** Bits 13..29 of a 1 GiB leaf must be zero. */
export const PTE_1G_RESERVED_LO = 0x3fffe000;

/** NX, bit 63, is bit 31 of the high half (reserved unless EFER.NXE). */
export const PTE_HI_NX = HI_NX;
/**
 * Physical-address width of the simulated CPU (CPUID 0x80000008 EAX[7:0]): 43 bits, 8 TiB, so
 * that every frame number is a non-negative int32 (the TLB keeps frames in Int32Arrays).
 * Address bits 43..51 of an entry are reserved.
 */
export const MAXPHYADDR = 43;
/** Address bits 32..MAXPHYADDR-1 (42) in the high half. */
export const PTE_HI_ADDR_MASK = HI_ADDR;
/** Bits MAXPHYADDR (43)..51 of the high half: reserved, must be zero. */
export const PTE_HI_RESERVED = 0xff800;

/** #PF error code bits (SDM Vol. 3A 4.7). */
export const PFEC_P = 0x1;
export const PFEC_W = 0x2;
export const PFEC_U = 0x4;
export const PFEC_RSVD = 0x8;
export const PFEC_I = 0x10;

/** The frame an entry points to (the frame of the next table, or the page's first frame). */
export function pteFrame(lo: number, hi: number): Mfn {
  return (lo >>> 12) + (hi & HI_ADDR) * 0x100000;
}

/** Address bits of the low half of a 2 MiB leaf (bits 21..31; bit 12 is PAT). */
export const PTE_2M_ADDR_LO_MASK = LO_ADDR_2M;
/** Address bits of the low half of a 1 GiB leaf (bits 30..31; bit 12 is PAT). */
export const PTE_1G_ADDR_LO_MASK = LO_ADDR_1G;

/** The first 4 KiB frame of the page a leaf at `level` (1, 2 or 3) maps: PAT is not address. */
export function leafFrame(lo: number, hi: number, level: number): Mfn {
  if (level === 1) return pteFrame(lo, hi);
  return pteFrame(lo & (level === 2 ? LO_ADDR_2M : LO_ADDR_1G), hi);
}

/**
 * The low half of an entry pointing at frame `frame` with flag bits `flags` (bits 0..11). The
 * shift keeps the frame's low 20 bits, as frame % 2^20 did, without a floating-point remainder.
 */
export function pteLo(frame: number, flags: number): number {
  return ((frame << 12) | (flags & 0xfff)) >>> 0;
}

/** The high half of an entry pointing at frame `frame`, with NX when `nx`. */
export function pteHi(frame: number, nx: boolean): number {
  return (Math.floor(frame / 0x100000) | (nx ? HI_NX : 0)) >>> 0;
}

// An entry's bits by name, one test each (KVM's is_shadow_present_pte, is_last_spte), for the
// slow paths. The walkers' loops (walker.ts, nested.ts) test local copies of the masks inline.
/** P: the entry maps a table or a page. */
export function isPresent(lo: number): boolean {
  return (lo & P) !== 0;
}

/** RW: writes are allowed through the entry. */
export function isWritable(lo: number): boolean {
  return (lo & RW) !== 0;
}

/** US: user-mode accesses are allowed through the entry. */
export function isUser(lo: number): boolean {
  return (lo & US) !== 0;
}

/** A: a walk has used the entry. */
export function isAccessed(lo: number): boolean {
  return (lo & A) !== 0;
}

/** D: the page a leaf maps has been written. */
export function isDirty(lo: number): boolean {
  return (lo & D) !== 0;
}

/** PS: an L2 (L3) entry maps a 2 MiB (1 GiB) page rather than a table; reserved in L4. */
export function isLarge(lo: number): boolean {
  return (lo & PS) !== 0;
}

/** G: a leaf whose TLB entry survives a CR3 write. */
export function isGlobal(lo: number): boolean {
  return (lo & G) !== 0;
}

/** NX (bit 63, in the high half): instruction fetches are not allowed through the entry. */
export function isNoExec(hi: number): boolean {
  return (hi & HI_NX) !== 0;
}

/** Whether a present entry at `level` (1..4) maps a page, not a table: L1, or PS in L2 or L3. */
export function isLeaf(lo: number, level: number): boolean {
  return level === 1 || (level <= 3 && isLarge(lo));
}

/** One-line description of an entry's flags, e.g. "P RW US A D NX -> 0x1234". */
export function describePte(lo: number, hi: number): string {
  const names: [number, string][] = [
    [P, "P"],
    [RW, "RW"],
    [US, "US"],
    [PTE_PWT, "PWT"],
    [PTE_PCD, "PCD"],
    [A, "A"],
    [D, "D"],
    [PS, "PS"],
    [G, "G"],
  ];
  const flags = names.filter(([bit]) => (lo & bit) !== 0).map(([, name]) => name);
  if (isNoExec(hi)) flags.push("NX");
  return `${flags.join(" ") || "-"} -> 0x${pteFrame(lo, hi).toString(16)}`;
}
