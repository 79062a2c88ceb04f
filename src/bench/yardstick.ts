/**
 * The yardstick for native-local and native-random: the model they measure written as a plain
 * typed-array program, as one would write it to be fast and nothing else. The same TLB geometry
 * (L1 64 entries 4-way, L2 1536 entries 12-way, 4 KiB pages, true LRU by stamps), a 4-level walk
 * of tables held in one Int32Array (an entry's low word: present, writable, user, frame), the
 * same access stream (fillStream, the same seed) over the same 2^20 pages. It has none of the
 * simulator's model beyond that: no address-space tags or generations, no permission bits in the
 * TLB, no counters beyond the three levels' hits, no large pages, A/D bits, faults or VMM.
 *
 * Its figure beside memvisor's, measured in one invocation, says how much of memvisor's time per
 * access is the simulator's own overhead rather than what any program of this model pays on this
 * machine; ratio_to_native is this one's rate over native-local's (or native-random's).
 */

import { USER_HEAP_BASE } from "../guest/layout.js";
import { KIND_USER_WRITE } from "../hw/access.js";
import { AccessBuffer } from "../hw/access-buffer.js";
import { Rng } from "../workload/rng.js";
import {
  accessRates,
  type BenchResult,
  CHUNK,
  ChunkTimer,
  fillStream,
  PAGES,
  round,
} from "./access.js";

const L1_SETS = 16;
const L1_WAYS = 4;
const L2_SETS = 128;
const L2_WAYS = 12;
const WORDS_PER_TABLE = 1024;
const P = 1;
const RW = 2;
const US = 4;

/** A 4-level page table mapping PAGES pages from USER_HEAP_BASE, tables in one array. */
export class Tables {
  words = new Int32Array(64 * WORDS_PER_TABLE);
  private used = 1; // table 0 is the root

  map(vpn: number, frame: number): void {
    let table = 0;
    for (let level = 4; level >= 2; level--) {
      const at = table * WORDS_PER_TABLE + ((vpn >>> (9 * (level - 1))) & 511) * 2;
      if ((this.words[at] & P) === 0) {
        const fresh = this.newTable(); // may grow (replace) the array: first, then the store
        this.words[at] = (fresh << 12) | P | RW | US;
      }
      table = this.words[at] >>> 12;
    }
    this.words[table * WORDS_PER_TABLE + (vpn & 511) * 2] = (frame << 12) | P | RW | US;
  }

  private newTable(): number {
    if ((this.used + 1) * WORDS_PER_TABLE > this.words.length) {
      const grown = new Int32Array(this.words.length * 2);
      grown.set(this.words);
      this.words = grown;
    }
    return this.used++;
  }
}

/** TLB arrays of both levels and the counts of their hits and the misses. */
export interface Tlb {
  k1: Int32Array;
  f1: Int32Array;
  s1: Int32Array;
  k2: Int32Array;
  f2: Int32Array;
  s2: Int32Array;
  clock: number;
  l1Hits: number;
  l2Hits: number;
  misses: number;
}

/** One chunk of the stream through the TLB and the walk; returns the sum of the frames. */
export function runChunk(buf: AccessBuffer, n: number, t: Tlb, mem: Int32Array): number {
  const { k1, f1, s1, k2, f2, s2 } = t;
  const los = buf.lo;
  const his = buf.hi;
  const kinds = buf.kind;
  let clock = t.clock;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const vpn = (his[i] << 20) | (los[i] >>> 12);
    let frame = -1;
    let s = (vpn & (L1_SETS - 1)) * L1_WAYS;
    let e = s + L1_WAYS;
    for (; s < e; s++) {
      if (k1[s] === vpn) {
        frame = f1[s];
        s1[s] = ++clock;
        t.l1Hits++;
        break;
      }
    }
    if (frame < 0) {
      s = (vpn & (L2_SETS - 1)) * L2_WAYS;
      e = s + L2_WAYS;
      for (; s < e; s++) {
        if (k2[s] === vpn) {
          frame = f2[s];
          s2[s] = ++clock;
          t.l2Hits++;
          break;
        }
      }
      if (frame < 0) {
        t.misses++;
        let table = 0;
        let and = -1;
        for (let level = 4; level >= 1; level--) {
          const entry = mem[table * WORDS_PER_TABLE + ((vpn >>> (9 * (level - 1))) & 511) * 2];
          and &= entry;
          table = entry >>> 12;
          if ((entry & P) === 0) break;
        }
        const need = kinds[i] === KIND_USER_WRITE ? P | RW | US : P | US;
        if ((and & need) !== need) throw new Error("yardstick: a page the stream uses is unmapped");
        frame = table;
        const set2 = (vpn & (L2_SETS - 1)) * L2_WAYS;
        let v = set2;
        for (let w = set2 + 1; w < set2 + L2_WAYS; w++) if (s2[w] < s2[v]) v = w;
        k2[v] = vpn;
        f2[v] = frame;
        s2[v] = ++clock;
      }
      const set1 = (vpn & (L1_SETS - 1)) * L1_WAYS;
      let v = set1;
      for (let w = set1 + 1; w < set1 + L1_WAYS; w++) if (s1[w] < s1[v]) v = w;
      k1[v] = vpn;
      f1[v] = frame;
      s1[v] = ++clock;
    }
    sum = (sum + frame) | 0;
  }
  t.clock = clock;
  return sum;
}

/** The benchmarks' PAGES pages from USER_HEAP_BASE, mapped. */
export function yardstickTables(): Tables {
  const tables = new Tables();
  const firstVpn = USER_HEAP_BASE / 4096;
  for (let p = 0; p < PAGES; p++) tables.map(firstVpn + p, p);
  return tables;
}

export function emptyTlb(): Tlb {
  return {
    k1: new Int32Array(L1_SETS * L1_WAYS).fill(-1),
    f1: new Int32Array(L1_SETS * L1_WAYS),
    s1: new Int32Array(L1_SETS * L1_WAYS),
    k2: new Int32Array(L2_SETS * L2_WAYS).fill(-1),
    f2: new Int32Array(L2_SETS * L2_WAYS),
    s2: new Int32Array(L2_SETS * L2_WAYS),
    clock: 0,
    l1Hits: 0,
    l2Hits: 0,
    misses: 0,
  };
}

/** `count` accesses of the stream native-local (0.9) or native-random (0) makes, after warm-up. */
export function benchYardstick(name: string, hotShare: number, count: number): BenchResult {
  const mem = yardstickTables().words;
  const tlb = emptyTlb();
  const rng = new Rng(11);
  const buf = new AccessBuffer(CHUNK);
  let check = 0;
  const loop = (total: number): ChunkTimer => {
    const timer = new ChunkTimer();
    for (let done = 0; done < total; done += buf.length) {
      const n = Math.min(CHUNK, total - done);
      fillStream(buf, rng, done, n, hotShare);
      timer.start();
      check ^= runChunk(buf, n, tlb, mem);
      timer.stop();
    }
    return timer;
  };
  loop(count / 4); // warm-up: JIT and TLB, as benchAccess
  tlb.misses = 0;
  const timed = loop(count);
  return {
    ...accessRates(name, count, timed),
    tlb_miss_rate: round(tlb.misses / count),
    // Printed so that no compiler may drop the loop as unused.
    checksum: check >>> 0,
  };
}
