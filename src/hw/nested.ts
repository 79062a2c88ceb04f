/**
 * The two-dimensional page walk of hardware-assisted paging (Intel EPT, AMD NPT; SDM Vol. 3C
 * 29.3.2; Bhargava et al., ASPLOS 2008). The guest's tables hold guest-physical addresses, so
 * every guest table the walk reads is first itself translated through the EPT, and so is the
 * data page at the end:
 *
 *            gL4        gL3        gL2        gL1       data
 *   CR3 ─EPT─> read ─EPT─> read ─EPT─> read ─EPT─> read ─EPT─> frame
 *        4 refs  1   4 refs  1   4 refs  1   4 refs  1   4 refs       = 24 references
 *
 * n guest levels over m EPT levels make n*(m+1)+m references when nothing is cached. Three
 * optional caches cut that down, each with its counters: the paging-structure caches for the
 * guest's upper levels (a gva prefix to the host frame of the guest table below it, with the
 * permissions gathered above: "combined" entries, SDM 28.3.1), the EPT's own upper-level caches
 * (a gfn prefix to the EPT table below it) and a nested TLB (a gfn to its host frame and EPT
 * permissions, as AMD's NTLB).
 *
 * The result is a guest #PF error code (the hardware delivers it to the guest: no exit), an
 * EPT violation (an exit to the VMM, with the gfn and the access that failed), or a translation
 * whose permissions are the guest's and the EPT's together. Accessed and dirty bits are set in
 * the guest's tables after the walk, as walker.ts does: those are writes to guest memory, so a
 * guest table the EPT maps read-only (a shared page) makes the walk exit as a write violation.
 */

import type * as Access from "./access.js";
import type { DataCache } from "./cache.js";
import { EPT_PS, EPT_R, EPT_RWX, EPT_W, eptKindMask, eptNeed } from "./ept.js";
import type * as Memory from "./memory.js";
import type { HostMemory } from "./memory.js";
import type * as Pte from "./pte.js";
import { PrefixCache, pwcLevels } from "./pwc.js";
import { regionOf, WalkMemo } from "./walk-memo.js";
import {
  faultCode,
  type PagingControl,
  permissionMask,
  reservedLo,
  type WALK_OK,
  WALK_SLOW,
} from "./walker.js";

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
const KIND_SUP_WRITE: typeof Access.KIND_SUP_WRITE = 1;
const KIND_USER_WRITE: typeof Access.KIND_USER_WRITE = 4;
const WORDS_PER_FRAME: typeof Memory.WORDS_PER_FRAME = 1024;

// walk() returns NESTED_OK, a #PF error code (>= 0) or EPT_VIOLATION. A step record holds either
// walker's result, so NESTED_OK is WALK_OK and EPT_VIOLATION is none of the 1D walker's codes.
/** A translation that succeeded: WALK_OK (its type makes the compiler check the value). */
export const NESTED_OK: typeof WALK_OK = -1;
/** The EPT does not allow an access the walk made: see violationGfn and violationWrite. */
export const EPT_VIOLATION = -3;

/** Which caches the hardware has (all off: every walk of a cold 4-level guest makes 24 refs). */
export interface NestedCaches {
  /** Paging-structure caches for the guest's L4, L3 and L2 entries (combined mappings). */
  pwc: boolean;
  /** Caches of the EPT's L4, L3 and L2 entries. */
  eptPwc: boolean;
  /** A nested TLB: gfn -> host frame and EPT permissions. */
  nestedTlb: boolean;
}

/** Geometry of the nested TLB (entries, ways). */
const NTLB_ENTRIES = 128;
const NTLB_WAYS = 4;
/**
 * Slots of the walker's own shortcut to the EPT's L1 tables (see eptTablesChanged), direct
 * mapped by gfn / 512: a guest of up to 8 GiB has one slot per 2 MiB of its memory. Eight int32
 * words a slot (E_KEY .. E_EPOCH, three unused): 128 KiB.
 */
const MEMO_SLOTS = 4096;
const MEMO_STRIDE = 8;
/** An EPT memo slot's words: gfn / 512 (-1: empty), the L1 table's host frame, the rights of
 * the L4..L2 entries above it, and the table's pool slot with the tableEpoch it was read at
 * (the slot stands while no materialized frame changed: a frame given up moves the epoch). */
const E_KEY = 0;
const E_MFN = 1;
const E_PERMS = 2;
const E_SLOT = 3;
const E_EPOCH = 4;
/** eptKnown's answer when the full walk must decide. */
const UNKNOWN = -2;

/** The guest memo's payload (after walk-memo.ts's key and epoch words). */
const G_EPT_ROOT = 3;
const G_MFN = 4;
const G_GFN = 5;
const G_EPT = 6;
const G_AND = 7;
const G_OR = 8;
const G_REFS = 9;
const G_EPT_REFS = 10;
/** The L1 table's pool slot (-1: not materialized), good as long as the entry is. */
const G_SLOT = 11;
const GUEST_MEMO_PAYLOAD = 9;

/** One memory reference of a 2D walk, for the step API (cold path). */
export interface NestedRef {
  /** "ept": an EPT entry read while translating `gfn`; "guest": a guest entry read. */
  dim: "ept" | "guest";
  /** Level of the table read (4..1). */
  level: number;
  tableMfn: number;
  index: number;
  lo: number;
  hi: number;
  /** The gfn being translated (ept), or the gfn of the guest table read (guest). */
  gfn: number;
}

export class NestedWalker {
  /** Outputs of a successful walk: as Walker's. */
  frame = 0;
  /** Size of the combined translation: the smaller of the guest's and the EPT's leaf. */
  level = 1;
  allowed = 0;
  global = false;
  dirty = false;
  /** References made by the last walk: all of them, and those to EPT entries. */
  refs = 0;
  eptRefs = 0;
  /**
   * The data caches the references go through (null: not modelled), and where the last walk's
   * references found their lines (by CACHE_L1 .. CACHE_DRAM).
   */
  cache: DataCache | null = null;
  readonly refsFrom = new Float64Array(4);
  /** Cache hits and misses of the last walk (added to the counters by the vCPU). */
  pwcHits = 0;
  pwcMisses = 0;
  eptPwcHits = 0;
  eptPwcMisses = 0;
  ntlbHits = 0;
  ntlbMisses = 0;
  /** After EPT_VIOLATION: the gfn and whether the failed access was a write (else read/fetch). */
  violationGfn = -1;
  violationWrite = false;
  violationFetch = false;
  /** Set by the step API: every reference of a walk is recorded here. */
  log: NestedRef[] | null = null;
  /** Per guest level (1..4): the host frame of the table read, the index, the entry, its gfn. */
  readonly tableMfn = new Float64Array(5);
  readonly tableGfn = new Float64Array(5);
  readonly tableEpt = new Int32Array(5);
  readonly tableIdx = new Int32Array(5);
  readonly entryLo = new Uint32Array(5);
  readonly entryHi = new Uint32Array(5);
  lastLevel = 4;
  /** Highest guest level the last walk read itself (4, or below a cache hit). */
  firstLevel = 4;

  /** The caches (null: the hardware lacks it); read by checkers (hw/check.ts), never written. */
  readonly pwc: PrefixCache[] | null;
  readonly eptPwc: PrefixCache[] | null;
  readonly ntlb: PrefixCache | null;
  /** Per guest level: the AND of the low halves and OR of the high halves from L4 down to it. */
  private readonly andLoAt = new Int32Array(5);
  private readonly orHiAt = new Int32Array(5);
  /** Outputs of eptTranslate. */
  private eptPerms = 0;
  /** Outputs of readEntry: the entry's two halves, as int32. */
  private entLo = 0;
  private entHi = 0;
  private eptLevel = 1;
  /**
   * The simulator's shortcut past the EPT's upper levels, not the hardware's: per 2 MiB of
   * guest-physical space, the EPT L1 table its L2 entry links and the rights of the L4..L2
   * entries above it, as the last full EPT walk read them. A walk that finds its gfn here
   * reads only the L1 entry and counts the three references above it as made: the result,
   * every counter and every fault are those of the full walk, as long as the upper levels have
   * not changed since, which the VMM says (eptTablesChanged). Kept only when the hardware has
   * no EPT caches (they would have to see each upper-level read) and used only when no
   * reference is observed one by one (data caches, the step API's log). Why: under no walk
   * cache, 15 of a 2D walk's 24 references are to the same few upper-level EPT entries.
   */
  private readonly memo: Int32Array | null;
  /** The EPT root the memo was filled from (a walk from another root empties it first). */
  private memoRoot = -1;
  /**
   * The guest memo, another simulator shortcut (see walk-memo.ts): per 2 MiB of guest-virtual
   * space under a guest root (and EPT root), what a walk had when it reached the guest's L1
   * table: the table's host frame, gfn and EPT rights, the bits of the three guest entries
   * above it (every A set) and the references counted so far. A walk that finds its region
   * reads the L1 entry and translates the data page only, counting what the full walk counts.
   * Good while no table changed (HostMemory.tableEpoch: guest tables and EPT tables both live
   * in materialized frames). Kept under the same conditions as the EPT memo, and only without
   * the guest's paging-structure caches, data caches or the step log.
   */
  private readonly guestMemo: WalkMemo | null;

  constructor(readonly caches: NestedCaches) {
    // Index 2..4: caches of the entries at that level (L2 entries name L1 tables, and so on).
    this.pwc = caches.pwc ? pwcLevels() : null;
    this.eptPwc = caches.eptPwc ? pwcLevels() : null;
    this.ntlb = caches.nestedTlb ? new PrefixCache(NTLB_ENTRIES, NTLB_WAYS) : null;
    this.memo =
      this.eptPwc === null && this.ntlb === null
        ? new Int32Array(MEMO_STRIDE * MEMO_SLOTS).fill(-1)
        : null;
    this.guestMemo =
      this.memo !== null && this.pwc === null ? new WalkMemo(GUEST_MEMO_PAYLOAD) : null;
  }

  /**
   * Read, for the accesses los[start..end-1] / his[...] (gva halves), the guest leaf entries
   * the guest memo can find, then the EPT L1 entries of the pages they name that the EPT memo
   * can find, and return them XORed: nothing else. As Walker.readLeaves, for the 2D walk: a
   * random miss makes two reads that miss the host's caches, the guest's leaf and the data
   * page's EPT entry, and the second needs the first; read a group at a time, each round's
   * misses overlap. A table changed since only makes a read useless.
   */
  readLeaves(
    mem: HostMemory,
    eptRoot: number,
    rootGfn: number,
    los: Int32Array,
    his: Int32Array,
    start: number,
    end: number,
  ): number {
    const guestMemo = this.guestMemo;
    const eptMemo = this.memo;
    if (guestMemo === null || eptMemo === null || this.memoRoot !== eptRoot) return 0;
    const pool = mem.pool;
    const leaves = this.leafScratch;
    let n = 0;
    let sum = 0;
    for (let j = start; j < end && n < leaves.length; j++) {
      const gvaLo = los[j];
      const e = guestMemo.find(mem, regionOf(gvaLo, his[j]), rootGfn);
      if (e < 0 || guestMemo.words[e + G_EPT_ROOT] !== eptRoot) continue;
      const slot = guestMemo.words[e + G_SLOT];
      if (slot < 0) continue;
      const w = slot * WORDS_PER_FRAME + ((gvaLo >>> 12) & 511) * 2;
      leaves[n++] = ((pool[w + 1] & PTE_HI_ADDR_MASK) << 20) | (pool[w] >>> 12);
    }
    for (let k = 0; k < n; k++) {
      const gfn = leaves[k];
      const m = ((gfn >>> 9) & (MEMO_SLOTS - 1)) * MEMO_STRIDE;
      if (eptMemo[m + E_KEY] !== gfn >>> 9) continue;
      const slot = this.eptSlot(mem, m);
      if (slot >= 0) sum ^= pool[slot * WORDS_PER_FRAME + (gfn & 511) * 2];
    }
    return sum;
  }

  /**
   * The batch's 2D walk of a 4 KiB page when both memos know it (see guestMemo and memo): the
   * guest's L1 entry, then the data page's EPT L1 entry, on int32 halves. Returns the host
   * frame, with the outputs and references walk() would leave (frame, level, allowed, global,
   * dirty, refs, eptRefs; the caches' counters are zero here, as walk() leaves them when the
   * memos are kept), or WALK_SLOW with nothing changed: a memo miss, a fault, a violation or
   * an A/D bit to set, which walk() then makes from the same reads.
   */
  walkMemoHalves(
    mem: HostMemory,
    eptRoot: number,
    rootGfn: number,
    gvaLo: number,
    gvaHi: number,
    kind: number,
    ctl: PagingControl,
  ): number {
    const guestMemo = this.guestMemo;
    const eptMemo = this.memo;
    if (
      guestMemo === null ||
      eptMemo === null ||
      this.memoRoot !== eptRoot ||
      this.cache !== null ||
      this.log !== null
    ) {
      return WALK_SLOW;
    }
    const e = guestMemo.find(mem, regionOf(gvaLo, gvaHi), rootGfn);
    if (e < 0) return WALK_SLOW;
    const gw = guestMemo.words;
    const nxe = ctl.nxe;
    const hiReserved = nxe ? PTE_HI_RESERVED : PTE_HI_RESERVED | PTE_HI_NX;
    const upperOr = gw[e + G_OR];
    if (gw[e + G_EPT_ROOT] !== eptRoot || (upperOr & hiReserved) !== 0) return WALK_SLOW;
    const pool = mem.pool;
    const gSlot = gw[e + G_SLOT];
    if (gSlot < 0) return WALK_SLOW;
    const gw0 = gSlot * WORDS_PER_FRAME + ((gvaLo >>> 12) & 511) * 2;
    const lo = pool[gw0] | 0;
    const hi = pool[gw0 + 1] | 0;
    if ((lo & PTE_P) === 0 || (hi & hiReserved) !== 0) return WALK_SLOW;
    const andLo = gw[e + G_AND] & lo;
    const write = kind === KIND_SUP_WRITE || kind === KIND_USER_WRITE;
    // The upper entries' A bits are set (an entry is kept only then): only the leaf's matter.
    if ((andLo & PTE_A) === 0 || (write && (lo & PTE_D) === 0)) return WALK_SLOW;
    const allowed = permissionMask(
      (andLo & PTE_RW) !== 0,
      (andLo & PTE_US) !== 0,
      nxe && ((upperOr | hi) & PTE_HI_NX) !== 0,
      ctl,
    );
    if (((allowed >> kind) & 1) === 0) return WALK_SLOW;
    // eptKnown for the data page, written out.
    const gfn = ((hi & PTE_HI_ADDR_MASK) << 20) | (lo >>> 12);
    const m = ((gfn >>> 9) & (MEMO_SLOTS - 1)) * MEMO_STRIDE;
    if (eptMemo[m + E_KEY] !== gfn >>> 9) return WALK_SLOW;
    const eSlot = this.eptSlot(mem, m);
    if (eSlot < 0) return WALK_SLOW;
    const ew = eSlot * WORDS_PER_FRAME + (gfn & 511) * 2;
    const elo = pool[ew] | 0;
    const perms = eptMemo[m + E_PERMS] & elo & EPT_RWX;
    const need = eptNeed(kind);
    // Not present (no R, W or X) fails this too: `need` is one of them.
    if ((perms & need) !== need) return WALK_SLOW;
    const frame = ((pool[ew + 1] & PTE_HI_ADDR_MASK) << 20) | (elo >>> 12);
    this.refs = gw[e + G_REFS] + 5;
    this.eptRefs = gw[e + G_EPT_REFS] + 4;
    this.frame = frame;
    this.level = 1;
    this.allowed = allowed & eptKindMask(perms);
    this.global = (lo & PTE_G) !== 0;
    this.dirty = (lo & PTE_D) !== 0;
    return frame;
  }

  /** readLeaves' scratch: the guest leaves' frames of a group. */
  private readonly leafScratch = new Int32Array(16);

  /** Make the guest memo's entry of `region` (see guestMemo) from the walk so far. */
  private keepGuest(
    mem: HostMemory,
    region: number,
    rootGfn: number,
    eptRoot: number,
    tableMfn: number,
    tableGfn: number,
    tableEpt: number,
    andLo: number,
    orHi: number,
  ): void {
    const memo = this.guestMemo;
    if (memo === null) return;
    const e = memo.store(mem, region, rootGfn);
    const w = memo.words;
    w[e + G_EPT_ROOT] = eptRoot;
    w[e + G_MFN] = tableMfn;
    w[e + G_GFN] = tableGfn;
    w[e + G_EPT] = tableEpt;
    w[e + G_AND] = andLo;
    w[e + G_OR] = orHi;
    w[e + G_REFS] = this.refs;
    w[e + G_EPT_REFS] = this.eptRefs;
    w[e + G_SLOT] = mem.tableSlot(tableMfn);
  }

  /**
   * The pool slot of the EPT L1 table of memo slot `m` (-1: not materialized): as the memo
   * recorded it at the current tableEpoch, else looked up and recorded. After the epoch
   * wrapped every recorded epoch is dropped (an old one could come round again).
   */
  private eptSlot(mem: HostMemory, m: number): number {
    const memo = this.memo as Int32Array;
    if (mem.tableEpochWraps !== this.memoWraps) {
      for (let k = E_EPOCH; k < memo.length; k += MEMO_STRIDE) memo[k] = 0;
      this.memoWraps = mem.tableEpochWraps;
    }
    if (memo[m + E_EPOCH] === mem.tableEpoch) return memo[m + E_SLOT];
    const slot = mem.tableSlot(memo[m + E_MFN]);
    memo[m + E_SLOT] = slot;
    memo[m + E_EPOCH] = mem.tableEpoch;
    return slot;
  }

  /** HostMemory.tableEpochWraps when the EPT memo's epochs were last dropped. */
  private memoWraps = 0;

  /**
   * Entry `idx` of the table in frame `mfn` into entLo / entHi, as int32: from the table pool
   * when the frame holds a table (no round trip through the memory's lo / hi), else as the
   * memory reads it (0 past the end of memory, where nothing answers).
   */
  private readEntry(mem: HostMemory, mfn: number, idx: number): void {
    const slot = mem.tableSlot(mfn);
    if (slot >= 0) {
      const w = slot * WORDS_PER_FRAME + idx * 2;
      this.entLo = mem.pool[w] | 0;
      this.entHi = mem.pool[w + 1] | 0;
    } else if (mfn < mem.frames) {
      mem.read64(mfn, idx);
      this.entLo = mem.lo | 0;
      this.entHi = mem.hi | 0;
    } else {
      this.entLo = 0;
      this.entHi = 0;
    }
  }

  /**
   * An EPT entry above L1 was written, or an EPT table given back: forget what the walker kept
   * of the upper levels (not a modelled flush: no counter sees it). The VMM's EPT code calls
   * this after every such change, INVEPT or not.
   */
  eptTablesChanged(): void {
    this.memo?.fill(-1);
  }

  /** INVEPT: every EPT-derived cached translation goes (combined ones included). */
  invept(): void {
    this.ntlb?.flushAll();
    if (this.eptPwc) for (let l = 2; l <= 4; l++) this.eptPwc[l].flushAll();
    this.flushGuest();
  }

  /** INVLPG, or a flush of every tag: the guest's paging-structure caches go. */
  flushGuest(): void {
    if (this.pwc) for (let l = 2; l <= 4; l++) this.pwc[l].flushAll();
  }

  /**
   * Translate the gva whose halves are `gvaHi` (bits 32..47) and `gvaLo` (bits 0..31, as
   * int32 or uint32) for an access of `kind`: the guest's tables from the root at guest frame
   * `rootGfn`, through the EPT rooted at host frame `eptRoot`. `tag` and `gen` are the TLB tag
   * of the address space and its generation (the guest caches' validity). Returns NESTED_OK,
   * a #PF error code or EPT_VIOLATION. Integers only: a gva crosses no call as a double.
   */
  walk(
    mem: HostMemory,
    eptRoot: number,
    rootGfn: number,
    gvaHi: number,
    gvaLo: number,
    kind: number,
    ctl: PagingControl,
    tag: number,
    gen: number,
  ): number {
    this.refs = 0;
    this.eptRefs = 0;
    this.pwcHits = 0;
    this.pwcMisses = 0;
    this.eptPwcHits = 0;
    this.eptPwcMisses = 0;
    this.ntlbHits = 0;
    this.ntlbMisses = 0;
    if (this.cache !== null) this.refsFrom.fill(0);
    const nxe = ctl.nxe;
    const hiReserved = nxe ? PTE_HI_RESERVED : PTE_HI_RESERVED | PTE_HI_NX;
    // gva bits 30..47 and 12..29: the table indices by integer operations (see walker.ts).
    const pnHi = (gvaHi << 2) | (gvaLo >>> 30);
    const pnLo = (gvaLo >>> 12) & 0x3ffff;
    // Start: from a paging-structure cache hit at the lowest level, else from CR3.
    let level = 4;
    let tableGfn = rootGfn;
    let tableMfn = -1;
    let tableEpt = 0;
    let andLo = -1;
    let orHi = 0;
    const pwc = this.pwc;
    if (pwc !== null) {
      for (let l = 2; l <= 4; l++) {
        const hit = pwc[l];
        if (hit.lookup(tag, gen, prefixKey(pnHi, pnLo, l))) {
          level = l - 1;
          tableMfn = hit.frame;
          andLo = hit.bits;
          orHi = hit.bits2 & PTE_HI_NX;
          tableEpt = hit.bits2 & EPT_RWX;
          tableGfn = -1; // not needed: only tables the EPT lets A/D be written in are cached
          break;
        }
      }
      if (level < 4) this.pwcHits++;
      else this.pwcMisses++;
    }
    this.firstLevel = level;
    const cache = this.cache;
    const log = this.log;
    // The guest memo (below): a region it holds starts at level 1.
    const guestMemo = this.guestMemo;
    let region = -1;
    if (guestMemo !== null && pwc === null && cache === null && log === null) {
      region = regionOf(gvaLo, gvaHi);
      const e = guestMemo.find(mem, region, rootGfn);
      const w = guestMemo.words;
      // Upper entries with a bit that is reserved under EFER.NXE now: the full walk faults.
      if (e >= 0 && w[e + G_EPT_ROOT] === eptRoot && (w[e + G_OR] & hiReserved) === 0) {
        level = 1;
        tableMfn = w[e + G_MFN];
        tableGfn = w[e + G_GFN];
        tableEpt = w[e + G_EPT];
        andLo = w[e + G_AND];
        orHi = w[e + G_OR];
        this.refs = w[e + G_REFS];
        this.eptRefs = w[e + G_EPT_REFS];
        // Every A above is set (an entry is kept only then): the A/D pass has only the leaf.
        this.firstLevel = 1;
        region = -1;
      }
    }
    for (; level >= 1; level--) {
      if (tableMfn < 0) {
        tableMfn = this.eptKnown(mem, eptRoot, tableGfn, EPT_R);
        if (tableMfn === UNKNOWN) tableMfn = this.eptTranslate(mem, eptRoot, tableGfn, EPT_R);
        if (tableMfn < 0) return EPT_VIOLATION;
        tableEpt = this.eptPerms;
      }
      if (level === 1 && region >= 0 && this.firstLevel === 4 && (andLo & PTE_A) !== 0) {
        this.keepGuest(mem, region, rootGfn, eptRoot, tableMfn, tableGfn, tableEpt, andLo, orHi);
      }
      const idx = level >= 3 ? (pnHi >>> (9 * level - 27)) & 511 : (pnLo >>> (9 * level - 9)) & 511;
      this.readEntry(mem, tableMfn, idx);
      const lo = this.entLo;
      const hi = this.entHi;
      this.refs++;
      if (cache !== null && tableMfn < mem.frames) {
        this.refsFrom[cache.access(tableMfn, idx >>> 3)]++;
      }
      this.tableMfn[level] = tableMfn;
      this.tableGfn[level] = tableGfn;
      this.tableEpt[level] = tableEpt;
      this.tableIdx[level] = idx;
      this.entryLo[level] = lo;
      this.entryHi[level] = hi;
      this.lastLevel = level;
      if (log !== null) {
        log.push({
          dim: "guest",
          level,
          tableMfn,
          index: idx,
          lo: lo >>> 0,
          hi: hi >>> 0,
          gfn: tableGfn,
        });
      }
      if ((lo & PTE_P) === 0) return faultCode(kind, false, false, nxe);
      // Level 4: PS is reserved; levels 3 and 2: PS makes a leaf, with reserved low bits.
      const leaf = level === 1 || (level <= 3 && (lo & PTE_PS) !== 0);
      if (
        (hi & hiReserved) !== 0 ||
        (level === 4 && (lo & PTE_PS) !== 0) ||
        (leaf && level >= 2 && reservedLo(lo, level, true, ctl))
      ) {
        return faultCode(kind, true, true, nxe);
      }
      andLo &= lo;
      orHi |= hi;
      this.andLoAt[level] = andLo;
      this.orHiAt[level] = orHi;
      if (leaf)
        return this.finish(mem, eptRoot, pnHi, pnLo, kind, ctl, level, andLo, orHi, tag, gen);
      tableGfn = ((hi & PTE_HI_ADDR_MASK) << 20) | (lo >>> 12);
      tableMfn = -1;
    }
    return faultCode(kind, false, false, nxe); // not reached: level 1 is always a leaf
  }

  /** The guest leaf at `level` allows or forbids; then the data page's EPT translation. */
  private finish(
    mem: HostMemory,
    eptRoot: number,
    pnHi: number,
    pnLo: number,
    kind: number,
    ctl: PagingControl,
    level: number,
    andLo: number,
    orHi: number,
    tag: number,
    gen: number,
  ): number {
    const nxe = ctl.nxe;
    const allowed = permissionMask(
      (andLo & PTE_RW) !== 0,
      (andLo & PTE_US) !== 0,
      nxe && (orHi & PTE_HI_NX) !== 0,
      ctl,
    );
    if (((allowed >> kind) & 1) === 0) return faultCode(kind, true, false, nxe);
    const entryLo = this.entryLo;
    const lo = entryLo[level] | 0;
    const hi = this.entryHi[level] | 0;
    // The data page's gfn: the leaf's frame, plus the page inside a large leaf.
    const leafGfn = ((hi & PTE_HI_ADDR_MASK) << 20) | (lo >>> 12);
    const dataGfn =
      level === 1
        ? leafGfn
        : level === 2
          ? (leafGfn & ~511) + (pnLo & 511)
          : (leafGfn & ~0x3ffff) + (pnLo & 0x3ffff);
    const need = eptNeed(kind);
    let frame = this.eptKnown(mem, eptRoot, dataGfn, need);
    if (frame === UNKNOWN) frame = this.eptTranslate(mem, eptRoot, dataGfn, need);
    if (frame < 0) return EPT_VIOLATION;
    const write = kind === KIND_SUP_WRITE || kind === KIND_USER_WRITE;
    // A/D bits: writes to the guest's tables, so each needs the EPT's write permission. Levels
    // above firstLevel came from a cache, which holds only entries with A set.
    if ((andLo & PTE_A) === 0 || (write && (lo & PTE_D) === 0)) {
      for (let l = this.firstLevel; l >= level; l--) {
        const bits = l === level && write ? PTE_A | PTE_D : PTE_A;
        if ((entryLo[l] & bits) !== bits && (this.tableEpt[l] & EPT_W) === 0) {
          this.violationGfn = this.tableGfn[l];
          this.violationWrite = true;
          this.violationFetch = false;
          return EPT_VIOLATION;
        }
      }
      for (let l = this.firstLevel; l >= level; l--) {
        const bits = l === level && write ? PTE_A | PTE_D : PTE_A;
        if ((entryLo[l] & bits) !== bits) {
          mem.orLo(this.tableMfn[l], this.tableIdx[l], bits);
          entryLo[l] = entryLo[l] | bits;
          this.andLoAt[l] |= PTE_A;
        }
      }
    }
    this.dirty = (entryLo[level] & PTE_D) !== 0;
    this.frame = frame;
    this.level = Math.min(level, this.eptLevel);
    this.allowed = allowed & eptKindMask(this.eptPerms);
    this.global = (lo & PTE_G) !== 0;
    if (this.pwc !== null) this.fillGuestPwc(this.pwc, level, pnHi, pnLo, tag, gen);
    return NESTED_OK;
  }

  /**
   * After a walk that set every A bit on its path: cache each upper-level entry it read (the
   * table below it, the permissions gathered so far). A table the EPT does not let the walk
   * write is left out, so a hit never needs the table's gfn for a violation.
   */
  private fillGuestPwc(
    pwc: PrefixCache[],
    leafLevel: number,
    pnHi: number,
    pnLo: number,
    tag: number,
    gen: number,
  ): void {
    for (let l = this.firstLevel; l > leafLevel; l--) {
      if ((this.tableEpt[l - 1] & EPT_W) === 0) continue;
      pwc[l].fill(
        tag,
        gen,
        prefixKey(pnHi, pnLo, l),
        this.tableMfn[l - 1],
        this.andLoAt[l] | PTE_A,
        (this.orHiAt[l] & PTE_HI_NX) | this.tableEpt[l - 1],
      );
    }
  }

  /**
   * eptTranslate's common case under the memo: gfn's L1 table known, the access allowed by
   * every level. Returns the frame (with eptPerms, eptLevel and the four references counted),
   * or UNKNOWN for the full walk to decide; changes nothing then.
   */
  private eptKnown(mem: HostMemory, eptRoot: number, gfn: number, need: number): number {
    const memo = this.memo;
    if (memo === null || this.memoRoot !== eptRoot || this.cache !== null || this.log !== null) {
      return UNKNOWN;
    }
    const m = ((gfn >>> 9) & (MEMO_SLOTS - 1)) * MEMO_STRIDE;
    if (memo[m + E_KEY] !== gfn >>> 9) return UNKNOWN;
    const slot = this.eptSlot(mem, m);
    if (slot < 0) return UNKNOWN;
    const w = slot * WORDS_PER_FRAME + (gfn & 511) * 2;
    const pool = mem.pool;
    const lo = pool[w] | 0;
    // A level that forbids the access (this one or one above): the full walk says which.
    const perms = memo[m + E_PERMS] & lo & EPT_RWX;
    if ((lo & EPT_RWX) === 0 || (perms & need) !== need) return UNKNOWN;
    this.refs += 4;
    this.eptRefs += 4;
    this.eptPerms = perms;
    this.eptLevel = 1;
    return ((pool[w + 1] & PTE_HI_ADDR_MASK) << 20) | (lo >>> 12);
  }

  /**
   * The host frame of guest frame `gfn` for an access needing EPT permission `need`, or -1
   * after recording an EPT violation. Sets eptPerms and eptLevel. (Callers try eptKnown
   * first.)
   */
  private eptTranslate(mem: HostMemory, eptRoot: number, gfn: number, need: number): number {
    const ntlb = this.ntlb;
    if (ntlb !== null) {
      if (ntlb.lookup(0, 0, gfn) && (ntlb.bits & need) === need) {
        this.ntlbHits++;
        this.eptPerms = ntlb.bits;
        this.eptLevel = ntlb.bits2;
        return ntlb.frame;
      }
      this.ntlbMisses++;
    }
    let level = 4;
    let table = eptRoot;
    let perms = EPT_RWX;
    const pwc = this.eptPwc;
    const memo = this.memo;
    const cache = this.cache;
    let memoSlot = -1;
    if (pwc !== null) {
      for (let l = 2; l <= 4; l++) {
        const hit = pwc[l];
        if (hit.lookup(0, 0, gfn >>> (9 * l - 9))) {
          level = l - 1;
          table = hit.frame;
          perms = hit.bits;
          break;
        }
      }
      if (level < 4) this.eptPwcHits++;
      else this.eptPwcMisses++;
    } else if (memo !== null) {
      if (this.memoRoot !== eptRoot) {
        memo.fill(-1);
        this.memoRoot = eptRoot;
      }
      memoSlot = ((gfn >>> 9) & (MEMO_SLOTS - 1)) * MEMO_STRIDE;
    }
    for (; level >= 1; level--) {
      // A gfn is below 2^31 (MAXPHYADDR 43): shifts are exact.
      const idx = (gfn >>> (9 * level - 9)) & 511;
      this.readEntry(mem, table, idx);
      const lo = this.entLo;
      const hi = this.entHi;
      this.refs++;
      this.eptRefs++;
      if (cache !== null && table < mem.frames) this.refsFrom[cache.access(table, idx >>> 3)]++;
      if (this.log !== null) {
        this.log.push({
          dim: "ept",
          level,
          tableMfn: table,
          index: idx,
          lo: lo >>> 0,
          hi: hi >>> 0,
          gfn,
        });
      }
      perms &= lo & EPT_RWX;
      if ((lo & EPT_RWX) === 0 || (perms & need) !== need) {
        this.violationGfn = gfn;
        this.violationWrite = need === EPT_W;
        this.violationFetch = need !== EPT_R && need !== EPT_W;
        return -1;
      }
      const next = ((hi & PTE_HI_ADDR_MASK) << 20) | (lo >>> 12);
      if (level === 1 || (level <= 3 && (lo & EPT_PS) !== 0)) {
        const frame =
          level === 1
            ? next
            : level === 2
              ? (next & ~511) + (gfn & 511)
              : (next & ~0x3ffff) + (gfn & 0x3ffff);
        this.eptPerms = perms;
        this.eptLevel = level;
        if (ntlb !== null) ntlb.fill(0, 0, gfn, frame, perms, level);
        return frame;
      }
      if (pwc !== null && level >= 2)
        pwc[level].fill(0, 0, gfn >>> (9 * level - 9), next, perms, 0);
      if (memo !== null && level === 2) {
        memo[memoSlot + E_KEY] = gfn >>> 9;
        memo[memoSlot + E_MFN] = next;
        memo[memoSlot + E_PERMS] = perms;
        memo[memoSlot + E_EPOCH] = 0; // no epoch: eptSlot looks the slot up
      }
      table = next;
    }
    return -1; // not reached
  }
}

/**
 * The key of a paging-structure cache of `level` (2..4): the gva's page number without its
 * low 9 * (level - 1) bits, from its two 18-bit halves (below 2^27: an int32).
 */
function prefixKey(pnHi: number, pnLo: number, level: number): number {
  return level === 2 ? (pnHi << 9) | (pnLo >>> 9) : level === 3 ? pnHi : pnHi >>> 9;
}
