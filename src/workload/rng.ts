/**
 * Seedable pseudo-random numbers for workloads, on 32-bit integer math only (no BigInt).
 *
 * Generator: sfc32, Chris Doty-Humphrey's Small Fast Chaotic generator from PractRand (128 bits of
 * state, one of them a counter, so every seed has a period of at least 2^32; passes PractRand to
 * terabytes). One draw is a handful of adds, shifts and xors.
 *
 * Seeding: a number seed (any safe integer) is a 64-bit key k1:k0 (two's complement). Two splitmix32
 * streams, one per key word, fill the state (a from k0 alone, b..d from both xored), which maps
 * distinct keys to distinct states; then WARMUP outputs are discarded so that nearby keys diverge.
 *
 * Sub-streams: derive(stream) hashes the parent's key with the stream number into a child key. It
 * reads only the key, never the running state, so a parent can hand out streams at any time (one per
 * process) and adding a stream leaves the parent and the other streams unchanged.
 */

const TWO_32 = 4294967296;
const TWO_53 = 9007199254740992;
/** splitmix32's Weyl increment, 2^32 / golden ratio. */
const GOLDEN = 0x9e3779b9;
/** sfc32 outputs discarded after seeding; the sfc authors use 12 or more. */
const WARMUP = 12;
/** Distinct odd constants that keep the two key words' derive() hashes apart. */
const DERIVE_LO = 0x6a09e667;
const DERIVE_HI = 0xbb67ae85;

/** splitmix32's output function (Hash Prospector's lowbias32 constants): a bijection on 32 bits. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad);
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97);
  return (x ^ (x >>> 15)) | 0;
}

/** The `i`-th output (1-based) of splitmix32 started at `state`. */
function splitmix32(state: number, i: number): number {
  return mix32((state + Math.imul(GOLDEN, i)) | 0);
}

export class Rng {
  /** Low word of the key this generator was seeded from (int32); derive() reads it, draws do not. */
  private k0: number;
  /** High word of the key (int32). */
  private k1: number;
  /** sfc32 state, int32 each; d is the counter. Held in a typed array so stores never box. */
  private readonly s: Int32Array;

  /** `seed` is any safe integer; the same seed gives the same sequence on every platform. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`Rng seed must be a safe integer, got ${seed}`);
    }
    this.k0 = seed | 0;
    this.k1 = Math.floor(seed / TWO_32) | 0;
    this.s = new Int32Array(4);
    this.reseed();
  }

  /** Fills the sfc32 state from the key and discards the warm-up outputs. */
  private reseed(): void {
    const k0 = this.k0;
    const k1 = this.k1;
    const s = this.s;
    s[0] = splitmix32(k0, 1);
    s[1] = splitmix32(k0, 2) ^ splitmix32(k1, 1);
    s[2] = splitmix32(k0, 3) ^ splitmix32(k1, 2);
    s[3] = splitmix32(k0, 4) ^ splitmix32(k1, 3);
    for (let i = 0; i < WARMUP; i++) this.nextU32();
  }

  /**
   * The next sfc32 output as a signed int32, the core of every draw. Signed so that the result is
   * a small integer (Smi) on 64-bit Node: a call V8 does not inline then returns it unboxed.
   */
  nextInt32(): number {
    const s = this.s;
    const a = s[0];
    const b = s[1];
    const c = s[2];
    const d = s[3];
    const t = (((a + b) | 0) + d) | 0;
    s[3] = (d + 1) | 0;
    s[0] = b ^ (b >>> 9);
    s[1] = (c + (c << 3)) | 0;
    s[2] = (((c << 21) | (c >>> 11)) + t) | 0;
    return t;
  }

  /** An integer uniform in [0, 2^32): the same draw as nextInt32, unsigned. */
  nextU32(): number {
    return this.nextInt32() >>> 0;
  }

  /** A float uniform in [0, 1) on a grid of 2^-32 (one draw). */
  nextFloat(): number {
    return (this.nextInt32() >>> 0) / TWO_32;
  }

  /** A float uniform in [0, 1) on a grid of 2^-53 (two draws: 27 + 26 high bits). */
  nextDouble(): number {
    const hi = this.nextInt32() >>> 5;
    const lo = this.nextInt32() >>> 6;
    return (hi * 67108864 + lo) / TWO_53;
  }

  /**
   * An integer uniform in [0, n), exactly (no modulo bias), for integer n in [1, 2^53].
   * Draws the bits n-1 needs and rejects values >= n: under 2 draws expected, no division.
   */
  nextBelow(n: number): number {
    if (n >= 2 && n <= 0xffffffff && n >>> 0 === n) {
      const shift = Math.clz32(n - 1);
      let r = this.nextInt32() >>> shift;
      while (r >= n) r = this.nextInt32() >>> shift;
      return r;
    }
    return this.nextBelowWide(n);
  }

  /** nextBelow for n = 1, n >= 2^32 (two draws per try above it) and invalid n. */
  private nextBelowWide(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_53) {
      throw new RangeError(`nextBelow: n must be an integer in [1, 2^53], got ${n}`);
    }
    if (n === 1) return 0;
    if (n === TWO_32) return this.nextU32();
    // n - 1 >= 2^32, so its high word is in [1, 2^21) and clz32 gives the bits it needs.
    const shift = Math.clz32(Math.floor((n - 1) / TWO_32));
    for (;;) {
      const r = (this.nextU32() >>> shift) * TWO_32 + this.nextU32();
      if (r < n) return r;
    }
  }

  /** True with probability p (one draw, whatever p; p <= 0 is never, p >= 1 is always). */
  chance(p: number): boolean {
    return this.nextInt32() >>> 0 < p * TWO_32;
  }

  /**
   * An independent generator for sub-stream `stream` (an integer in [0, 2^32)): a function of this
   * generator's seed and `stream` only. It does not advance this generator, and distinct streams of
   * one parent always start from distinct states. Nests: r.derive(1).derive(2) is its own stream.
   */
  derive(stream: number): Rng {
    if (!Number.isInteger(stream) || stream < 0 || stream >= TWO_32) {
      throw new RangeError(`derive: stream must be an integer in [0, 2^32), got ${stream}`);
    }
    // Each child word is a bijection of `stream` for a fixed parent key.
    const k0 = mix32((this.k0 + mix32((stream ^ DERIVE_LO) | 0)) | 0);
    const k1 = mix32(this.k1 ^ mix32((stream ^ DERIVE_HI) | 0));
    // The child key spans 64 bits, more than a number seed carries: set it after construction.
    const child = new Rng(0);
    child.k0 = k0;
    child.k1 = k1;
    child.reseed();
    return child;
  }
}
