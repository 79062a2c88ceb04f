/**
 * The x86-64 4-level page walker (SDM Vol. 3A 4.5 and 4.6), over tables in host memory.
 *
 *   CR3 ──> L4 (PML4) ──> L3 (PDPT) ──> L2 (PD) ──> L1 (PT) ──> 4 KiB page
 *                             │PS            │PS
 *                             └─> 1 GiB      └─> 2 MiB page
 *
 * One memory reference per entry read. Reserved bits stop the walk with a RSVD fault; a clear P
 * stops it with a not-present fault; permissions are the combination over all levels. Accessed
 * and dirty bits are set only when the access is allowed, after the whole walk (as KVM's
 * emulated walker does; the SDM lets a processor set A on a walk that faults, and leaves the
 * choice open, so we take the deterministic one): A on every entry used, D on the leaf for a write.
 *
 * The walker is one object with scratch outputs, so a walk allocates nothing. Its entry points
 * say which walk it is: walk (the hardware's, from CR3; walkFast is its common case written
 * out), walkBelow (the hardware's, resumed below a paging-structure cache hit), walkGuest (the
 * VMM's software walk of a guest's tables through the P2M) and peek (no A/D, for checkers).
 */

import type * as Access from "./access.js";
import type { DataCache } from "./cache.js";
import type * as Memory from "./memory.js";
import type { HostMemory } from "./memory.js";
import type * as Pte from "./pte.js";
import {
  isAccessed,
  isDirty,
  isGlobal,
  isLeaf,
  isNoExec,
  isPresent,
  isUser,
  isWritable,
  leafFrame,
} from "./pte.js";
import type { PrefixCache } from "./pwc.js";
import { type WalkTrace, walkLevels } from "./step-trace.js";
import { MEMO_AND, MEMO_OR, MEMO_SLOT, regionOf, WALK_PAYLOAD, WalkMemo } from "./walk-memo.js";

// Local copies of the bits used on the walk path: V8 does not fold imported bindings into
// constants. Each copy's type is its original's literal type, so a disagreement fails to compile.
const PTE_P: typeof Pte.PTE_P = 0x1;
const PTE_RW: typeof Pte.PTE_RW = 0x2;
const PTE_US: typeof Pte.PTE_US = 0x4;
const PTE_A: typeof Pte.PTE_A = 0x20;
const PTE_D: typeof Pte.PTE_D = 0x40;
const PTE_PS: typeof Pte.PTE_PS = 0x80;
const PTE_G: typeof Pte.PTE_G = 0x100;
const PTE_HI_NX: typeof Pte.PTE_HI_NX = 0x80000000;
const PTE_HI_RESERVED: typeof Pte.PTE_HI_RESERVED = 0xff800;
const PTE_HI_ADDR_MASK: typeof Pte.PTE_HI_ADDR_MASK = 0x7ff;
const PTE_2M_RESERVED_LO: typeof Pte.PTE_2M_RESERVED_LO = 0x001fe000;
const PTE_1G_RESERVED_LO: typeof Pte.PTE_1G_RESERVED_LO = 0x3fffe000;
const WORDS_PER_FRAME: typeof Memory.WORDS_PER_FRAME = 1024;
const PFEC_P: typeof Pte.PFEC_P = 0x1;
const PFEC_W: typeof Pte.PFEC_W = 0x2;
const PFEC_U: typeof Pte.PFEC_U = 0x4;
const PFEC_RSVD: typeof Pte.PFEC_RSVD = 0x8;
const PFEC_I: typeof Pte.PFEC_I = 0x10;
const KIND_SUP_WRITE: typeof Access.KIND_SUP_WRITE = 1;
const KIND_SUP_FETCH: typeof Access.KIND_SUP_FETCH = 2;
const KIND_USER_WRITE: typeof Access.KIND_USER_WRITE = 4;
const KIND_USER_FETCH: typeof Access.KIND_USER_FETCH = 5;
const ACC_USER: typeof Access.ACC_USER = 3;

/** walk() result for a translation that succeeded; anything >= 0 is a #PF error code. */
export const WALK_OK = -1;
/**
 * walk() result of a software walk of guest tables (with a p2m) that reached a guest table
 * whose gfn has no host frame (not yet populated, swapped out, ballooned), or that would have
 * had to set an accessed or dirty bit in a table whose frame is read-only to it (`readOnly`, a
 * frame shared between domains): the walk stopped there and `missingGfn` says which. The VMM
 * gives the gfn a frame of its own and walks again, as the hardware's walk under nested paging
 * would exit on it.
 */
export const WALK_NO_FRAME = -2;

/** readOnlyTable(): no table on the walk's path is read-only. */
const ALL_WRITABLE = -2;

/** walkFast() result for a walk it leaves to walk(). */
export const WALK_SLOW = -1;

/** walkOrMiss() result: walk() would stop at an entry not present (see walkOrMiss). */
export const WALK_NOT_PRESENT = -2;

/** The control-register state a walk depends on. */
export interface PagingControl {
  /** CR0.WP: supervisor writes honour read-only pages. */
  wp: boolean;
  /** EFER.NXE: bit 63 is the execute-disable bit rather than reserved. */
  nxe: boolean;
  /** CPUID 1GB-page support: PS in an L3 entry maps 1 GiB instead of being reserved. */
  gbpages: boolean;
}

/** Permission mask of a leaf given the combined bits of its walk (see access.ts for kinds). */
export function permissionMask(
  rwAll: boolean,
  usAll: boolean,
  nxAny: boolean,
  ctl: PagingControl,
): number {
  let mask = 1; // supervisor read: always allowed (SMAP is not modelled)
  if (rwAll || !ctl.wp) mask |= 1 << 1;
  if (!nxAny) mask |= 1 << 2; // SMEP is not modelled
  if (usAll) {
    mask |= 1 << 3;
    if (rwAll) mask |= 1 << 4;
    if (!nxAny) mask |= 1 << 5;
  }
  return mask;
}

/** Reserved bits of the low half of a present L4..L2 entry (SDM Vol. 3A 4.5). */
export function reservedLo(lo: number, level: number, leaf: boolean, ctl: PagingControl): boolean {
  if (level === 4) return (lo & PTE_PS) !== 0;
  if (!leaf) return false;
  if (level === 3) return !ctl.gbpages || (lo & PTE_1G_RESERVED_LO) !== 0;
  return (lo & PTE_2M_RESERVED_LO) !== 0;
}

/**
 * Whether a present entry at `level` (1..4) has a reserved bit set: the rule the walk applies,
 * for code that reads tables without walking them (the shadow code's propagation).
 */
export function entryReserved(lo: number, hi: number, level: number, ctl: PagingControl): boolean {
  const hiReserved = ctl.nxe ? PTE_HI_RESERVED : PTE_HI_RESERVED | PTE_HI_NX;
  if ((hi & hiReserved) !== 0) return true;
  return level >= 2 && reservedLo(lo, level, isLeaf(lo, level), ctl);
}

/** The #PF error code for an access of `kind` (see access.ts), with P and RSVD as given. */
export function faultCode(kind: number, present: boolean, rsvd: boolean, nxe: boolean): number {
  let code = present ? PFEC_P : 0;
  if (rsvd) code |= PFEC_RSVD;
  if (kind === KIND_SUP_WRITE || kind === KIND_USER_WRITE) code |= PFEC_W;
  if (kind >= ACC_USER) code |= PFEC_U;
  if ((kind === KIND_SUP_FETCH || kind === KIND_USER_FETCH) && nxe) code |= PFEC_I;
  return code;
}

// Table indices come from two 18-bit halves of the page number: integer operations only.
/** gva bits 30..47: the L4 and L3 indices. */
function pageNumberHigh(gva: number): number {
  return (((gva / 4294967296) | 0) << 2) | ((gva >>> 0) >>> 30);
}

/** gva bits 12..29: the L2 and L1 indices. */
function pageNumberLow(gva: number): number {
  return ((gva >>> 0) >>> 12) & 0x3ffff;
}

export class Walker {
  /** First 4 KiB frame of the page that was found. */
  frame = 0;
  /** Level of the leaf: 1 (4 KiB), 2 (2 MiB) or 3 (1 GiB). */
  level = 1;
  /** Permission mask of the translation (access kinds allowed). */
  allowed = 0;
  /** Whether the leaf is global (G), so its TLB entry survives a CR3 write. */
  global = false;
  /** Whether the leaf's D bit is set after the walk. */
  dirty = false;
  /** Memory references made by the last walk. */
  refs = 0;
  /**
   * The data caches the walk's references go through (null: not modelled), and where the last
   * walk's references found their lines (by CACHE_L1 .. CACHE_DRAM), counted while it is set.
   */
  cache: DataCache | null = null;
  readonly refsFrom = new Float64Array(4);
  /** Per level (index 1..4): the frame of the table read, the index used and the entry read. */
  readonly tableMfn = new Float64Array(5);
  readonly tableIdx = new Int32Array(5);
  readonly entryLo = new Uint32Array(5);
  readonly entryHi = new Uint32Array(5);
  /** Lowest level reached by the last walk (the level where it stopped, for faults). */
  lastLevel = 4;
  /** Highest level the last walk read itself (below 4 when it started from a cached entry). */
  firstLevel = 4;
  /** Per level: the AND of the low halves and the OR of the high halves from L4 down to it. */
  readonly andLoAt = new Int32Array(5);
  readonly orHiAt = new Int32Array(5);
  /** After WALK_NO_FRAME: the gfn of the guest table that has no (writable) frame. */
  missingGfn = -1;
  /**
   * For software walks of guest tables: host frames (1) in which the walk may not set A/D
   * bits. Null: every frame is writable.
   */
  readOnly: Uint8Array | null = null;
  /**
   * Per level, the gfn of the table read, in walks with a p2m; the root's (level 4) is set by
   * the caller, which knows it (-1: unknown).
   */
  readonly tableGfn = new Float64Array(5).fill(-1);

  /**
   * The hardware's walk for an access of `kind` to `gva`, from the L4 table at frame `rootMfn`
   * (CR3's): WALK_OK with the outputs set, or a #PF error code. Sets A/D as the access needs.
   */
  walk(mem: HostMemory, rootMfn: number, gva: number, kind: number, ctl: PagingControl): number {
    return this.walkFrom(mem, 4, rootMfn, -1, 0, gva, kind, ctl, true, null);
  }

  /**
   * The hardware's walk resumed below an upper-level entry that a paging-structure cache held:
   * `hit` is the cache of level `hitLevel` (2..4) right after its lookup hit, holding the frame
   * of the table one level down and the entry bits gathered above it (bits: the AND of the low
   * halves, A set; bits2: the OR of the high halves). As walk() otherwise.
   */
  walkBelow(
    mem: HostMemory,
    hit: PrefixCache,
    hitLevel: number,
    gva: number,
    kind: number,
    ctl: PagingControl,
  ): number {
    return this.walkFrom(
      mem,
      hitLevel - 1,
      hit.frame,
      hit.bits,
      hit.bits2,
      gva,
      kind,
      ctl,
      true,
      null,
    );
  }

  /**
   * The VMM's software walk of a guest's tables, from the guest's L4 table at host frame
   * `rootMfn`: entries hold gfns, and each table is found through `p2m` (gfn -> mfn); the frame
   * found is a gfn. Sets A/D as the hardware would, unless a table on the path has no frame or
   * a read-only one (`readOnly`): then WALK_NO_FRAME, and `missingGfn` says which.
   */
  walkGuest(
    mem: HostMemory,
    rootMfn: number,
    gva: number,
    kind: number,
    ctl: PagingControl,
    p2m: Int32Array,
  ): number {
    return this.walkFrom(mem, 4, rootMfn, -1, 0, gva, kind, ctl, true, p2m);
  }

  /**
   * What walk() would answer, with the outputs set, changing nothing (no A/D): for checkers.
   * With `p2m` the tables are a guest's, read as walkGuest reads them.
   */
  peek(
    mem: HostMemory,
    rootMfn: number,
    gva: number,
    kind: number,
    ctl: PagingControl,
    p2m: Int32Array | null = null,
  ): number {
    return this.walkFrom(mem, 4, rootMfn, -1, 0, gva, kind, ctl, false, p2m);
  }

  /**
   * The walk behind the four entry points: from the table at frame `startMfn` of level
   * `startLevel`, with the bits gathered above it (startAndLo, startOrHi); A/D set if `update`;
   * through `p2m` if the tables are a guest's.
   */
  private walkFrom(
    mem: HostMemory,
    startLevel: number,
    startMfn: number,
    startAndLo: number,
    startOrHi: number,
    gva: number,
    kind: number,
    ctl: PagingControl,
    update: boolean,
    p2m: Int32Array | null,
  ): number {
    const pnHi = pageNumberHigh(gva);
    const pnLo = pageNumberLow(gva);
    const pool = mem.pool;
    const meta = mem.meta;
    const frames = mem.frames;
    const nxe = ctl.nxe;
    // NX is reserved without EFER.NXE, so one test covers every reserved bit of the high half.
    const hiReserved = nxe ? PTE_HI_RESERVED : PTE_HI_RESERVED | PTE_HI_NX;
    const tableMfns = this.tableMfn;
    const tableIdx = this.tableIdx;
    const entryLo = this.entryLo;
    const entryHi = this.entryHi;
    let tableMfn = startMfn;
    const cache = this.cache;
    if (cache !== null) this.refsFrom.fill(0);
    // Over the levels read so far: the AND of the low halves (RW, US and A of every entry) and
    // the OR of the high halves (NX of any entry).
    let andLo = startAndLo;
    let orHi = startOrHi;
    this.firstLevel = startLevel;
    for (let level = startLevel; level >= 1; level--) {
      const idx = level >= 3 ? (pnHi >>> (9 * level - 27)) & 511 : (pnLo >>> (9 * level - 9)) & 511;
      let lo = 0;
      let hi = 0;
      if (tableMfn < frames) {
        if (cache !== null) this.refsFrom[cache.access(tableMfn, idx >>> 3)]++;
        const slot = meta[2 * tableMfn] - 1; // HostMemory.meta: the slot plus one
        // Whether the frame holds data (a digest other than zero's), tested on every read: a
        // fresh domain first walks tables with no entry stored yet, and code that only such a
        // walk reaches has no type feedback from the runs before, so that reaching it would
        // throw the optimized walker away.
        const data = meta[2 * tableMfn + 1] !== 0;
        if (slot >= 0) {
          const w = slot * WORDS_PER_FRAME + idx * 2;
          lo = pool[w];
          hi = pool[w + 1];
        } else if (data) {
          // A frame holding data read as a table: its digest's expansion (read64).
          mem.read64(tableMfn, idx);
          lo = mem.lo;
          hi = mem.hi;
        } // else a zeroed frame with no entry stored yet: zeroes.
      }
      tableMfns[level] = tableMfn;
      tableIdx[level] = idx;
      entryLo[level] = lo;
      entryHi[level] = hi;
      this.lastLevel = level;
      this.refs = startLevel + 1 - level;
      if (!isPresent(lo)) return faultCode(kind, false, false, nxe);
      const leaf = isLeaf(lo, level);
      if ((hi & hiReserved) !== 0 || (level >= 2 && reservedLo(lo, level, leaf, ctl))) {
        return faultCode(kind, true, true, nxe);
      }
      andLo &= lo;
      orHi |= hi;
      this.andLoAt[level] = andLo;
      this.orHiAt[level] = orHi;
      if (leaf) {
        const allowed = permissionMask(
          isWritable(andLo),
          isUser(andLo),
          nxe && isNoExec(orHi),
          ctl,
        );
        if (((allowed >> kind) & 1) === 0) return faultCode(kind, true, false, nxe);
        this.level = level;
        this.allowed = allowed;
        this.global = isGlobal(lo);
        const base = leafFrame(lo, hi, level);
        // The frame of the 4 KiB page inside a large page.
        this.frame = level === 1 ? base : base + (pnLo & (level === 2 ? 511 : 0x3ffff));
        const write = kind === KIND_SUP_WRITE || kind === KIND_USER_WRITE;
        // A/D writes only when a bit is missing: usually every A is set, and D on a written page.
        if (update && (!isAccessed(andLo) || (write && !isDirty(lo)))) {
          if (this.readOnly !== null) {
            const gfn = this.readOnlyTable(level, write);
            if (gfn !== ALL_WRITABLE) {
              this.missingGfn = gfn;
              return WALK_NO_FRAME;
            }
          }
          this.setAccessedDirty(mem, level, write);
        } else this.dirty = isDirty(lo);
        return WALK_OK;
      }
      // pteFrame(lo, hi) as an int32: with MAXPHYADDR 43 a frame number is below 2^31.
      tableMfn = ((hi & PTE_HI_ADDR_MASK) << 20) | (lo >>> 12);
      if (p2m !== null) {
        // A walk of guest tables: entries hold gfns. A gfn outside the guest's RAM reads as
        // zeroes (no memory there); one without a frame yet stops the walk (WALK_NO_FRAME).
        this.tableGfn[level - 1] = tableMfn;
        if (tableMfn >= p2m.length) tableMfn = frames;
        else if (p2m[tableMfn] < 0) {
          this.missingGfn = tableMfn;
          return WALK_NO_FRAME;
        } else tableMfn = p2m[tableMfn];
      }
    }
    return faultCode(kind, false, false, nxe); // not reached: level 1 is always a leaf
  }

  /**
   * walk() of the common case: every entry present, a 4 KiB leaf, no reserved bit, the access
   * allowed, A already set at every level and D on the leaf for a write. Returns the frame with
   * the outputs of walk() set (not the per-level records, which only the step API's trace
   * reads), or WALK_SLOW for anything else: walk() then makes the same reads, since nothing is
   * written before them. Measured: a third of the cost of a native miss over 2^20 pages is the
   * general loop's level bookkeeping, not its memory reads.
   */
  walkFast(
    mem: HostMemory,
    rootMfn: number,
    gva: number,
    kind: number,
    ctl: PagingControl,
  ): number {
    return this.walkFastHalves(mem, rootMfn, gva | 0, (gva / 4294967296) | 0, kind, ctl);
  }

  /**
   * walkFast() that also answers the walk that faults most: an entry not present in a
   * materialized table, every entry above it present, not large and with no reserved bit (a
   * demand fault, or a shadow entry not made yet). For that walk it returns WALK_NOT_PRESENT,
   * where walk() would read the same entries again to answer faultCode(kind, false, false,
   * ctl.nxe): refs, firstLevel and lastLevel are set as walk() sets them, not the per-level
   * records (only the step API's trace reads those after a fault, and it walks with walk()).
   * With data caches modelled the fault is left to walk(), whose references go through them.
   * Otherwise as walkFast().
   */
  walkOrMiss(
    mem: HostMemory,
    rootMfn: number,
    gva: number,
    kind: number,
    ctl: PagingControl,
  ): number {
    this.missLevel = 0;
    const frame = this.walkFastHalves(mem, rootMfn, gva | 0, (gva / 4294967296) | 0, kind, ctl);
    const level = this.missLevel;
    if (frame !== WALK_SLOW || level === 0 || this.cache !== null) return frame;
    this.firstLevel = 4;
    this.lastLevel = level;
    this.refs = 5 - level;
    return WALK_NOT_PRESENT;
  }

  /**
   * Set by the fast walk when it stops at an entry that is not present (see walkOrMiss): its
   * level. Only walkOrMiss clears it: it means something only right after that call.
   */
  private missLevel = 0;

  /**
   * Read the leaf entry of each address los[start..end-1] / his[...] whose upper levels the
   * memo holds under `rootMfn`, and return them XORed: nothing else. The vCPU calls this for a
   * group of accesses before making them one by one, when misses are frequent: leaf reads over
   * a large address space miss the host's caches, and issued side by side here they overlap,
   * where the walks one after another wait for each in turn. The walks made afterwards find the
   * entries in the cache. A table changed in between only makes a read useless.
   */
  readLeaves(
    mem: HostMemory,
    rootMfn: number,
    los: Int32Array,
    his: Int32Array,
    start: number,
    end: number,
  ): number {
    const pool = mem.pool;
    const memo = this.memo;
    let sum = 0;
    for (let j = start; j < end; j++) {
      const gvaLo = los[j];
      const e = memo.find(mem, regionOf(gvaLo, his[j]), rootMfn);
      if (e >= 0)
        sum ^= pool[memo.words[e + MEMO_SLOT] * WORDS_PER_FRAME + ((gvaLo >>> 12) & 511) * 2];
    }
    return sum;
  }

  /**
   * walkFast() of the address whose bits 0..31 are `gvaLo` (as int32) and 32..47 `gvaHi`: the
   * vCPU's batched path keeps addresses in halves, so that none is a boxed number in a call.
   */
  walkFastHalves(
    mem: HostMemory,
    rootMfn: number,
    gvaLo: number,
    gvaHi: number,
    kind: number,
    ctl: PagingControl,
  ): number {
    if (!this.upperFast(mem, rootMfn, gvaLo, gvaHi, ctl)) return WALK_SLOW;
    return this.leafFast(mem, this.upperSlot, gvaLo, kind, ctl, this.upperAnd, this.upperOr);
  }

  /**
   * walkFastHalves() with the upper levels taken from the memo (walk-memo.ts) when it holds
   * them for this root and 2 MiB region, else walked and kept there. The same result and
   * outputs; with data caches modelled it is walkFastHalves() (the upper references must go
   * through them).
   */
  walkMemoHalves(
    mem: HostMemory,
    rootMfn: number,
    gvaLo: number,
    gvaHi: number,
    kind: number,
    ctl: PagingControl,
  ): number {
    if (this.cache !== null) return this.walkFastHalves(mem, rootMfn, gvaLo, gvaHi, kind, ctl);
    const memo = this.memo;
    const region = regionOf(gvaLo, gvaHi);
    const e = memo.find(mem, region, rootMfn);
    if (e >= 0) {
      const w = memo.words;
      return this.leafFast(
        mem,
        w[e + MEMO_SLOT],
        gvaLo,
        kind,
        ctl,
        w[e + MEMO_AND],
        w[e + MEMO_OR],
      );
    }
    if (!this.upperFast(mem, rootMfn, gvaLo, gvaHi, ctl)) return WALK_SLOW;
    const made = memo.store(mem, region, rootMfn);
    const w = memo.words;
    w[made + MEMO_SLOT] = this.upperSlot;
    w[made + MEMO_AND] = this.upperAnd;
    w[made + MEMO_OR] = this.upperOr;
    return this.leafFast(mem, this.upperSlot, gvaLo, kind, ctl, this.upperAnd, this.upperOr);
  }

  /** Upper levels of the memo's walks (see walk-memo.ts); sized by use. */
  readonly memo = new WalkMemo(WALK_PAYLOAD);
  /** upperFast()'s outputs: the L1 table's pool slot, and the AND / OR of the entries above. */
  private upperSlot = 0;
  private upperAnd = 0;
  private upperOr = 0;
  private upperMfn = 0;

  /**
   * The fast walk's levels 4 to 2: each table in memory and materialized, each entry present,
   * not large (PS in L4 is reserved, in L3/L2 a large page: walk() handles both) and with no
   * reserved high bit. Sets upperSlot / upperAnd / upperOr / upperMfn and returns true, or
   * returns false for anything else (walk() then makes the same reads: nothing is written).
   */
  private upperFast(
    mem: HostMemory,
    rootMfn: number,
    gvaLo: number,
    gvaHi: number,
    ctl: PagingControl,
  ): boolean {
    const pnHi = (gvaHi << 2) | (gvaLo >>> 30);
    const pnLo = (gvaLo >>> 12) & 0x3ffff;
    const pool = mem.pool;
    const hiReserved = ctl.nxe ? PTE_HI_RESERVED : PTE_HI_RESERVED | PTE_HI_NX;
    let mfn = rootMfn;
    let andLo = -1;
    let orHi = 0;
    const cache = this.cache;
    for (let level = 4; level >= 2; level--) {
      const slot = mem.tableSlot(mfn);
      if (slot < 0) return false;
      const idx = level >= 3 ? (pnHi >>> (9 * level - 27)) & 511 : (pnLo >>> (9 * level - 9)) & 511;
      if (cache !== null) {
        this.tableMfn[level] = mfn;
        this.tableIdx[level] = idx;
      }
      const w = slot * WORDS_PER_FRAME + idx * 2;
      const lo = pool[w];
      const hi = pool[w + 1];
      if ((lo & (PTE_P | PTE_PS)) !== PTE_P || (hi & hiReserved) !== 0) {
        if ((lo & PTE_P) === 0) this.missLevel = level;
        return false;
      }
      andLo &= lo;
      orHi |= hi;
      mfn = ((hi & PTE_HI_ADDR_MASK) << 20) | (lo >>> 12);
    }
    const slot = mem.tableSlot(mfn);
    if (slot < 0) return false;
    this.upperSlot = slot;
    this.upperAnd = andLo;
    this.upperOr = orHi;
    this.upperMfn = mfn;
    return true;
  }

  /**
   * The fast walk's leaf, in the L1 table at pool slot `slot`, given the AND of the low halves
   * and the OR of the high halves above it: a present 4 KiB entry with no reserved high bit,
   * A set at every level and D on the leaf for a write, the access allowed. Returns the frame
   * with the outputs of walk() set (not the per-level records, which only the step API's trace
   * reads), or WALK_SLOW.
   */
  private leafFast(
    mem: HostMemory,
    slot: number,
    gvaLo: number,
    kind: number,
    ctl: PagingControl,
    upperAnd: number,
    upperOr: number,
  ): number {
    const hiReserved = ctl.nxe ? PTE_HI_RESERVED : PTE_HI_RESERVED | PTE_HI_NX;
    const idx = (gvaLo >>> 12) & 511;
    const pool = mem.pool;
    const w = slot * WORDS_PER_FRAME + idx * 2;
    const lo = pool[w];
    const hi = pool[w + 1];
    // The upper entries' high bits are tested again: what is reserved depends on EFER.NXE now.
    if ((lo & PTE_P) === 0) {
      if ((upperOr & hiReserved) === 0) this.missLevel = 1;
      return WALK_SLOW;
    }
    if (((hi | upperOr) & hiReserved) !== 0) return WALK_SLOW;
    const andLo = upperAnd & lo;
    const orHi = upperOr | hi;
    const write = kind === KIND_SUP_WRITE || kind === KIND_USER_WRITE;
    if ((andLo & PTE_A) === 0 || (write && (lo & PTE_D) === 0)) return WALK_SLOW;
    const allowed = permissionMask(
      (andLo & PTE_RW) !== 0,
      (andLo & PTE_US) !== 0,
      ctl.nxe && (orHi & PTE_HI_NX) !== 0,
      ctl,
    );
    if (((allowed >> kind) & 1) === 0) return WALK_SLOW;
    // The references go through the caches once the walk is known to be this one (a walk left
    // to walk() reads the same entries again, and must not find them cached by this attempt).
    const cache = this.cache;
    if (cache !== null) {
      this.tableMfn[1] = this.upperMfn;
      this.tableIdx[1] = idx;
      this.refsFrom.fill(0);
      for (let level = 4; level >= 1; level--) {
        this.refsFrom[cache.access(this.tableMfn[level], this.tableIdx[level] >>> 3)]++;
      }
    }
    const frame = ((hi & PTE_HI_ADDR_MASK) << 20) | (lo >>> 12);
    this.frame = frame;
    this.level = 1;
    this.firstLevel = 4;
    this.lastLevel = 1;
    this.refs = 4;
    this.allowed = allowed;
    this.global = (lo & PTE_G) !== 0;
    this.dirty = (lo & PTE_D) !== 0;
    return frame;
  }

  /** The last walk as a record (cold: the step API's). */
  trace(root: number, result: number): WalkTrace {
    return { root, levels: walkLevels(this), result };
  }

  /**
   * The gfn of a table the A/D update would write whose frame is read-only (the root's is
   * tableGfn[4], -1 unless the caller set it), or ALL_WRITABLE.
   */
  private readOnlyTable(leafLevel: number, write: boolean): number {
    const readOnly = this.readOnly;
    if (readOnly === null) return ALL_WRITABLE;
    for (let level = this.firstLevel; level >= leafLevel; level--) {
      const bits = level === leafLevel && write ? PTE_A | PTE_D : PTE_A;
      const mfn = this.tableMfn[level];
      if ((this.entryLo[level] & bits) !== bits && mfn < readOnly.length && readOnly[mfn] === 1) {
        return this.tableGfn[level];
      }
    }
    return ALL_WRITABLE;
  }

  /** Set A in every entry the walk read and D in the leaf for a write. */
  private setAccessedDirty(mem: HostMemory, leafLevel: number, write: boolean): void {
    for (let level = this.firstLevel; level >= leafLevel; level--) {
      let bits = PTE_A;
      if (level === leafLevel && write) bits |= PTE_D;
      const lo = this.entryLo[level];
      if ((lo & bits) !== bits) {
        const mfn = this.tableMfn[level];
        if (mfn < mem.frames) mem.orLo(mfn, this.tableIdx[level], bits);
        this.entryLo[level] = (lo | bits) >>> 0;
      }
    }
    this.dirty = isDirty(this.entryLo[leafLevel]);
  }
}
