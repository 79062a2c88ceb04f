/**
 * An ESX-style scanner (Waldspurger, "Memory Resource Management in VMware ESX Server", OSDI
 * 2002, section 4.2). Each time the host wakes it (every `sleep` host cycles: vmm/host.ts) it
 * picks `pages_to_scan` pages of the domains at random and looks each one's hash up in one table that holds shared frames and hint frames:
 * - a shared frame with the same content (full compare): the page is merged into it;
 * - a hint (an unshared page seen before with that hash): if the hinted page still has that
 *   hash and the same content, both become one shared frame; a hint whose page changed is stale
 *   and is replaced by this page;
 * - nothing: the page becomes a hint.
 * There is no notion of a full scan: coverage is statistical, as in ESX.
 */

import type { Gfn } from "../../hw/addr.js";
import type { HostMemory } from "../../hw/memory.js";
import {
  C_SHARING_MERGES,
  C_SHARING_PAGES_SCANNED,
  C_SHARING_PAGES_VOLATILE,
} from "../../metrics/counters.js";
import type { P2m } from "../p2m.js";
import { contentHash, type PageHash } from "./ksm.js";
import { SharedFrames } from "./shared.js";
import { SharedTable } from "./table.js";

interface Hint {
  domain: number;
  gfn: Gfn;
}

export class EsxScanner {
  /** ESX has no full scans (reported as 0). */
  readonly fullScans = 0;
  private readonly table: SharedTable;
  /** Hint frames by hash: one unshared page per hash; and each hinted page's hash. */
  private readonly hints = new Map<number, Hint>();
  private readonly hintHash = new Map<number, number>();

  constructor(
    private readonly mem: HostMemory,
    private readonly shared: SharedFrames,
    private readonly p2ms: readonly P2m[],
    private readonly counters: Float64Array,
    /** A uniform integer below n (the scanner's own random stream). */
    private readonly randomBelow: (n: number) => number,
    private readonly hash: PageHash = contentHash,
  ) {
    this.table = new SharedTable(mem, shared);
  }

  /** Hint frames now (reported as pages_unshared). */
  get pagesUnshared(): number {
    return this.hints.size;
  }

  get zeroPagesSharing(): number {
    return this.table.zeroPagesSharing();
  }

  /** Examine `pages` random pages (a page of a domain chosen in proportion to its size). */
  scan(pages: number): void {
    let total = 0;
    for (const p of this.p2ms) total += p.gfns;
    if (total === 0) return;
    for (let n = 0; n < pages; n++) {
      let r = this.randomBelow(total);
      let d = 0;
      while (r >= this.p2ms[d].gfns) r -= this.p2ms[d++].gfns;
      this.visit(d, this.p2ms[d], r);
    }
  }

  private visit(d: number, p2m: P2m, gfn: Gfn): void {
    if (!SharedFrames.candidate(p2m, gfn)) return;
    this.counters[C_SHARING_PAGES_SCANNED]++;
    const mfn = p2m.mfn[gfn];
    const hash = this.hash(this.mem, mfn) >>> 0;
    const shared = this.table.find(hash, mfn);
    if (shared >= 0) {
      this.shared.join(p2m, gfn, shared);
      this.counters[C_SHARING_MERGES]++;
      return;
    }
    const hint = this.hints.get(hash);
    if (hint !== undefined && !(hint.domain === d && hint.gfn === gfn)) {
      const hp2m = this.p2ms[hint.domain];
      const fresh =
        SharedFrames.candidate(hp2m, hint.gfn) &&
        this.hash(this.mem, hp2m.mfn[hint.gfn]) >>> 0 === hash;
      if (fresh && this.mem.sameContent(hp2m.mfn[hint.gfn], mfn)) {
        this.dropHint(hint);
        const frame = this.shared.promote(hp2m, hint.gfn);
        this.table.add(hash, frame);
        this.shared.join(p2m, gfn, frame);
        this.counters[C_SHARING_MERGES]++;
        return;
      }
      // The hinted page changed since (or, with a colliding hash, differs): a stale hint.
      if (!fresh) this.counters[C_SHARING_PAGES_VOLATILE]++;
      if (fresh) return; // a collision with a live hint: keep the older one
    }
    this.setHint(hash, { domain: d, gfn });
  }

  /** A page's key in hintHash. */
  private key(h: Hint): number {
    return h.domain * 2 ** 32 + h.gfn;
  }

  /** Hint `h` under `hash`: its older hint, if any, goes (a page has one hash at a time). */
  private setHint(hash: number, h: Hint): void {
    const old = this.hintHash.get(this.key(h));
    const current = old === undefined ? undefined : this.hints.get(old);
    if (old !== undefined && current !== undefined && this.key(current) === this.key(h)) {
      this.hints.delete(old);
    }
    const displaced = this.hints.get(hash);
    if (displaced !== undefined) this.hintHash.delete(this.key(displaced));
    this.hints.set(hash, h);
    this.hintHash.set(this.key(h), hash);
  }

  private dropHint(h: Hint): void {
    const hash = this.hintHash.get(this.key(h));
    if (hash !== undefined) this.hints.delete(hash);
    this.hintHash.delete(this.key(h));
  }
}
