/**
 * Page sequences: the order in which a process touches the pages of a region, for each
 * AccessPattern. One class switches on a numeric kind inside next(), so the simulator's call site
 * sees one shape whatever the pattern (a class per pattern would make it polymorphic).
 * next() does not allocate.
 *
 * Hot pages (hotcold) and popular ranks (zipf) are spread over the region by Scatter, a fixed
 * permutation, so that they do not sit in a few contiguous page tables.
 */

import type { AccessPattern } from "../config/scenario.js";
import type { Rng } from "./rng.js";

/** A page's index inside the region a pattern covers, 0..pages-1; the caller adds the region's base. */
export type PageIndex = number;

/** Largest region: 2^30 pages (4 TiB of 4 KiB pages), which keeps Scatter in int32 arithmetic. */
export const MAX_PAGES = 2 ** 30;

// Pattern kinds, the switch in PageSequence.next().
const SEQUENTIAL = 0;
const UNIFORM = 1;
const HOTCOLD = 2;
const ZIPF = 3;
const STRIDE = 4;

// Odd multipliers of Scatter's mixing rounds (MurmurHash3's fmix32 constants).
const SCATTER_M1 = 0x85ebca6b | 0;
const SCATTER_M2 = 0xc2b2ae35 | 0;
/** Added after the first multiply so that index 0 does not stay at page 0. */
const SCATTER_ADD = 0x2545f491;

/**
 * A fixed bijection of 0..pages-1 that scatters neighbouring indices over the whole region.
 *
 * Let 2^k be the smallest power of two >= pages. f on [0, 2^k) is: multiply by an odd constant and
 * add a constant (mod 2^k), xorshift right by ceil(k/2), multiply by another odd constant, xorshift again;
 * each step is a bijection mod 2^k. apply() uses cycle-walking (Black and Rogaway, 2002): it applies
 * f until the result is < pages, which makes a bijection of 0..pages-1 whatever pages is. Since
 * pages > 2^(k-1), this takes under 2 applications of f on average over the indices.
 * Depends on pages only (not on the seed): the same region size always has the same hot pages.
 */
export class Scatter {
  /** Size of the permuted range. */
  private readonly pages: number;
  /** 2^k - 1. */
  private readonly mask: number;
  /** The xorshift distance, ceil(k/2) and at least 1. */
  private readonly shift: number;

  constructor(pages: number) {
    checkPages(pages);
    const k = pages === 1 ? 0 : 32 - Math.clz32(pages - 1);
    this.pages = pages;
    this.mask = k === 0 ? 0 : (2 ** k - 1) | 0;
    this.shift = Math.max(1, (k + 1) >> 1);
  }

  /** The page that `index` (0..pages-1) maps to. */
  apply(index: PageIndex): PageIndex {
    const mask = this.mask;
    const shift = this.shift;
    let x = index;
    do {
      x = (Math.imul(x, SCATTER_M1) + SCATTER_ADD) & mask;
      x ^= x >>> shift;
      x = Math.imul(x, SCATTER_M2) & mask;
      x ^= x >>> shift;
    } while (x >= this.pages);
    return x;
  }
}

function checkPages(pages: number): void {
  if (!Number.isInteger(pages) || pages < 1 || pages > MAX_PAGES) {
    throw new RangeError(`pages must be an integer in [1, 2^30], got ${pages}`);
  }
}

/** log1p(x) / x, continuous at 0. */
function log1pOverX(x: number): number {
  return Math.abs(x) > 1e-8 ? Math.log1p(x) / x : 1 - x * (0.5 - x * (1 / 3 - x * 0.25));
}

/** expm1(x) / x, continuous at 0. */
function expm1OverX(x: number): number {
  return Math.abs(x) > 1e-8 ? Math.expm1(x) / x : 1 + x * (0.5 + x * (1 / 6 + x / 24));
}

/**
 * Page indices in the order one AccessPattern visits them:
 * - sequential: 0, 1, ..., pages-1, 0, 1, ...
 * - uniform: independent uniform draws.
 * - hotcold: the hot set is scatter(0..hotPages-1). With probability hotProbability a draw is
 *   uniform over the hot set, else uniform over the whole region (so a cold draw can hit a hot page).
 * - zipf: rank r (0-based) has probability proportional to 1/(r+1)^s; rank r is page scatter(r).
 * - stride: 0, stride, 2*stride, ... below pages, then 1, 1+stride, ..., every page once per cycle.
 */
export class PageSequence {
  /** One of the kind constants above. */
  private readonly kind: number;
  /** Size of the region, 1..MAX_PAGES. */
  private readonly pages: number;
  private readonly rng: Rng;
  /** Spreads hot pages and Zipf ranks over the region. */
  private readonly scatter: Scatter;
  /** sequential, stride: the page returned next. */
  private cursor: number;
  /** stride: the first page of the current pass (0..stride-1). */
  private offset: number;
  /** stride: distance between pages, clamped to pages (a larger stride visits the same order). */
  private readonly stride: number;
  /** hotcold: number of hot pages, ceil(hotFraction * pages), at least 1; hot page i is scatter(i). */
  private readonly hotPages: number;
  /** hotcold: probability that an access goes to the hot set. */
  private readonly hotProbability: number;
  /** zipf: the exponent s. */
  private readonly zipfS: number;
  /** zipf: H(1.5) - h(1), the low end of the inversion interval. */
  private readonly zipfLow: number;
  /** zipf: H(pages + 0.5), the high end of the inversion interval. */
  private readonly zipfHigh: number;
  /** zipf: a draw with k - x <= this is accepted without evaluating H(k + 0.5) - h(k). */
  private readonly zipfSquash: number;

  /**
   * Throws RangeError for pages outside [1, 2^30] or not an integer, and for pattern parameters
   * outside their ranges: hotFraction in (0, 1], hotProbability in [0, 1], zipf s finite > 0,
   * stride an integer >= 1.
   */
  constructor(pattern: AccessPattern, pages: number, rng: Rng) {
    checkPages(pages);
    this.pages = pages;
    this.rng = rng;
    this.scatter = new Scatter(pages);
    this.cursor = 0;
    this.offset = 0;
    let kind = SEQUENTIAL;
    let stride = 1;
    let hotPages = pages;
    let hotProbability = 0;
    let s = 1;
    switch (pattern.type) {
      case "sequential":
        break;
      case "uniform":
        kind = UNIFORM;
        break;
      case "hotcold": {
        kind = HOTCOLD;
        const f = pattern.hotFraction;
        const p = pattern.hotProbability;
        if (!(f > 0 && f <= 1)) {
          throw new RangeError(`hotcold: hotFraction must be in (0, 1], got ${f}`);
        }
        if (!(p >= 0 && p <= 1)) {
          throw new RangeError(`hotcold: hotProbability must be in [0, 1], got ${p}`);
        }
        // The factor absorbs the product's rounding: 0.07 * 100 is 7.000000000000001, not 8 pages.
        hotPages = Math.min(pages, Math.max(1, Math.ceil(f * pages * (1 - 2 ** -50))));
        hotProbability = p;
        break;
      }
      case "zipf":
        kind = ZIPF;
        s = pattern.s;
        if (!(s > 0 && s < Number.POSITIVE_INFINITY)) {
          throw new RangeError(`zipf: s must be a finite number > 0, got ${s}`);
        }
        break;
      case "stride":
        kind = STRIDE;
        stride = pattern.stride;
        if (!Number.isSafeInteger(stride) || stride < 1) {
          throw new RangeError(`stride: stride must be an integer >= 1, got ${stride}`);
        }
        stride = Math.min(stride, pages);
        break;
      default:
        throw new RangeError(
          `unknown access pattern type ${JSON.stringify((pattern as { type: unknown }).type)}`,
        );
    }
    this.kind = kind;
    this.stride = stride;
    this.hotPages = hotPages;
    this.hotProbability = hotProbability;
    this.zipfS = s;
    this.zipfLow = this.zipfH(1.5) - 1;
    this.zipfHigh = this.zipfH(pages + 0.5);
    this.zipfSquash = 2 - this.zipfHInverse(this.zipfH(2.5) - this.zipfHat(2));
  }

  /** The next page index, in [0, pages). */
  next(): PageIndex {
    switch (this.kind) {
      case SEQUENTIAL: {
        const page = this.cursor;
        this.cursor = page + 1 === this.pages ? 0 : page + 1;
        return page;
      }
      case UNIFORM:
        return this.rng.nextBelow(this.pages);
      case HOTCOLD:
        // A cold draw is uniform over the whole region, so it lands on a hot page hotPages/pages
        // of the time: the hot share is hotProbability + (1 - hotProbability) * hotPages / pages.
        if (this.rng.chance(this.hotProbability)) {
          return this.scatter.apply(this.rng.nextBelow(this.hotPages));
        }
        return this.rng.nextBelow(this.pages);
      case ZIPF:
        return this.scatter.apply(this.nextZipfRank() - 1);
      default:
        return this.nextStride();
    }
  }

  /**
   * stride: pass o (o = 0..stride-1) visits o, o + stride, o + 2*stride, ... below pages; then the
   * next pass starts at o + 1. Each cycle of `pages` calls visits every page once.
   */
  private nextStride(): PageIndex {
    const page = this.cursor;
    let next = page + this.stride;
    if (next >= this.pages) {
      const offset = this.offset + 1 === this.stride ? 0 : this.offset + 1;
      this.offset = offset;
      next = offset;
    }
    this.cursor = next;
    return page;
  }

  /**
   * A Zipf rank k in 1..pages, P(k) proportional to k^-s, by rejection-inversion (Hörmann and
   * Derflinger, "Rejection-inversion to generate variates from monotone discrete distributions",
   * ACM TOMACS 6(3), 1996). The hat is h(x) = x^-s with integral H(x) = (x^(1-s) - 1) / (1-s)
   * (log x when s = 1). Rank k owns [H(k+0.5) - h(k), H(k+0.5)] of u-space, a piece of length h(k)
   * that fits in [H(k-0.5), H(k+0.5)] because h is convex. Draw u uniform in
   * [H(1.5) - h(1), H(pages+0.5)], invert x = H^-1(u), round to k, and accept when u lies in k's
   * piece; the squeeze k - x <= zipfSquash accepts most draws without evaluating H again.
   * Measured: 1.00 to 1.02 tries per rank for s from 0.1 to 5. No table, no per-page state.
   */
  private nextZipfRank(): number {
    const rng = this.rng;
    const pages = this.pages;
    const s = this.zipfS;
    const oneMinusS = 1 - s;
    // H^-1, H and h (the methods below) written out, and no call returning a double: a call that
    // TurboFan leaves out of line returns a double boxed, i.e. allocates on every draw.
    for (;;) {
      // rng.nextDouble(), inlined by hand.
      const hi = rng.nextInt32() >>> 5;
      const lo = rng.nextInt32() >>> 6;
      const unit = (hi * 67108864 + lo) / 9007199254740992;
      const u = this.zipfHigh + unit * (this.zipfLow - this.zipfHigh);
      let t = u * oneMinusS;
      if (t < -1) t = -1;
      const x = Math.exp(
        (Math.abs(t) > 1e-8 ? Math.log1p(t) / t : 1 - t * (0.5 - t * (1 / 3 - t * 0.25))) * u,
      );
      let k = Math.floor(x + 0.5);
      if (k < 1) k = 1;
      else if (k > pages) k = pages;
      if (k - x <= this.zipfSquash) return k;
      const logK = Math.log(k + 0.5);
      const v = oneMinusS * logK;
      const hK =
        (Math.abs(v) > 1e-8 ? Math.expm1(v) / v : 1 + v * (0.5 + v * (1 / 6 + v / 24))) * logK;
      if (u >= hK - Math.exp(-s * Math.log(k))) return k;
    }
  }

  /** h(x) = x^-s. */
  private zipfHat(x: number): number {
    return Math.exp(-this.zipfS * Math.log(x));
  }

  /** H(x) = (x^(1-s) - 1) / (1-s), written to stay accurate as s approaches 1. */
  private zipfH(x: number): number {
    const logX = Math.log(x);
    return expm1OverX((1 - this.zipfS) * logX) * logX;
  }

  /** H^-1(y) = (1 + (1-s) y)^(1/(1-s)), written to stay accurate as s approaches 1. */
  private zipfHInverse(y: number): number {
    let t = y * (1 - this.zipfS);
    // For s > 1, H is bounded by 1/(s-1); rounding near that bound must not reach log1p(< -1).
    if (t < -1) t = -1;
    return Math.exp(log1pOverX(t) * y);
  }
}
