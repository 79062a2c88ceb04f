/**
 * The slot layout of a TLB array (TlbLevel, tlb-level.ts), in three arrays so that each scan
 * reads only what it compares:
 * - keys[s]: keyLo. A probe scans a set's keyLo words, one or two cache lines for 12 ways.
 * - d[s * SLOT + ...]: [F_HI] keyHi (EMPTY when unused)  [F_GEN] generation
 *   [F_FRAME] first frame  [F_PERMS] permission mask; read once a keyLo matches.
 * - stamps[s]: LRU stamp (larger = more recent); a fill scans a set's stamps for the oldest.
 *
 * In a module of its own so that the hot paths can keep local copies: V8 reads an exported
 * binding from its module cell, with a check that it is initialised, at each use (32 such reads
 * in one TlbLevel.fill), while a module's own constant is folded to its value.
 */

export const SLOT = 4;
export const F_HI = 0;
export const F_GEN = 1;
export const F_FRAME = 2;
export const F_PERMS = 3;
/** LRU stamps are renumbered when the clock reaches 2^30, far from int32 overflow. */
export const CLOCK_LIMIT = 0x40000000;
