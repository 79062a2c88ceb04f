/**
 * A KSM-style scanner (after Linux's mm/ksm.c). Each time the host wakes it (every `sleep` host
 * cycles: vmm/host.ts) it visits the next `pages_to_scan` pages of the domains' RAM, in order,
 * and for each:
 * - a page that is not plain RAM of its own (already shared, swapped out, a shadowed page table)
 *   is passed over;
 * - with useZeroPages, an all-zero page is merged at once into the one zero frame;
 * - the stable table (contents already shared) is searched first: a match merges the page;
 * - else the page's checksum is compared with the one of its previous visit: a page that
 *   changed is volatile and left for the next scan (so a new pair of duplicates merges no earlier
 *   than the second full scan that sees both unchanged);
 * - else the unstable table of this scan's candidates is searched: a match makes a new shared
 *   frame of the candidate's frame and merges the page into it; no match makes the page a
 *   candidate. The unstable table is emptied at the end of every full scan, as KSM rebuilds its
 *   unstable tree.
 * Every match is confirmed by a full compare of the two pages, so a checksum collision never
 * merges different pages.
 */

import type { Gfn, Mfn } from "../../hw/addr.js";
import type { HostMemory } from "../../hw/memory.js";
import {
  C_SHARING_MERGES,
  C_SHARING_PAGES_SCANNED,
  C_SHARING_PAGES_VOLATILE,
} from "../../metrics/counters.js";
import type { P2m } from "../p2m.js";
import { SharedFrames } from "./shared.js";
import { SharedTable } from "./table.js";

export interface KsmOptions {
  /** Merge all-zero pages into one zero frame without the two-scan rule (use_zero_pages). */
  useZeroPages: boolean;
}

/** A page's checksum, from its frame: the scanner's hash (replaceable to force collisions). */
export type PageHash = (mem: HostMemory, mfn: Mfn) => number;

/** The checksum KSM would compute: here the page's content digest (0 for a zero page). */
export const contentHash: PageHash = (mem, mfn) => mem.contentDigest(mfn);

interface Candidate {
  domain: number;
  gfn: Gfn;
}

export class KsmScanner {
  /** Full scans completed. */
  fullScans = 0;
  private cursorDomain = 0;
  private cursorGfn = 0;
  /** Per domain, each gfn's checksum at its last visit, and whether it was visited. */
  private readonly lastSum: Uint32Array[];
  private readonly seen: Uint8Array[];
  /** Shared frames by checksum (KSM's stable tree). */
  private readonly stable: SharedTable;
  /** This scan's candidates by checksum. */
  private unstable = new Map<number, Candidate[]>();
  private unstableCount = 0;
  private zeroFrame: Mfn = -1;

  constructor(
    private readonly mem: HostMemory,
    private readonly shared: SharedFrames,
    private readonly p2ms: readonly P2m[],
    readonly options: KsmOptions,
    /** Host-level counters (the scanner's work). */
    private readonly counters: Float64Array,
    private readonly hash: PageHash = contentHash,
  ) {
    this.lastSum = p2ms.map((p) => new Uint32Array(p.gfns));
    this.seen = p2ms.map((p) => new Uint8Array(p.gfns));
    this.stable = new SharedTable(mem, shared);
    const forget = shared.onFree;
    shared.onFree = (mfn) => {
      forget(mfn);
      if (mfn === this.zeroFrame) this.zeroFrame = -1;
    };
  }

  /**
   * References to all-zero shared frames beyond the first of each: the memory zero pages save
   * (the zero frame with use_zero_pages, else the stable frames whose content is zero).
   */
  get zeroPagesSharing(): number {
    return this.stable.zeroPagesSharing();
  }

  /** Candidates in the unstable table now (KSM's pages_unshared). */
  get pagesUnshared(): number {
    return this.unstableCount;
  }

  /** Visit the next `pages` pages. */
  scan(pages: number): void {
    if (this.p2ms.length === 0) return;
    for (let n = 0; n < pages; n++) {
      const d = this.cursorDomain;
      const p2m = this.p2ms[d];
      if (this.cursorGfn >= p2m.gfns) {
        this.cursorGfn = 0;
        this.cursorDomain++;
        if (this.cursorDomain >= this.p2ms.length) this.endFullScan();
        n--; // moving on is not a visit
        continue;
      }
      this.visit(d, p2m, this.cursorGfn++);
    }
  }

  private endFullScan(): void {
    this.cursorDomain = 0;
    this.fullScans++;
    this.unstable = new Map();
    this.unstableCount = 0;
  }

  private visit(d: number, p2m: P2m, gfn: Gfn): void {
    if (!SharedFrames.candidate(p2m, gfn)) return;
    this.counters[C_SHARING_PAGES_SCANNED]++;
    const mfn = p2m.mfn[gfn];
    const sum = this.hash(this.mem, mfn) >>> 0;
    if (this.options.useZeroPages && this.mem.contentDigest(mfn) === 0) {
      this.mergeZero(p2m, gfn);
      return;
    }
    // The stable table first: contents already shared.
    const stable = this.stable.find(sum, mfn);
    if (stable >= 0) {
      this.shared.join(p2m, gfn, stable);
      this.counters[C_SHARING_MERGES]++;
      return;
    }
    // Changed since the last visit (or never seen): too volatile to be a candidate yet.
    const seen = this.seen[d];
    const last = this.lastSum[d];
    if (seen[gfn] === 0 || last[gfn] !== sum) {
      if (seen[gfn] === 1) this.counters[C_SHARING_PAGES_VOLATILE]++;
      seen[gfn] = 1;
      last[gfn] = sum;
      return;
    }
    const list = this.unstable.get(sum);
    if (list !== undefined) {
      for (let i = 0; i < list.length; i++) {
        const c = list[i];
        const cp2m = this.p2ms[c.domain];
        if (c.domain === d && c.gfn === gfn) return; // already a candidate this scan
        // A candidate may have changed or gone since it was inserted: check it again.
        if (!SharedFrames.candidate(cp2m, c.gfn)) continue;
        const cmfn = cp2m.mfn[c.gfn];
        if (!this.mem.sameContent(cmfn, mfn)) continue;
        list.splice(i, 1);
        this.unstableCount--;
        const shared = this.shared.promote(cp2m, c.gfn);
        this.stable.add(sum, shared);
        this.shared.join(p2m, gfn, shared);
        this.counters[C_SHARING_MERGES]++;
        return;
      }
      list.push({ domain: d, gfn });
    } else {
      this.unstable.set(sum, [{ domain: d, gfn }]);
    }
    this.unstableCount++;
  }

  /** use_zero_pages: every zero page maps the one zero frame. */
  private mergeZero(p2m: P2m, gfn: Gfn): void {
    if (this.zeroFrame < 0) {
      this.zeroFrame = this.shared.promote(p2m, gfn);
      this.stable.add(0, this.zeroFrame);
    } else {
      this.shared.join(p2m, gfn, this.zeroFrame);
    }
    this.counters[C_SHARING_MERGES]++;
  }
}
