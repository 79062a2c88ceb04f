/**
 * The address space a recorded program had, read back from its trace: the pages it touched,
 * grouped into regions (VMAs) the way its loader, its heap and its stack laid them out. The
 * guest kernel maps these regions at exec and demand-pages them as the replay touches them, so a
 * replay takes the faults the real program took (first touches), not faults of a made-up layout.
 *
 * A region is a run of touched pages with gaps of at most GAP_PAGES untouched pages inside (an
 * ELF's segments, a heap's holes): the gaps are mapped but never touched, so they cost nothing.
 * Its permissions are what the trace did in it: readable, writable if it was written, executable
 * if code was fetched from it (a region mixing code and data is both, as a page with both is).
 * Its kind is what most of its pages were: code if more were fetched from than written to (a
 * python heap of 1,056 pages, 1,048 written and 5 fetched, is data), else data, named by place.
 */

import type { TraceRecords } from "../../config/trace.js";
import { USER_LIMIT } from "../../guest/layout.js";
import { VM_EXEC, VM_READ, VM_WRITE, type VmaLayout } from "../../guest/process.js";
import { TRACE_FETCH, TRACE_STORE } from "./lackey.js";

/** Untouched pages a region may span between two touched ones (64 KiB). */
export const GAP_PAGES = 16;

export interface TraceLayout {
  regions: VmaLayout[];
  /** Distinct 4 KiB pages the trace touches: the resident set it builds. */
  pages: number;
}

/**
 * What a trace file's one reading found (workload/trace/stream.ts): its layout and its problem,
 * kept so that a trace read in chunks is not read through again for them.
 */
const known = new WeakMap<TraceRecords, { layout: TraceLayout | null; problem: string }>();

/** Records what a reading of `trace` found: its problem, and its layout when it has none. */
export function knownLayout(
  trace: TraceRecords,
  problem: string,
  layout: TraceLayout | null,
): void {
  known.set(trace, { layout, problem });
}

/** Why a trace cannot be replayed as a user process, or "" when it can. */
export function traceProblem(trace: TraceRecords): string {
  const got = known.get(trace);
  if (got !== undefined) return got.problem;
  const scan = new LayoutScan();
  for (let k = 0; k < trace.chunks && scan.problem === ""; k++) scan.problemIn(trace.chunk(k));
  return scan.problem;
}

/** The trace's regions, computed once per trace. The trace must pass traceProblem. */
export function traceLayout(trace: TraceRecords): TraceLayout {
  const got = known.get(trace);
  if (got?.layout) return got.layout;
  const scan = new LayoutScan();
  for (let k = 0; k < trace.chunks; k++) scan.add(trace.chunk(k));
  const layout = scan.layout();
  known.set(trace, { layout, problem: "" });
  return layout;
}

const BIT_WRITE = 1;
const BIT_FETCH = 2;
/** Pages remembered by LayoutScan (a power of two). */
const RECENT = 1 << 14;

/**
 * A trace's layout and its problem, from its records chunk by chunk in order: memory holds the
 * pages touched (what the run will hold anyway), not the records.
 */
export class LayoutScan {
  /** Why a trace process cannot replay it, at the first record that says so ("": none yet). */
  problem = "";
  /** Records seen. */
  records = 0;
  /** Records by kind: load, store, fetch (and 3, which no valid record has). */
  readonly kinds = [0, 0, 0, 0];
  // Page number -> what was done in it.
  private readonly seen = new Map<number, number>();
  /**
   * The pages seen lately and what the map has for them, by a hash of the page: a record that
   * adds nothing to what the map has for its page skips the map (a trace touches its pages
   * again and again; a map's look-up costs ten times this).
   */
  private readonly recentPage = new Float64Array(RECENT).fill(-1);
  private readonly recentBits = new Uint8Array(RECENT);
  /** The last record's page and what the map has for it. */
  private lastPage = -1;
  private lastBits = 0;

  /** Only the problem (a trace that has one has no layout). */
  problemIn(w: Uint32Array): void {
    const n = w.length >>> 1;
    for (let i = 0; i < n && this.problem === ""; i++) this.check(w, i);
    this.records += n;
  }

  /** The records of the next chunk. */
  add(w: Uint32Array): void {
    const { seen, recentPage, recentBits, kinds } = this;
    let { lastPage, lastBits } = this;
    const n = w.length >>> 1;
    for (let i = 0; i < n; i++) {
      const meta = w[2 * i + 1];
      const hi = meta & 0xffff;
      // Bits 32..47 of the address at or above bit 47: a kernel address.
      if (hi >= 0x8000 && this.problem === "") this.check(w, i);
      const lo = w[2 * i] >>> 12;
      const page = hi * 1048576 + lo;
      const kind = (meta >>> 16) & 3;
      kinds[kind]++;
      const bits = kind === TRACE_STORE ? BIT_WRITE : kind === TRACE_FETCH ? BIT_FETCH : 0;
      // Consecutive records mostly stay in one page: the cheapest test first.
      if (page === lastPage && (lastBits | bits) === lastBits) continue;
      const slot = (lo ^ (hi << 5) ^ (lo >>> 11)) & (RECENT - 1);
      lastPage = page;
      lastBits = recentBits[slot];
      if (recentPage[slot] === page && (lastBits | bits) === lastBits) continue;
      lastBits = (seen.get(page) ?? 0) | bits;
      seen.set(page, lastBits);
      recentPage[slot] = page;
      recentBits[slot] = lastBits;
    }
    this.lastPage = lastPage;
    this.lastBits = lastBits;
    this.records += n;
  }

  private check(w: Uint32Array, i: number): void {
    if ((w[2 * i + 1] & 0xffff) < 0x8000) return;
    const address = (w[2 * i + 1] & 0xffff) * 4294967296 + w[2 * i];
    this.problem = `record ${this.records + i} is at 0x${address.toString(16)}, not a user address (user addresses are below 0x${USER_LIMIT.toString(16)})`;
  }

  /** The regions of the records added (a trace with no problem). */
  layout(): TraceLayout {
    const seen = this.seen;
    const pages = [...seen.keys()].sort((a, b) => a - b);
    const regions: VmaLayout[] = [];
    let first = 0;
    for (let i = 1; i <= pages.length; i++) {
      if (i < pages.length && pages[i] - pages[i - 1] <= GAP_PAGES + 1) continue;
      let bits = 0;
      let fetched = 0;
      let written = 0;
      for (let j = first; j < i; j++) {
        const page = seen.get(pages[j]) ?? 0;
        bits |= page;
        if (page & BIT_FETCH) fetched++;
        else if (page & BIT_WRITE) written++;
      }
      // Code when more of its pages were fetched from than written (a program's text with its
      // data beside it); a heap with a few pages fetched from is data, executable.
      const code = fetched > written;
      regions.push({
        start: pages[first] * 4096,
        end: (pages[i - 1] + 1) * 4096,
        prot: VM_READ | (bits & BIT_WRITE ? VM_WRITE : 0) | (bits & BIT_FETCH ? VM_EXEC : 0),
        kind: code ? "code" : "mmap",
        // Code is read from the program's file; data starts as zeroes.
        fromImage: code,
      });
      first = i;
    }
    nameDataRegions(regions);
    return { regions, pages: pages.length };
  }
}

/**
 * Names data regions as Linux's layout would place them: the highest is the stack, the first
 * writable one above the lowest code is the heap (brk starts after the program's image), the
 * others are mmap areas (shared libraries' data, anonymous mappings).
 */
function nameDataRegions(regions: VmaLayout[]): void {
  const data = regions.filter((r) => r.kind !== "code");
  if (data.length === 0) return;
  const top = data[data.length - 1];
  if (top !== regions[0]) top.kind = "stack";
  const codeStart = regions.find((r) => r.kind === "code")?.start ?? 0;
  const heap = data.find((r) => r !== top && r.start > codeStart && (r.prot & VM_WRITE) !== 0);
  if (heap) heap.kind = "heap";
}
