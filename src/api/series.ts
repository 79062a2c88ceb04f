/**
 * A run's time series, held as numbers until a report asks for it: one Float64Array a sample
 * (its time, the host's figures, then each domain's row), so that a long run's series does not
 * fill the JS heap with row objects. 64 shadow domains kept 184,000 rows of objects (376 bytes
 * each: an object of 20 fields and 12 boxed numbers), and the heap the collector left them
 * grew to twice that with garbage; here a row is 160 bytes outside the heap. Samples become
 * objects (toSamples) only in a report.
 */

import type { Sample, SampleRow } from "./types.js";
import { SERIES_COUNTERS } from "./types.js";

/** Numbers of one domain's row: its cycles, then the series counters in their order. */
export const ROW_WIDTH = 1 + SERIES_COUNTERS.length;
/** Numbers of the host's part of a sample (Sample["host"]'s fields, in their order). */
const HOST_WIDTH = 6;

type HostRow = NonNullable<Sample["host"]>;

export class SeriesStore {
  /** The samples, oldest first: [time, host's HOST_WIDTH numbers if any, rows...]. */
  private samples: Float64Array[] = [];
  /** Where the first domain's row starts in a sample. */
  private readonly rowsAt: number;

  /**
   * `names` are the domains' names (the keys of each sample's `domains`), `withHost` whether
   * samples have the host's part.
   */
  constructor(
    private readonly names: readonly string[],
    private readonly withHost: boolean,
  ) {
    this.rowsAt = 1 + (withHost ? HOST_WIDTH : 0);
  }

  get length(): number {
    return this.samples.length;
  }

  /** A sample to fill (with setTime, setHost and setRow) and then add. */
  newSample(): Float64Array {
    return new Float64Array(this.rowsAt + this.names.length * ROW_WIDTH);
  }

  setTime(s: Float64Array, time: number): void {
    s[0] = time;
  }

  setHost(s: Float64Array, h: HostRow): void {
    s[1] = h.frames_free;
    s[2] = h.frames_used;
    s[3] = h.swapped_out;
    s[4] = h.pages_shared;
    s[5] = h.pages_sharing;
    s[6] = h.sharing_cycles;
  }

  /** Domain i's row of sample s. */
  setRow(s: Float64Array, i: number, r: SampleRow): void {
    let k = this.rowsAt + i * ROW_WIDTH;
    s[k++] = r.cycles;
    for (const name of SERIES_COUNTERS) s[k++] = r[name];
  }

  /** Add a sample; one at the time of the newest replaces it. */
  add(s: Float64Array): void {
    const n = this.samples.length;
    if (n > 0 && this.samples[n - 1][0] === s[0]) this.samples[n - 1] = s;
    else this.samples.push(s);
  }

  /** Drop every other sample, keeping the first and the newest. */
  thin(): void {
    const last = this.samples.length - 1;
    this.samples = this.samples.filter((_, i) => i % 2 === 0 || i === last);
  }

  clear(): void {
    this.samples = [];
  }

  /** The series as a report gives it. */
  toSamples(): Sample[] {
    const out: Sample[] = [];
    for (const s of this.samples) {
      const domains: Sample["domains"] = {};
      for (let i = 0; i < this.names.length; i++) {
        domains[this.names[i]] = new Row(s, this.rowsAt + i * ROW_WIDTH);
      }
      const sample: Sample = { time: s[0], domains };
      if (this.withHost) {
        sample.host = {
          frames_free: num(s[1]),
          frames_used: num(s[2]),
          swapped_out: num(s[3]),
          pages_shared: num(s[4]),
          pages_sharing: num(s[5]),
          sharing_cycles: num(s[6]),
        };
      }
      out.push(sample);
    }
    return out;
  }
}

/**
 * v as an int32 when it is one: a number read from a Float64Array is a boxed double (16 bytes
 * more in each field of a row); an int32 lives in the field itself.
 */
function num(v: number): number {
  return (v | 0) === v ? v | 0 : v;
}

/**
 * A row of a report's series, from s[k..]: its keys in SERIES_COUNTERS' order after cycles, as
 * DomainRuntime.seriesRow makes them. A class, not a literal: a literal with the same keys
 * shares seriesRow's hidden class, whose fields V8 has made boxed doubles (its values come from
 * Float64Arrays); here a field holds an int32 in place, and a row takes 184 bytes, not 376.
 */
class Row implements SampleRow {
  cycles: number;
  user_accesses: number;
  tlb_misses: number;
  walk_refs: number;
  guest_page_faults: number;
  context_switches: number;
  forks: number;
  guest_frames_used: number;
  pt_pages: number;
  host_frames: number;
  balloon_target_pages: number;
  balloon_pages: number;
  host_swapped_out: number;
  host_swap_ins: number;
  host_swap_outs: number;
  reservation_pages: number;
  balloon_inflated_pages: number;
  balloon_deflated_pages: number;
  balloon_backoffs: number;
  guest_oom: number;

  constructor(s: Float64Array, k: number) {
    this.cycles = num(s[k]);
    this.user_accesses = num(s[k + 1]);
    this.tlb_misses = num(s[k + 2]);
    this.walk_refs = num(s[k + 3]);
    this.guest_page_faults = num(s[k + 4]);
    this.context_switches = num(s[k + 5]);
    this.forks = num(s[k + 6]);
    this.guest_frames_used = num(s[k + 7]);
    this.pt_pages = num(s[k + 8]);
    this.host_frames = num(s[k + 9]);
    this.balloon_target_pages = num(s[k + 10]);
    this.balloon_pages = num(s[k + 11]);
    this.host_swapped_out = num(s[k + 12]);
    this.host_swap_ins = num(s[k + 13]);
    this.host_swap_outs = num(s[k + 14]);
    this.reservation_pages = num(s[k + 15]);
    this.balloon_inflated_pages = num(s[k + 16]);
    this.balloon_deflated_pages = num(s[k + 17]);
    this.balloon_backoffs = num(s[k + 18]);
    this.guest_oom = num(s[k + 19]);
  }
}
