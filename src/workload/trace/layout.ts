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

import type { Trace } from "../../config/trace.js";
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

/** Why a trace cannot be replayed as a user process, or "" when it can. */
export function traceProblem(trace: Trace): string {
  const w = trace.words;
  for (let i = 0; i < trace.count; i++) {
    // Bits 32..47 of the address at or above bit 47: a kernel address.
    if ((w[2 * i + 1] & 0xffff) >= 0x8000) {
      return `record ${i} is at 0x${trace.address(i).toString(16)}, not a user address (user addresses are below 0x${USER_LIMIT.toString(16)})`;
    }
  }
  return "";
}

const layouts = new WeakMap<Trace, TraceLayout>();

/** The trace's regions, computed once per trace. The trace must pass traceProblem. */
export function traceLayout(trace: Trace): TraceLayout {
  let layout = layouts.get(trace);
  if (layout === undefined) {
    layout = computeLayout(trace);
    layouts.set(trace, layout);
  }
  return layout;
}

const BIT_WRITE = 1;
const BIT_FETCH = 2;

function computeLayout(trace: Trace): TraceLayout {
  // Page number -> what was done in it. Consecutive records mostly stay in one page: skip
  // the map for those.
  const seen = new Map<number, number>();
  const w = trace.words;
  let lastPage = -1;
  let lastBits = 0;
  for (let i = 0; i < trace.count; i++) {
    const meta = w[2 * i + 1];
    const page = (meta & 0xffff) * 1048576 + (w[2 * i] >>> 12);
    const kind = (meta >>> 16) & 3;
    const bits = kind === TRACE_STORE ? BIT_WRITE : kind === TRACE_FETCH ? BIT_FETCH : 0;
    if (page === lastPage && (lastBits | bits) === lastBits) continue;
    lastBits = (seen.get(page) ?? 0) | bits;
    seen.set(page, lastBits);
    lastPage = page;
  }
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
