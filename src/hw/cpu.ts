/**
 * The virtual CPU: control registers, a two-level TLB and the page walker, and the memory-access
 * path the guest kernel runs on. In native mode the guest drives this hardware directly; a VMM
 * sits behind it by installing `Intercepts`, so that #PF, CR3 writes and INVLPG exit to it, and
 * the guest cannot tell (the guest only ever calls the methods of `GuestCpu`). Both interfaces
 * are in vcpu-interfaces.ts.
 *
 * One access:  TLB L1 ─hit─> data                (hot path: typed-array loads and compares)
 *                 └miss─> TLB L2 ─hit─> fill L1 ─> data
 *                           └miss─> walk(root) ─ok─> fill L2+L1 ─> data       (translateSlow)
 *                                       └fault─> VMM (if any) ─> retry | emulated | #PF to guest
 *
 * Under hardware-assisted paging the walk is two-dimensional (nested.ts): the guest's #PF goes
 * straight to the guest, and only EPT violations exit to the VMM. That walk, and the walk
 * through paging-structure caches, are in vcpu-walks.ts.
 */

import type * as Counters from "../metrics/counters.js";
import { WALK_HIST_SIZE } from "../metrics/counters.js";
import type * as Access from "./access.js";
import type { AccessBuffer } from "./access-buffer.js";
import type { Gpa, Gva, Mfn } from "./addr.js";
import type { DataCache } from "./cache.js";
import { DOUBLE_ZERO } from "./double-zero.js";
import type { MmuBatch, PvMmuHypercalls } from "./hypercall.js";
import type { HostMemory } from "./memory.js";
import type { NestedWalker } from "./nested.js";
import { leafFrame } from "./pte.js";
import type { PrefixCache } from "./pwc.js";
import { foldRead } from "./read-hash.js";
import type { TraceEvent, WalkTrace } from "./step-trace.js";
import type * as TlbConsts from "./tlb.js";
import { Tlb } from "./tlb.js";
import type * as TlbLayout from "./tlb-layout.js";
import { cachedPerms, lruWay } from "./tlb-level.js";
import { TlbTags } from "./tlb-tags.js";
import type * as Interfaces from "./vcpu-interfaces.js";
import {
  type GuestCpu,
  HYPERCALL_ENOSYS,
  type Intercepts,
  MAX_VMM_RETRIES,
  OP_COPY_PAGE,
  OP_STORE64,
  OP_ZERO_PAGE,
  PF_EMULATED,
  PF_RETRY,
  type TlbGeometry,
  XLATE_EMULATED,
  XLATE_FAULT,
} from "./vcpu-interfaces.js";
import { countRefsFrom, nestedMissHalves, translateNested, walkCached } from "./vcpu-walks.js";
import {
  faultCode,
  type PagingControl,
  WALK_NOT_PRESENT,
  WALK_OK,
  WALK_SLOW,
  Walker,
} from "./walker.js";

/** hitRun's group of accesses, and the misses in a group after which the next reads ahead. */
const READ_GROUP = 8;
/**
 * Access.MASK_WRITES, the kinds that write, as a literal: `(WRITE_KINDS >> kind) & 1` tells a
 * write by arithmetic, without the bounds-checked load of a table per access (in-process A/B:
 * 0.97 of the time per TLB hit). test/access-batch.test.ts checks it equals MASK_WRITES.
 */
export const WRITE_KINDS = 0b010010;
const READ_GROUP_MISSES = 4;
/**
 * Per access kind (KIND_*): 1 in the field of each count it adds to, kernel accesses in bits
 * 0..9, reads in 10..19, writes in 20..29 (a fetch is neither a read nor a write). A field holds
 * KIND_SPAN accesses at most.
 */
const KIND_COUNTS = Int32Array.of(1 | (1 << 10), 1 | (1 << 20), 1, 1 << 10, 1 << 20, 0);
const KIND_FIELD = 1023;
const KIND_SPAN = 1023;

// Local copies of imported constants used on the hot path: V8 does not fold imported bindings
// into constants (measured: a quarter of the cost of a TLB hit). Each copy's type is the
// original's literal type, so the compiler rejects a copy that disagrees with its original.
const C_ACCESSES: typeof Counters.C_ACCESSES = 0;
const C_KERNEL_ACCESSES: typeof Counters.C_KERNEL_ACCESSES = 1;
const C_READS: typeof Counters.C_READS = 2;
const C_WRITES: typeof Counters.C_WRITES = 3;
const C_FETCHES: typeof Counters.C_FETCHES = 4;
const C_TLB_L1_HITS: typeof Counters.C_TLB_L1_HITS = 5;
const C_TLB_L2_HITS: typeof Counters.C_TLB_L2_HITS = 6;
const C_TLB_MISSES: typeof Counters.C_TLB_MISSES = 7;
const C_WALKS: typeof Counters.C_WALKS = 8;
const C_WALK_REFS: typeof Counters.C_WALK_REFS = 9;
const C_CR3_WRITES: typeof Counters.C_CR3_WRITES = 10;
const C_INVLPG: typeof Counters.C_INVLPG = 11;
const C_TLB_FLUSHES: typeof Counters.C_TLB_FLUSHES = 12;
const C_PAGE_ZERO: typeof Counters.C_PAGE_ZERO = 13;
const C_PAGE_COPY: typeof Counters.C_PAGE_COPY = 14;
const C_PAGE_READS: typeof Counters.C_PAGE_READS = 67;
const C_DATA_FROM_L1D: typeof Counters.C_DATA_FROM_L1D = 94;
const ACC_USER: typeof Access.ACC_USER = 3;
const KIND_SUP_READ: typeof Access.KIND_SUP_READ = 0;
const KIND_SUP_WRITE: typeof Access.KIND_SUP_WRITE = 1;
const KIND_SUP_FETCH: typeof Access.KIND_SUP_FETCH = 2;
const KIND_USER_WRITE: typeof Access.KIND_USER_WRITE = 4;
const KIND_USER_FETCH: typeof Access.KIND_USER_FETCH = 5;
const SLOT: typeof TlbLayout.SLOT = 4;
const F_HI: typeof TlbLayout.F_HI = 0;
const F_GEN: typeof TlbLayout.F_GEN = 1;
const F_FRAME: typeof TlbLayout.F_FRAME = 2;
const F_PERMS: typeof TlbLayout.F_PERMS = 3;
const CLOCK_LIMIT: typeof TlbLayout.CLOCK_LIMIT = 0x40000000;
const TLB_MISS: typeof TlbConsts.TLB_MISS = 0;
const TLB_L1: typeof TlbConsts.TLB_L1 = 1;
const TLB_L2: typeof TlbConsts.TLB_L2 = 2;
const OP_ACCESS: typeof Interfaces.OP_ACCESS = 0;
/**
 * hitRun left an access for accessEach: an L1 copy into a set not all valid, a frame past
 * memory, or LRU stamps due for renumbering.
 */
const WHERE_GENERAL = -1;
/** hitRun walked a miss and the common walk could not make it: straight to translateSlow. */
const WHERE_WALK_SLOW = -2;

export class Vcpu implements GuestCpu {
  readonly mem: HostMemory;
  readonly tlb: Tlb;
  readonly walker = new Walker();
  /** The domain's counters (see metrics/counters.ts). */
  counters: Float64Array;
  /** Memory references per walk: walkHist[n] walks made n references. */
  readonly walkHist = new Float64Array(WALK_HIST_SIZE);
  readonly ctl: PagingControl = { wp: true, nxe: true, gbpages: false };
  /** CR0.PG: translation is on. Before it, accesses are guest-physical. */
  paging = false;
  /** CR3 as the guest wrote it: the gpa of its top-level table. */
  guestCr3: Gpa = 0;
  /**
   * The root the hardware walks: the guest's table natively, a shadow under shadow paging; under
   * hardware-assisted paging the guest's root gfn (the 2D walk translates it through the EPT).
   */
  rootMfn: Mfn = 0;
  /** Hardware-assisted paging: the 2D walker; null otherwise. */
  nested: NestedWalker | null = null;
  /** Hardware-assisted paging: the EPT's root frame (EPTP). */
  eptRoot: Mfn = 0;
  /**
   * Paging-structure caches of the walked tables' L4, L3 and L2 entries (index 2..4), when the
   * hardware has them (hardware.walk_caches.pwc); a 2D walk keeps its own (combined) ones.
   */
  pwc: PrefixCache[] | null = null;
  /** Virtual-processor id of the domain (0 in native mode); part of every TLB tag. */
  vpid = 0;
  /** Process-context id of the address space (CR3 bits 0..11; 0 without PCIDs). */
  pcid = 0;
  /** The TLB tag of (vpid, pcid): entries of the running address space. */
  tag = 0;
  /** The TLB tag of the vpid's global pages. */
  globalTag = 0;
  /** tag * 2^16: the tag part of a TLB key (see tlb.ts). */
  private keyHiBase = 0;
  /** globalTag * 2^16: the tag part of a global entry's key. */
  private globalHiBase = 0;
  /** The VMM's side (exits); null in native mode. */
  intercepts: Intercepts | null = null;
  /** A PV VMM's MMU hypercalls; null unless the domain is PV. */
  pvMmu: PvMmuHypercalls | null = null;
  /** Low half of the word load64 / loadPhys64 read. */
  lo = 0;
  /** High half of the word load64 / loadPhys64 read. */
  hi = 0;
  /** The value the last data read returned. */
  readValue = DOUBLE_ZERO;
  /** The #PF error code of the last XLATE_FAULT. */
  faultCode = 0;
  /** The operation in flight (OP_*), for a VMM's emulator. */
  op: number = OP_ACCESS;
  /** Low half of the value a store in flight writes (a data write's whole value). */
  pendLo = DOUBLE_ZERO;
  /** High half of the value a store in flight writes. */
  pendHi = DOUBLE_ZERO;
  /** The source frame of a page copy in flight. */
  pendSrcFrame = 0;
  /** Set by the step API: walks made while it is non-null are recorded. */
  trace: WalkTrace[] | null = null;
  /** Set by the step API: what the hardware, the VMM and the guest did, in order (TraceSink). */
  events: TraceEvent[] | null = null;
  /** The numbers of the TLB tags this vCPU has used. */
  readonly tags: TlbTags;
  /** The data caches of the physical CPU it runs on (null: not modelled; see useDataCache). */
  dcache: DataCache | null = null;

  constructor(mem: HostMemory, counters: Float64Array, geometry?: TlbGeometry) {
    this.mem = mem;
    this.counters = counters;
    this.tlb = geometry
      ? new Tlb(geometry.l1Entries, geometry.l1Ways, geometry.l2Entries, geometry.l2Ways)
      : new Tlb();
    this.tags = new TlbTags(this.tlb);
    this.setAddressSpace(0, 0);
  }

  /** Select the TLB tags of (vpid, pcid): a Map lookup, on CR3 writes and VM entries only. */
  setAddressSpace(vpid: number, pcid: number): void {
    this.vpid = vpid;
    this.pcid = pcid;
    this.tags.select(vpid, pcid);
    this.tag = this.tags.tag;
    this.globalTag = this.tags.globalTag;
    this.keyHiBase = this.tag * 65536;
    this.globalHiBase = this.globalTag * 65536;
  }

  /**
   * Model the data caches: data accesses and the walks' references go through `cache` (shared
   * by every vCPU of the physical CPU), counted by where each found its line.
   */
  useDataCache(cache: DataCache): void {
    this.dcache = cache;
    this.walker.cache = cache;
    if (this.nested !== null) this.nested.cache = cache;
  }

  /**
   * One data access (8 bytes at gva) of `kind`; a write stores the 32-bit `value`, a read leaves
   * what it read in readValue. Returns the 4 KiB frame used, or XLATE_FAULT / XLATE_EMULATED.
   */
  access(gva: Gva, kind: number, value: number): number {
    if (kind === KIND_SUP_WRITE || kind === KIND_USER_WRITE) {
      this.op = OP_ACCESS;
      this.pendLo = value;
      this.pendHi = 0;
    }
    const frame = this.translate(gva, kind);
    if (frame < 0) return frame;
    if (frame >= this.mem.frames) {
      // No memory there (a bad guest mapping): reads float high, writes are lost.
      this.readValue = 0xffffffff;
      return frame;
    }
    const qword = ((gva >>> 0) & 4095) >>> 3;
    const dcache = this.dcache;
    if (dcache !== null) this.counters[C_DATA_FROM_L1D + dcache.access(frame, qword >>> 3)]++;
    if (kind === KIND_SUP_WRITE || kind === KIND_USER_WRITE) {
      this.counters[C_WRITES]++;
      if (this.mem.contents) this.mem.writeData(frame, qword, value);
    } else {
      if (kind === KIND_USER_FETCH || kind === KIND_SUP_FETCH) this.counters[C_FETCHES]++;
      else this.counters[C_READS]++;
      this.readValue = this.mem.contents ? this.mem.readData(frame, qword) : 0;
    }
    return frame;
  }

  /** The read hash of accessBatch's reads (see GuestCpu.batchReadHash), as int32. */
  batchReadHash = 0;
  /** Why the last accessBatch stopped before its end: XLATE_FAULT or XLATE_EMULATED. */
  batchStop = 0;
  /** The frame of the last access accessBatch completed. */
  batchFrame = -1;

  /**
   * The accesses start..end-1 of `buf`, each as access() makes it, in order; a read's value slot
   * receives the value read. Returns the index of the first access that did not complete (a #PF
   * for the guest: batchStop is XLATE_FAULT and faultCode is set; or one a VMM emulated:
   * XLATE_EMULATED, the access done), or `end`. The same entries, LRU order, counters and
   * memory as access() one by one (test/access-batch.test.ts compares them).
   */
  accessBatch(buf: AccessBuffer, start: number, end: number): number {
    // The data caches and the step API's records are per access: take the general path.
    if (this.dcache !== null || this.trace !== null) return this.accessEach(buf, start, end);
    let i = start;
    for (;;) {
      i = this.hitRun(buf, i, end);
      if (i === end) return end;
      // Access i was left: a walk hitRun could not make, a hit without the permission, or a
      // rare case.
      const where = this.batchWhere;
      const frame =
        where === WHERE_GENERAL
          ? this.accessEach(buf, i, i + 1) === i
            ? this.batchStop
            : this.batchFrame
          : this.missAccess(buf, i, where);
      if (frame < 0) {
        this.batchStop = frame;
        return i;
      }
      this.batchFrame = frame;
      i++;
    }
  }

  /**
   * Where hitRun left an access: TLB_MISS, TLB_L1 / TLB_L2 (no permission), WHERE_WALK_SLOW or
   * WHERE_GENERAL.
   */
  private batchWhere = 0;

  /**
   * The batch's common case, one loop on int32 halves: accesses whose 4 KiB translation the TLB
   * holds with the permission (an L1 hit, or an L2 hit copied into an all-valid L1 set) to a frame
   * in memory, with their data access. Returns the index of the first other access (untouched;
   * batchWhere says why) or `end`. Counts in locals, added to the domain's counters at the end.
   */
  private hitRun(buf: AccessBuffer, start: number, end: number): number {
    const los = buf.lo;
    const his = buf.hi;
    const kinds = buf.kind;
    const values = buf.value;
    const mem = this.mem;
    const frames = mem.frames;
    const contents = mem.contents;
    const tlb = this.tlb;
    const l1 = tlb.l1;
    const k1 = l1.keys;
    const d1 = l1.d;
    const stamps1 = l1.stamps;
    const allValid1 = l1.allValid;
    const flushes1 = l1.flushes;
    const mask1 = l1.setMask;
    const ways1 = l1.ways;
    const l2 = tlb.l2;
    const k2 = l2.keys;
    const d2 = l2.d;
    const stamps2 = l2.stamps;
    const mask2 = l2.setMask;
    const ways2 = l2.ways;
    const hints2 = l2.hints;
    const hintMask2 = l2.hintMask;
    const keyHiBase = this.keyHiBase;
    const globalHiBase = this.globalHiBase;
    const gen = tlb.tagGens[this.tag];
    const ggen = tlb.tagGens[this.globalTag];
    let clock1 = l1.clock;
    let clock2 = l2.clock;
    let l1Hits = 0;
    // A miss is walked here, not left to missAccess, when the common 4 KiB walk can do it
    // (missHalves' conditions), or under HAP the 2D walk its memos know (nestedMissHalves):
    // leaving the loop and coming back for each one was a fixed cost per miss, every access
    // of a random stream.
    const walkHere = this.paging && this.pwc === null;
    const walker = this.walker;
    const nested = this.nested;
    const eptRoot = this.eptRoot;
    const largeFirst = tlb.largeFirst;
    const largeLast = tlb.largeLast;
    const tag = this.tag;
    const globalTag = this.globalTag;
    let misses = 0;
    // Accesses go in groups of READ_GROUP; a group after one with READ_GROUP_MISSES misses or
    // more starts with the walker's readLeaves (its leaf reads overlap: see there).
    let groupEnd = start;
    let groupMisses = READ_GROUP_MISSES;
    let leaves = 0;
    const rootMfn = this.rootMfn;
    let lastFrame = -1;
    let where = WHERE_GENERAL;
    let i = start;
    run: while (i < end) {
      // A use that would reach CLOCK_LIMIT goes the general way, which renumbers the stamps. An
      // access moves each clock on by one at most (a hit, a copy from L2, a walk's fill), so a
      // group starts only with room for all its accesses and they need no check of their own.
      if (clock1 >= CLOCK_LIMIT - 1 - READ_GROUP || clock2 >= CLOCK_LIMIT - 1 - READ_GROUP) break;
      groupEnd = end - i > READ_GROUP ? i + READ_GROUP : end;
      if (walkHere && misses - groupMisses >= READ_GROUP_MISSES) {
        leaves ^=
          nested === null
            ? walker.readLeaves(mem, rootMfn, los, his, i, groupEnd)
            : nested.readLeaves(mem, eptRoot, rootMfn, los, his, i, groupEnd);
      }
      groupMisses = misses;
      for (; i < groupEnd; i++) {
        const kind = kinds[i];
        const lo = los[i];
        const keyLo = lo >>> 12;
        const keyHi = keyHiBase + his[i];
        const globalHi = globalHiBase + his[i];
        let s = (keyLo & mask1) * ways1;
        let e = s + ways1;
        let frame = -1;
        for (; s < e; s++) {
          if (k1[s] !== keyLo) continue;
          const j = s * SLOT;
          const h = d1[j + F_HI];
          if (
            (h === keyHi && d1[j + F_GEN] === gen) ||
            (h === globalHi && d1[j + F_GEN] === ggen)
          ) {
            const f = d1[j + F_FRAME];
            if (((d1[j + F_PERMS] >> kind) & 1) === 0) where = TLB_L1;
            else if (f < frames) {
              frame = f;
              stamps1[s] = ++clock1;
              l1Hits++;
            }
            break;
          }
        }
        if (frame < 0) {
          if (s < e) break run; // the L1 entry said no, or points past memory
          // TlbLevel.find on L2 (always hinted: Tlb), written out: the hinted way, else a scan.
          let hit = hints2[keyLo & hintMask2];
          let j = hit * SLOT;
          let h = keyHi;
          if (k2[hit] !== keyLo || d2[j + F_HI] !== keyHi || d2[j + F_GEN] !== gen) {
            hit = -1;
            s = (keyLo & mask2) * ways2;
            e = s + ways2;
            for (; s < e; s++) {
              if (k2[s] !== keyLo) continue;
              j = s * SLOT;
              h = d2[j + F_HI];
              if (
                (h === keyHi && d2[j + F_GEN] === gen) ||
                (h === globalHi && d2[j + F_GEN] === ggen)
              ) {
                hit = s;
                if (h === keyHi) hints2[keyLo & hintMask2] = s;
                break;
              }
            }
          }
          if (hit >= 0) {
            const perms = d2[j + F_PERMS];
            const set1 = keyLo & mask1;
            if (((perms >> kind) & 1) === 0) {
              where = TLB_L2;
              break run;
            }
            if (d2[j + F_FRAME] < frames && allValid1[set1] === flushes1) {
              frame = d2[j + F_FRAME];
              stamps2[hit] = ++clock2;
              // translate()'s copy into an all-valid L1 set: the LRU way goes.
              const victim = lruWay(stamps1, set1 * ways1, set1 * ways1 + ways1);
              const m = victim * SLOT;
              k1[victim] = keyLo;
              d1[m + F_HI] = h;
              d1[m + F_GEN] = d2[j + F_GEN];
              d1[m + F_FRAME] = frame;
              d1[m + F_PERMS] = perms;
              stamps1[victim] = ++clock1;
            } else break run;
          }
          if (frame < 0) {
            where = TLB_MISS;
            if (!walkHere) break run;
            l1.clock = clock1;
            l2.clock = clock2;
            frame =
              nested === null
                ? this.walkMiss(
                    lo,
                    his[i],
                    kind,
                    tag,
                    globalTag,
                    largeFirst,
                    largeLast,
                    walker,
                    false,
                  )
                : nestedMissHalves(this, nested, lo, his[i], kind);
            // Anything but the common walk to a frame in memory goes the general way: a walk it
            // could not make straight to translateSlow; a frame past memory walked again by
            // missAccess (this walk wrote nothing), which fills it and reads all ones.
            if (frame < 0) {
              where = WHERE_WALK_SLOW;
              break run;
            }
            if (frame >= frames) break run;
            misses++;
            // Back to "no reason yet": every later break that does not set one is WHERE_GENERAL's.
            where = WHERE_GENERAL;
            // The fill moved the LRU clocks (and may have renumbered the stamps).
            clock1 = l1.clock;
            clock2 = l2.clock;
          }
        }
        lastFrame = frame;
        // Without the contents model a read returns 0: its value slot is cleared in the pass
        // after the loop, which reads the slot anyway.
        if (contents) {
          if (kind === KIND_SUP_WRITE || kind === KIND_USER_WRITE) {
            mem.writeData(frame, (lo & 4095) >>> 3, values[i]);
          } else values[i] = mem.readData(frame, (lo & 4095) >>> 3);
        }
      }
    }
    this.batchWhere = where;
    this.leafSum ^= leaves;
    l1.clock = clock1;
    l2.clock = clock2;
    const done = i - start;
    if (done === 0) return i;
    this.batchFrame = lastFrame;
    const c = this.counters;
    c[C_ACCESSES] += done;
    c[C_TLB_L1_HITS] += l1Hits;
    c[C_TLB_L2_HITS] += done - l1Hits - misses;
    if (misses > 0 && nested === null) {
      // As missHalves counts each: a miss, a walk of 4 references (a 2D walk counted itself).
      c[C_TLB_MISSES] += misses;
      c[C_WALKS] += misses;
      c[C_WALK_REFS] += 4 * misses;
      this.walkHist[4] += misses;
    }
    // The kernel accesses, reads and writes, the reads' values into the read hash, and without
    // the contents model a read's value slot cleared, after the loop (fewer live values in it). The three counts are fields of one int32 (KIND_COUNTS), so
    // a kind is counted by one add, not a store to a counter array that the next access of the
    // same kind must wait for; a span of KIND_SPAN accesses cannot overflow a field. A write
    // keeps the hash, chosen by a mask rather than a branch (which accesses are writes is random).
    let hash = this.batchReadHash;
    let kernel = 0;
    let reads = 0;
    let writes = 0;
    for (let k = start; k < i; ) {
      const stop = i - k > KIND_SPAN ? k + KIND_SPAN : i;
      let counts = 0;
      for (; k < stop; k++) {
        const kind = kinds[k];
        counts += KIND_COUNTS[kind];
        const write = -((WRITE_KINDS >> kind) & 1); // all ones for a write, 0 for a read
        let value = values[k];
        if (!contents) {
          value &= write; // a read returns 0; a write's slot keeps the value written
          values[k] = value;
        }
        hash = (foldRead(hash, value) & ~write) | (hash & write);
      }
      kernel += counts & KIND_FIELD;
      reads += (counts >>> 10) & KIND_FIELD;
      writes += counts >>> 20;
    }
    this.batchReadHash = hash;
    c[C_KERNEL_ACCESSES] += kernel;
    c[C_READS] += reads;
    c[C_WRITES] += writes;
    c[C_FETCHES] += done - reads - writes;
    // What access() leaves behind: the last write's value in flight, the last value read.
    let k = i - 1;
    while (k >= start && kinds[k] !== KIND_SUP_WRITE && kinds[k] !== KIND_USER_WRITE) k--;
    if (k >= start) {
      this.op = OP_ACCESS;
      this.pendLo = values[k];
      this.pendHi = 0;
    }
    k = i - 1;
    while (k >= start && (kinds[k] === KIND_SUP_WRITE || kinds[k] === KIND_USER_WRITE)) k--;
    if (k >= start) this.readValue = values[k] >>> 0;
    return i;
  }

  /**
   * The common 4 KiB walk of a page both TLB levels missed, natively or on a shadow, filled into
   * the TLB when it succeeds (to a frame past memory only when `beyond`: hitRun leaves such an
   * access to missAccess). Returns the frame, or WALK_SLOW with nothing changed (walk() then
   * makes the same reads: no large page may cover the page, and the fast walk wrote nothing).
   */
  private walkMiss(
    gvaLo: number,
    gvaHi: number,
    kind: number,
    tag: number,
    globalTag: number,
    largeFirst: Float64Array,
    largeLast: Float64Array,
    walker: Walker,
    beyond: boolean,
  ): number {
    // Tlb.mayHaveLarge of both tags, written out: the page number (up to 2^36) stays unboxed.
    const vpn = gvaHi * 1048576 + (gvaLo >>> 12);
    if (
      (vpn >= largeFirst[tag] && vpn <= largeLast[tag]) ||
      (vpn >= largeFirst[globalTag] && vpn <= largeLast[globalTag])
    ) {
      return WALK_SLOW;
    }
    const frame = walker.walkMemoHalves(this.mem, this.rootMfn, gvaLo, gvaHi, kind, this.ctl);
    if (frame === WALK_SLOW || (frame >= this.mem.frames && !beyond)) return frame;
    const t = walker.global ? globalTag : tag;
    this.tlb.fillSmallAbsent(
      t * 65536 + gvaHi,
      gvaLo >>> 12,
      t,
      frame,
      cachedPerms(walker.allowed, walker.dirty),
    );
    return frame;
  }

  /**
   * What readLeaves read, kept so that the compiler cannot drop its reads as unused; it means
   * nothing.
   */
  private leafSum = 0;

  /**
   * Access i of `buf`, which hitRun left at `where` (TLB_MISS, or TLB_L1 / TLB_L2 without the
   * permission): as access() makes it from there, on int32 halves. Returns the frame, or
   * XLATE_FAULT / XLATE_EMULATED.
   */
  private missAccess(buf: AccessBuffer, i: number, where: number): number {
    const c = this.counters;
    const kind = buf.kind[i];
    const lo = buf.lo[i];
    const value = buf.value[i];
    c[C_ACCESSES]++;
    if (kind < ACC_USER) c[C_KERNEL_ACCESSES]++;
    const write = kind === KIND_SUP_WRITE || kind === KIND_USER_WRITE;
    if (write) {
      this.op = OP_ACCESS;
      this.pendLo = value;
      this.pendHi = 0;
    }
    const frame = this.missHalves(lo, buf.hi[i], kind, where);
    if (frame < 0) return frame;
    if (frame >= this.mem.frames) {
      this.readValue = 0xffffffff;
      if (!write) {
        buf.value[i] = -1;
        this.batchReadHash = foldRead(this.batchReadHash, -1);
      }
      return frame;
    }
    if (write) {
      c[C_WRITES]++;
      if (this.mem.contents) this.mem.writeData(frame, (lo & 4095) >>> 3, value);
    } else {
      if (kind === KIND_USER_FETCH || kind === KIND_SUP_FETCH) c[C_FETCHES]++;
      else c[C_READS]++;
      const v = this.mem.contents ? this.mem.readData(frame, (lo & 4095) >>> 3) : 0;
      this.readValue = v;
      buf.value[i] = v;
      this.batchReadHash = foldRead(this.batchReadHash, v);
    }
    return frame;
  }

  /** accessBatch() one access() at a time (with data caches or the step API's records). */
  private accessEach(buf: AccessBuffer, start: number, end: number): number {
    for (let i = start; i < end; i++) {
      const frame = this.access(buf.gva(i), buf.kind[i], buf.value[i]);
      if (frame < 0) {
        this.batchStop = frame;
        return i;
      }
      if (buf.kind[i] !== KIND_SUP_WRITE && buf.kind[i] !== KIND_USER_WRITE) {
        buf.value[i] = this.readValue;
        this.batchReadHash = foldRead(this.batchReadHash, this.readValue);
      }
      this.batchFrame = frame;
    }
    return end;
  }

  /**
   * The TLB missed the address (gvaLo, gvaHi) (where === TLB_MISS), or held it without the
   * permission (TLB_L1 / TLB_L2): the common 4 KiB walk natively or on a shadow, written out
   * on int32 halves; anything else goes to translateSlow. Counts as translateSlow does.
   */
  private missHalves(gvaLo: number, gvaHi: number, kind: number, where: number): number {
    if (where === WHERE_WALK_SLOW) {
      return this.translateSlow(gvaHi * 4294967296 + (gvaLo >>> 0), kind, TLB_MISS);
    }
    if (where === TLB_MISS && this.paging && this.nested === null && this.pwc === null) {
      const tlb = this.tlb;
      const walker = this.walker;
      const frame = this.walkMiss(
        gvaLo,
        gvaHi,
        kind,
        this.tag,
        this.globalTag,
        tlb.largeFirst,
        tlb.largeLast,
        walker,
        true,
      );
      if (frame !== WALK_SLOW) {
        // translateSlow's first walk when it succeeds: no VMM ran since the probes missed.
        const c = this.counters;
        c[C_TLB_MISSES]++;
        c[C_WALKS]++;
        c[C_WALK_REFS] += walker.refs;
        this.walkHist[walker.refs]++;
        return frame;
      }
    }
    return this.translateSlow(gvaHi * 4294967296 + (gvaLo >>> 0), kind, where);
  }

  /**
   * Translate gva for `kind`: the 4 KiB frame, or XLATE_FAULT / XLATE_EMULATED. The two 4 KiB
   * TLB probes are written out here, on integers only (see the key layout in tlb.ts); large
   * pages, misses and permission failures go to translateSlow.
   */
  translate(gva: Gva, kind: number): number {
    return this.translateHalves(gva | 0, (gva / 4294967296) | 0, kind);
  }

  /**
   * translate() of the address whose bits 0..31 are `gvaLo` (as int32) and bits 32..47 `gvaHi`.
   * The guest kernel's direct-map addresses lie above 2^32: passed as one number each would be
   * a boxed double, allocated on its way in (about 110 bytes per shadow fault).
   */
  translateHalves(gvaLo: number, gvaHi: number, kind: number): number {
    const c = this.counters;
    c[C_ACCESSES]++;
    if (kind < ACC_USER) c[C_KERNEL_ACCESSES]++;
    const keyLo = gvaLo >>> 12;
    const keyHi = this.keyHiBase + gvaHi;
    const globalHi = this.globalHiBase + gvaHi;
    const tlb = this.tlb;
    const gen = tlb.tagGens[this.tag];
    const ggen = tlb.tagGens[this.globalTag];
    const l1 = tlb.l1;
    const k1 = l1.keys;
    const d1 = l1.d;
    let base = (keyLo & l1.setMask) * l1.ways;
    let end = base + l1.ways;
    for (let s = base; s < end; s++) {
      if (k1[s] !== keyLo) continue;
      const i = s * SLOT;
      const hi = d1[i + F_HI];
      if ((hi === keyHi && d1[i + F_GEN] === gen) || (hi === globalHi && d1[i + F_GEN] === ggen)) {
        if (((d1[i + F_PERMS] >> kind) & 1) === 0)
          return this.translateSlow(gvaHi * 4294967296 + (gvaLo >>> 0), kind, TLB_L1);
        l1.stamps[s] = ++l1.clock;
        if (l1.clock >= CLOCK_LIMIT) l1.renumber();
        c[C_TLB_L1_HITS]++;
        return d1[i + F_FRAME];
      }
    }
    const l2 = tlb.l2;
    const d2 = l2.d;
    const s = l2.find(keyHi, keyLo, gen, globalHi, ggen);
    if (s >= 0) {
      const i = s * SLOT;
      const hi = d2[i + F_HI];
      const perms = d2[i + F_PERMS];
      if (((perms >> kind) & 1) === 0)
        return this.translateSlow(gvaHi * 4294967296 + (gvaLo >>> 0), kind, TLB_L2);
      l2.stamps[s] = ++l2.clock;
      if (l2.clock >= CLOCK_LIMIT) l2.renumber();
      c[C_TLB_L2_HITS]++;
      const frame = d2[i + F_FRAME];
      const set1 = keyLo & l1.setMask;
      if (l1.allValid[set1] !== l1.flushes) {
        l1.fill(hi, keyLo, d2[i + F_GEN], frame, perms, tlb.tagGens);
        return frame;
      }
      // Copy into L1 whose set is all valid (TlbLevel.fill's common case, written out): the L1
      // probe found no valid copy, so the LRU way goes; the set stays all valid.
      const stamps1 = l1.stamps;
      base = set1 * l1.ways;
      end = base + l1.ways;
      const victim = lruWay(stamps1, base, end);
      const j = victim * SLOT;
      k1[victim] = keyLo;
      d1[j + F_HI] = hi;
      d1[j + F_GEN] = d2[i + F_GEN];
      d1[j + F_FRAME] = frame;
      d1[j + F_PERMS] = perms;
      stamps1[victim] = ++l1.clock;
      if (l1.clock >= CLOCK_LIMIT) l1.renumber();
      return frame;
    }
    return this.translateSlow(gvaHi * 4294967296 + (gvaLo >>> 0), kind, TLB_MISS);
  }

  /** A TLB miss, or a hit whose permissions do not allow the access: walk (and maybe exit). */
  private translateSlow(gva: Gva, kind: number, where: number): number {
    const c = this.counters;
    const tlb = this.tlb;
    const vpn = Math.floor(gva / 4096);
    if (where === TLB_MISS && this.paging) {
      where = tlb.lookupLarge(vpn, this.tag, this.globalTag);
      if (where !== TLB_MISS && ((tlb.perms >> kind) & 1) !== 0) {
        c[where === TLB_L1 ? C_TLB_L1_HITS : C_TLB_L2_HITS]++;
        return tlb.frame;
      }
    }
    // A cached entry that forbids the access is dropped and the walk redone, as a #PF
    // invalidates the faulting address (SDM 4.10.4.1): this is how D gets set on a clean page.
    if (where !== TLB_MISS) tlb.invalidatePage(vpn, this.tag, this.globalTag);
    c[C_TLB_MISSES]++;
    if (!this.paging) {
      const gfn = vpn;
      return this.intercepts ? this.intercepts.physFrame(this, gfn, (kind & 1) === 1) : gfn;
    }
    if (this.nested !== null) return translateNested(this, this.nested, gva, kind);
    const walker = this.walker;
    let retries = 0;
    for (;;) {
      let result: number;
      if (this.pwc !== null) result = walkCached(this, this.pwc, gva, kind);
      else if (this.trace !== null)
        result = walker.walk(this.mem, this.rootMfn, gva, kind, this.ctl);
      else {
        // A fault at an entry not present (each demand fault's first try, and each shadow entry
        // not made yet) is answered from the fast walk's reads, not walked a second time.
        const fast = walker.walkOrMiss(this.mem, this.rootMfn, gva, kind, this.ctl);
        if (fast >= 0) result = WALK_OK;
        else if (fast === WALK_NOT_PRESENT) result = faultCode(kind, false, false, this.ctl.nxe);
        else result = walker.walk(this.mem, this.rootMfn, gva, kind, this.ctl);
      }
      c[C_WALKS]++;
      c[C_WALK_REFS] += walker.refs;
      this.walkHist[walker.refs]++;
      if (this.dcache !== null) countRefsFrom(c, walker.refsFrom);
      if (this.trace !== null) this.recordWalk(result);
      if (result === WALK_OK) {
        const perms = cachedPerms(walker.allowed, walker.dirty);
        const tag = walker.global ? this.globalTag : this.tag;
        if (walker.level === 1) {
          const gvaLo = gva >>> 0;
          const keyHi = tag * 65536 + ((gva / 4294967296) | 0);
          // Natively nothing ran between the probes that missed and here; a VMM's fault
          // handler may have filled the TLB meanwhile.
          if (this.intercepts === null) {
            tlb.fillSmallAbsent(keyHi, gvaLo >>> 12, tag, walker.frame, perms);
          } else tlb.fillSmall(keyHi, gvaLo >>> 12, tag, walker.frame, perms);
        } else {
          tlb.fill(vpn, tag, walker.level, this.firstFrame(), perms);
        }
        return walker.frame;
      }
      if (this.intercepts === null) {
        this.faultCode = result;
        return XLATE_FAULT;
      }
      const answer = this.intercepts.pageFault(this, gva, kind, result);
      if (answer === PF_RETRY) {
        if (++retries > MAX_VMM_RETRIES) {
          throw new Error(
            `VMM livelock: #PF at 0x${gva.toString(16)} (kind ${kind}) keeps coming back`,
          );
        }
        continue;
      }
      if (answer === PF_EMULATED) return XLATE_EMULATED;
      this.faultCode = answer;
      return XLATE_FAULT;
    }
  }

  /** First 4 KiB frame of the page the walker found (a large page's base frame). */
  private firstFrame(): number {
    const w = this.walker;
    if (w.level === 1) return w.frame;
    return leafFrame(w.entryLo[w.level], w.entryHi[w.level], w.level);
  }

  /**
   * A kernel load or store of frame at the address whose bits 0..31 are gvaLo: through the data
   * caches, when modelled.
   */
  private countData(frame: Mfn, gvaLo: number): void {
    const dcache = this.dcache;
    if (dcache !== null && frame < this.mem.frames) {
      this.counters[C_DATA_FROM_L1D + dcache.access(frame, (gvaLo & 4095) >>> 6)]++;
    }
  }

  private recordWalk(result: number): void {
    if (this.trace === null) return;
    this.trace.push(this.walker.trace(this.rootMfn, result));
    this.events?.push({ kind: "walk", index: this.trace.length - 1, code: result });
  }

  /** Kernel load of the 64-bit word at gva into lo/hi. Returns 0 or XLATE_FAULT. */
  load64(gva: Gva): number {
    return this.load64Halves(gva | 0, (gva / 4294967296) | 0);
  }

  /** load64() of the address in halves (see translateHalves). */
  load64Halves(gvaLo: number, gvaHi: number): number {
    const frame = this.translateHalves(gvaLo, gvaHi, KIND_SUP_READ);
    if (frame < 0) return frame;
    this.counters[C_READS]++;
    this.countData(frame, gvaLo);
    this.mem.read64(frame, (gvaLo & 4095) >>> 3);
    this.lo = this.mem.lo;
    this.hi = this.mem.hi;
    return 0;
  }

  /** Kernel store of a 64-bit word at gva. Returns 0, XLATE_FAULT or XLATE_EMULATED. */
  store64(gva: Gva, lo: number, hi: number): number {
    return this.store64Halves(gva | 0, (gva / 4294967296) | 0, lo, hi);
  }

  /** store64() to the address in halves (see translateHalves). */
  store64Halves(gvaLo: number, gvaHi: number, lo: number, hi: number): number {
    this.op = OP_STORE64;
    this.pendLo = lo;
    this.pendHi = hi;
    const frame = this.translateHalves(gvaLo, gvaHi, KIND_SUP_WRITE);
    this.op = OP_ACCESS;
    if (frame < 0) return frame === XLATE_EMULATED ? 0 : frame;
    this.counters[C_WRITES]++;
    this.countData(frame, gvaLo);
    this.mem.write64(frame, (gvaLo & 4095) >>> 3, lo, hi);
    return 0;
  }

  /** Zero the 4 KiB page at gva (rep stosq). Returns 0 or XLATE_FAULT. */
  zeroPage(gva: Gva): number {
    return this.zeroPageHalves(gva | 0, (gva / 4294967296) | 0);
  }

  /** zeroPage() of the page at the address in halves (see translateHalves). */
  zeroPageHalves(gvaLo: number, gvaHi: number): number {
    this.op = OP_ZERO_PAGE;
    const frame = this.translateHalves(gvaLo, gvaHi, KIND_SUP_WRITE);
    this.op = OP_ACCESS;
    if (frame < 0) return frame === XLATE_EMULATED ? 0 : frame;
    this.counters[C_PAGE_ZERO]++;
    // The page's lines come into the caches; the zeroing is priced as a whole (page_zero).
    this.dcache?.touchFrame(frame);
    this.mem.zeroFrame(frame);
    return 0;
  }

  /** Copy the 4 KiB page at srcGva to dstGva (rep movsq). Returns 0 or XLATE_FAULT. */
  copyPage(dstGva: Gva, srcGva: Gva): number {
    const src = this.translate(srcGva, KIND_SUP_READ);
    if (src < 0) return src;
    this.op = OP_COPY_PAGE;
    this.pendSrcFrame = src;
    const dst = this.translate(dstGva, KIND_SUP_WRITE);
    this.op = OP_ACCESS;
    if (dst < 0) return dst === XLATE_EMULATED ? 0 : dst;
    this.counters[C_PAGE_COPY]++;
    this.dcache?.touchFrame(src);
    this.dcache?.touchFrame(dst);
    this.mem.copyFrame(dst, src);
    return 0;
  }

  /** A store with paging off (early boot): gpa is the address. */
  storePhys64(gpa: Gpa, lo: number, hi: number): void {
    if (this.paging) throw new Error("storePhys64 with paging on: every access is translated");
    const gfn = Math.floor(gpa / 4096);
    const frame = this.intercepts ? this.intercepts.physFrame(this, gfn, true) : gfn;
    this.mem.write64(frame, Math.floor((gpa % 4096) / 8), lo, hi);
  }

  loadPhys64(gpa: Gpa): void {
    if (this.paging) throw new Error("loadPhys64 with paging on: every access is translated");
    const gfn = Math.floor(gpa / 4096);
    const frame = this.intercepts ? this.intercepts.physFrame(this, gfn, false) : gfn;
    this.mem.read64(frame, Math.floor((gpa % 4096) / 8));
    this.lo = this.mem.lo;
    this.hi = this.mem.hi;
  }

  /**
   * MOV to CR3 (SDM 4.10.4.1): without PCIDs, flush the non-global entries of the address space;
   * with a PCID, flush that PCID's entries unless noFlush (bit 63) is set.
   */
  writeCr3(gpa: Gpa, pcid: number, noFlush: boolean): void {
    this.counters[C_CR3_WRITES]++;
    this.guestCr3 = gpa;
    if (this.intercepts) {
      this.intercepts.writeCr3(this, gpa, pcid, noFlush);
      return;
    }
    this.loadRoot(Math.floor(gpa / 4096), pcid, noFlush);
  }

  /** Point the hardware at a root table and switch TLB tags (used natively and by a VMM). */
  loadRoot(rootMfn: Mfn, pcid: number, noFlush: boolean): void {
    this.rootMfn = rootMfn;
    this.setAddressSpace(this.vpid, pcid);
    if (!noFlush) {
      this.counters[C_TLB_FLUSHES]++;
      this.tlb.flushTag(this.tag);
    }
  }

  /** INVLPG: drop the TLB entries (current tag and global) for the page of gva. */
  invlpg(gva: Gva): void {
    this.counters[C_INVLPG]++;
    if (this.intercepts) {
      // Under shadow paging INVLPG exits (the VMM does the invalidation); under HAP it does not
      // (the intercept is the hardware's). Either way the caches of upper levels go.
      this.flushPagingStructureCaches();
      this.intercepts.invlpg(this, gva);
      return;
    }
    this.invalidatePage(gva);
  }

  /**
   * What the hardware's INVLPG does to its caches (SDM 4.10.4.1): the page's TLB entries (of
   * the current tag and global ones), and every paging-structure cache entry of the PCID. Also
   * what a PV guest's INVLPG_LOCAL and update_va_mapping's INVLPG flag make Xen do.
   */
  invalidatePage(gva: Gva): void {
    this.flushPagingStructureCaches();
    this.tlb.invalidatePage(Math.floor(gva / 4096), this.tag, this.globalTag);
  }

  private flushPagingStructureCaches(): void {
    this.nested?.flushGuest();
    if (this.pwc !== null) for (let l = 2; l <= 4; l++) this.pwc[l].flushAll();
  }

  /**
   * Flush every TLB entry of this vCPU's VPID, global ones included (a CR4.PGE toggle, as
   * Linux's flush_tlb_all does). A non-global flush is a CR3 reload: writeCr3.
   */
  flushTlbAll(): void {
    this.counters[C_TLB_FLUSHES]++;
    this.tags.flushVpid(this.vpid);
  }

  dmaWrite(gfn: number, digest: number): void {
    this.counters[C_PAGE_READS]++;
    if (this.intercepts) this.intercepts.dmaWrite(this, gfn, digest);
    else this.mem.setDigest(gfn, digest);
  }

  memoryOp(op: number, gfns: Int32Array, count: number): number {
    return this.intercepts ? this.intercepts.memoryOp(this, op, gfns, count) : HYPERCALL_ENOSYS;
  }

  mmuUpdate(batch: MmuBatch, count: number): number {
    return this.pvMmu ? this.pvMmu.mmuUpdate(batch, count) : HYPERCALL_ENOSYS;
  }

  updateVaMapping(gva: Gva, lo: number, hi: number, flags: number): number {
    return this.pvMmu ? this.pvMmu.updateVaMapping(gva, lo, hi, flags) : HYPERCALL_ENOSYS;
  }

  mmuextOp(cmd: number, mfn: Mfn, gva: Gva): number {
    return this.pvMmu ? this.pvMmu.mmuextOp(cmd, mfn, gva) : HYPERCALL_ENOSYS;
  }

  /** Set CR0.PG with the current CR3 (the end of early boot). */
  enablePaging(): void {
    this.paging = true;
    this.tlb.flushTag(this.tag);
    this.tlb.flushTag(this.globalTag);
    // Under a VMM the hardware must not walk whatever rootMfn held before: the VMM loads the
    // root that stands for the guest's CR3 (a shadow), or the domain is crashed.
    this.intercepts?.enablePaging(this);
  }
}
