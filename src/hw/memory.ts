/**
 * Host physical memory: `frames` frames of 4 KiB, indexed by mfn.
 *
 * A frame's content is kept in one of two forms, so that gigabytes of guest data cost a few
 * bytes a frame while page tables hold real 64-bit entries:
 * - digest only (`meta[2 * mfn] === 0`): a 32-bit digest of the content, 0 meaning all zeroes.
 *   A data write mixes (offset, value) into the digest; a read returns a value derived from the
 *   digest and the offset. Two frames with the same write history have the same digest.
 * - materialized: 512 entries of 64 bits, as 1024 u32 words (lo, hi) in a pooled array. A frame
 *   is materialized by its first 64-bit store (page-table entries, explicit stores); its words
 *   start as the expansion of its digest, so materializing never changes what is read.
 * With `exactData` every data write materializes its frame, so a read returns exactly the value
 * last written there (tests, and scenarios that need bytes), at 4 KiB of host memory a frame.
 */

import type { Mfn } from "./addr.js";

/**
 * u32 words in one materialized frame: 512 entries of two halves. The methods use the private
 * copy: V8 reads an exported constant from its module cell, checking that it is initialised, at
 * every use (in each read64 inlined into the shadow fault handler, for one).
 */
const WORDS = 1024;
export const WORDS_PER_FRAME = WORDS;

/** log2 of the most entries of the table-slot cache (128 KiB), and of the fewest. */
const SLOT_CACHE_MAX_BITS = 14;
const SLOT_CACHE_MIN_BITS = 8;

/**
 * log2 of the entries of the table-slot cache for `frames` frames: one per 64 frames (page
 * tables are about one frame in 512 of a guest's), within the bounds above.
 */
function slotCacheBits(frames: number): number {
  let bits = SLOT_CACHE_MIN_BITS;
  while (bits < SLOT_CACHE_MAX_BITS && 2 ** (bits + 6) < frames) bits++;
  return bits;
}

/** The value a digest-only frame reads at qword `index`: zero for a zero frame. */
export function digestWord(digest: number, index: number): number {
  if (digest === 0) return 0;
  let x = Math.imul(digest ^ Math.imul(index + 1, 0x9e3779b1), 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** The digest after writing `value` at qword `index`; never 0, so a written frame is not "zero". */
export function mixDigest(digest: number, index: number, value: number): number {
  let x = Math.imul(digest ^ 0x27d4eb2f, 0x165667b1) ^ Math.imul(index + 1, 0x9e3779b1) ^ value;
  x = Math.imul(x ^ (x >>> 15), 0x85ebca6b);
  x = (x ^ (x >>> 13)) >>> 0;
  return x === 0 ? 1 : x;
}

/** An image's id from its name (FNV-1a): the same name gives the same pages in every domain. */
export function imageId(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0 || 1;
}

/** The digest of page `page` of image `id`: never 0 (an image page is not a zero page). */
export function imagePageDigest(id: number, page: number): number {
  let x = Math.imul(id ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(page + 1, 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 15), 0x2c1b3c6d);
  x = (x ^ (x >>> 12)) >>> 0;
  return x === 0 ? 1 : x;
}

export class HostMemory {
  /** Number of frames. */
  readonly frames: number;
  /**
   * Two words per frame, side by side so that one cache line serves both: [2*mfn] the pool slot
   * of a materialized frame plus one (0 when digest-only), [2*mfn+1] the content digest (as
   * int32; 0 = all zeroes) of a digest-only frame. A never-touched frame is all zeroes here, so
   * the array costs memory only for frames that have been written (the system maps a zeroed
   * array's pages at their first write); slotOf reads the slot.
   */
  readonly meta: Int32Array;
  /** Materialized frames, WORDS_PER_FRAME u32 words each; grows by doubling. */
  pool: Uint32Array;
  private freeSlots: Int32Array;
  private freeSlotCount = 0;
  private slotsUsed = 0;
  /**
   * Pool slots of recently walked frames, direct-mapped by a multiplicative hash of the mfn
   * (slotIndex): [2h] the mfn (-1 when empty), [2h+1] its slot. Only materialized frames enter,
   * and release() drops a frame, so an entry is always right. Why: page tables sit one or more
   * OS pages apart in `meta` (the guest allocates them among its data frames), so a walk's meta
   * reads missed the host's caches and TLB. Hashed because tables sit at regular strides (a
   * cache indexed by the mfn's low bits missed on 5-9% of the reads of random walks over 2^20
   * pages; measured by counting); up to 128 KiB.
   */
  private readonly slotCache: Int32Array;
  /** 32 - log2(entries of slotCache): the shift of its multiplicative hash. */
  private readonly slotShift: number;
  /** Materialize a frame on its first data write, so reads return exactly what was written. */
  exactData = false;
  /**
   * The page-contents model of data accesses (on by default): when false, the vCPUs' data reads
   * and writes leave memory alone and reads return 0, so that an access costs only its
   * translation (the model a plain TLB-and-walk program has). Page tables, kernel stores, page
   * zeroing and copies, and DMA keep their contents either way; what needs data contents (page
   * sharing, exact data) refuses to run without them (see checkContents).
   */
  contents = true;
  /**
   * Moved on by every change to a materialized frame's words (write64, orLo, a data write to a
   * materialized frame, zeroing, copying, restoring, releasing): a walk memo (walk-memo.ts)
   * entry is good only at the epoch it was made in. Starts at 1, so a zeroed memo entry (epoch
   * 0) is never good; wraps back to 1 before int32 overflow, counting the wraps (a memo empties
   * itself when the count changes, so an old epoch coming round again matches nothing).
   */
  tableEpoch = 1;
  tableEpochWraps = 0;
  /** Scratch outputs of read64: the low and high halves read. */
  lo = 0;
  hi = 0;
  /**
   * For checkers (api/check.ts), null unless one asked (trackWrites): per frame, the value of
   * writeEpoch at its last change of content, so that a check reads again only the frames
   * written since its previous one. Data writes to digest-only frames are not tracked (no
   * table lives in one).
   */
  writeEpochs: Int32Array | null = null;
  /** Bumped by each check that reads writeEpochs. */
  writeEpoch = 1;

  constructor(frames: number) {
    if (!Number.isInteger(frames) || frames < 1 || frames >= 2 ** 31) {
      throw new RangeError(`host memory needs 1..2^31-1 frames (8 TiB), got ${frames}`);
    }
    this.frames = frames | 0; // a small integer field, whatever arithmetic produced `frames`
    const bits = slotCacheBits(frames);
    this.slotCache = new Int32Array(2 << bits).fill(-1);
    this.slotShift = 32 - bits;
    this.meta = new Int32Array(frames * 2);
    const initialSlots = Math.min(frames, 256);
    this.pool = new Uint32Array(initialSlots * WORDS);
    this.freeSlots = new Int32Array(initialSlots);
  }

  /** A materialized frame's words changed (or a slot was given up): see tableEpoch. */
  private tablesChanged(): void {
    if (++this.tableEpoch === 0x7fffffff) {
      this.tableEpoch = 1;
      this.tableEpochWraps++;
    }
  }

  /** Start tracking writes (see writeEpochs); every frame counts as written now. */
  trackWrites(): void {
    if (this.writeEpochs === null)
      this.writeEpochs = new Int32Array(this.frames).fill(this.writeEpoch);
  }

  /** Frames that hold materialized entries (page tables, explicit stores). */
  get materializedFrames(): number {
    return this.slotsUsed - this.freeSlotCount;
  }

  /** The pool slot of frame `mfn` (< frames) from its metadata, -1 when digest-only. */
  slotOf(mfn: Mfn): number {
    return this.meta[2 * mfn] - 1;
  }

  /** Where slotCache keeps mfn (the index of its first word). */
  private slotIndex(mfn: Mfn): number {
    return (Math.imul(mfn, 0x9e3779b1) >>> this.slotShift) << 1;
  }

  /** The pool slot of frame `mfn`, or -1 when it is digest-only or beyond memory. */
  tableSlot(mfn: Mfn): number {
    const h = this.slotIndex(mfn);
    const cache = this.slotCache;
    if (cache[h] === mfn) return cache[h + 1];
    if (mfn >= this.frames) return -1;
    const slot = this.meta[2 * mfn] - 1;
    if (slot >= 0) {
      cache[h] = mfn;
      cache[h + 1] = slot;
    }
    return slot;
  }

  /** Read the 64-bit entry `index` (0..511) of frame `mfn` into this.lo / this.hi. */
  read64(mfn: Mfn, index: number): void {
    const slot = this.meta[2 * mfn] - 1;
    if (slot >= 0) {
      const w = slot * WORDS + index * 2;
      this.lo = this.pool[w];
      this.hi = this.pool[w + 1];
    } else {
      this.lo = digestWord(this.meta[2 * mfn + 1] >>> 0, index);
      this.hi = 0;
    }
  }

  /** read64 for checkers that read a guest's memory through a view (natively gfn = mfn). */
  peek64(mfn: Mfn, index: number): void {
    this.read64(mfn, index);
  }

  /** Write the 64-bit entry `index` of frame `mfn`, materializing the frame. */
  write64(mfn: Mfn, index: number, lo: number, hi: number): void {
    let slot = this.meta[2 * mfn] - 1;
    if (slot < 0) slot = this.materialize(mfn);
    const w = slot * WORDS + index * 2;
    this.pool[w] = lo;
    this.pool[w + 1] = hi;
    if (this.writeEpochs !== null) this.writeEpochs[mfn] = this.writeEpoch;
    this.tablesChanged();
  }

  /** Set bits in the low half of entry `index` (the walker's A/D updates). */
  orLo(mfn: Mfn, index: number, bits: number): void {
    let slot = this.meta[2 * mfn] - 1;
    if (slot < 0) slot = this.materialize(mfn);
    const w = slot * WORDS + index * 2;
    this.pool[w] = (this.pool[w] | bits) >>> 0;
    if (this.writeEpochs !== null) this.writeEpochs[mfn] = this.writeEpoch;
    this.tablesChanged();
  }

  /** A data read of qword `index`: the 32-bit value the program sees. */
  readData(mfn: Mfn, index: number): number {
    const slot = this.meta[2 * mfn] - 1;
    if (slot >= 0) return this.pool[slot * WORDS + index * 2];
    return digestWord(this.meta[2 * mfn + 1] >>> 0, index);
  }

  /** A data write of a 32-bit `value` at qword `index` (high half zero). */
  writeData(mfn: Mfn, index: number, value: number): void {
    let slot = this.meta[2 * mfn] - 1;
    if (slot < 0 && this.exactData) slot = this.materialize(mfn);
    if (slot >= 0) {
      const w = slot * WORDS + index * 2;
      this.pool[w] = value >>> 0;
      this.pool[w + 1] = 0;
      if (this.writeEpochs !== null) this.writeEpochs[mfn] = this.writeEpoch;
      this.tablesChanged();
    } else {
      this.meta[2 * mfn + 1] = mixDigest(this.meta[2 * mfn + 1] >>> 0, index, value);
    }
  }

  /** Fill a frame with zeroes (and return it to digest-only form). */
  zeroFrame(mfn: Mfn): void {
    this.release(mfn);
    this.meta[2 * mfn + 1] = 0;
  }

  /** Give a frame the content whose digest is `digest` (a whole-page write, such as a DMA). */
  setDigest(mfn: Mfn, digest: number): void {
    this.release(mfn);
    this.meta[2 * mfn + 1] = digest;
  }

  /** Copy frame `src` to frame `dst`. */
  copyFrame(dst: Mfn, src: Mfn): void {
    const srcSlot = this.meta[2 * src] - 1;
    if (srcSlot < 0) {
      this.release(dst);
      this.meta[2 * dst + 1] = this.meta[2 * src + 1] >>> 0;
      return;
    }
    let dstSlot = this.meta[2 * dst] - 1;
    if (dstSlot < 0) dstSlot = this.materialize(dst);
    if (this.writeEpochs !== null) this.writeEpochs[dst] = this.writeEpoch;
    // materialize() may have grown the pool; take the source offset after it.
    const from = (this.meta[2 * src] - 1) * WORDS;
    this.pool.copyWithin(dstSlot * WORDS, from, from + WORDS);
    this.tablesChanged();
  }

  /**
   * The frame's content, to keep while the frame itself is given away (host swapping): its
   * digest, or a copy of its words when it is materialized.
   */
  saveFrame(mfn: Mfn): number | Uint32Array {
    const slot = this.meta[2 * mfn] - 1;
    if (slot < 0) return this.meta[2 * mfn + 1] >>> 0;
    const base = slot * WORDS;
    return this.pool.slice(base, base + WORDS);
  }

  /** Put content saved by saveFrame into frame `mfn` (which may be another frame). */
  restoreFrame(mfn: Mfn, saved: number | Uint32Array): void {
    if (typeof saved === "number") {
      this.release(mfn);
      this.meta[2 * mfn + 1] = saved;
      return;
    }
    let slot = this.meta[2 * mfn] - 1;
    if (slot < 0) slot = this.materialize(mfn);
    if (this.writeEpochs !== null) this.writeEpochs[mfn] = this.writeEpoch;
    this.pool.set(saved, slot * WORDS);
    this.tablesChanged();
  }

  /** A digest of the frame's whole content, whichever form it is in (for comparisons). */
  contentDigest(mfn: Mfn): number {
    const slot = this.meta[2 * mfn] - 1;
    if (slot < 0) return this.meta[2 * mfn + 1] >>> 0;
    let h = 0;
    let nonZero = false;
    const base = slot * WORDS;
    for (let i = 0; i < WORDS; i++) {
      const v = this.pool[base + i];
      if (v !== 0) nonZero = true;
      h = Math.imul(h ^ v, 0x01000193) + i;
    }
    return nonZero ? h >>> 0 || 1 : 0;
  }

  /** Whether two frames hold the same content (a full compare, as page sharing does). */
  sameContent(a: Mfn, b: Mfn): boolean {
    const sa = this.meta[2 * a] - 1;
    const sb = this.meta[2 * b] - 1;
    if (sa < 0 && sb < 0) return this.meta[2 * a + 1] >>> 0 === this.meta[2 * b + 1] >>> 0;
    for (let i = 0; i < 512; i++) {
      this.read64(a, i);
      const lo = this.lo;
      const hi = this.hi;
      this.read64(b, i);
      if (lo !== this.lo || hi !== this.hi) return false;
    }
    return true;
  }

  private materialize(mfn: Mfn): number {
    let slot: number;
    if (this.freeSlotCount > 0) {
      slot = this.freeSlots[--this.freeSlotCount];
    } else {
      slot = this.slotsUsed++;
      if (slot * WORDS >= this.pool.length) this.growPool();
    }
    const base = slot * WORDS;
    const d = this.meta[2 * mfn + 1] >>> 0;
    if (d === 0) {
      this.pool.fill(0, base, base + WORDS);
    } else {
      for (let i = 0; i < 512; i++) {
        this.pool[base + i * 2] = digestWord(d, i);
        this.pool[base + i * 2 + 1] = 0;
      }
    }
    this.meta[2 * mfn] = slot + 1;
    return slot;
  }

  private release(mfn: Mfn): void {
    if (this.writeEpochs !== null) this.writeEpochs[mfn] = this.writeEpoch;
    const slot = this.meta[2 * mfn] - 1;
    if (slot < 0) return;
    this.meta[2 * mfn] = 0;
    this.tablesChanged();
    const h = this.slotIndex(mfn);
    if (this.slotCache[h] === mfn) this.slotCache[h] = -1;
    if (this.freeSlotCount === this.freeSlots.length) {
      const bigger = new Int32Array(this.freeSlots.length * 2);
      bigger.set(this.freeSlots);
      this.freeSlots = bigger;
    }
    this.freeSlots[this.freeSlotCount++] = slot;
  }

  private growPool(): void {
    const bigger = new Uint32Array(this.pool.length * 2);
    bigger.set(this.pool);
    this.pool = bigger;
  }
}
