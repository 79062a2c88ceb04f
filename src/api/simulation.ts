/**
 * A simulation: a scenario's domains, run on one physical CPU. The host's clock is the sum of the
 * domains' cycles; the domains take turns of DOMAIN_QUANTUM cycles (as the VMM's scheduler
 * would), each running its guest's scheduler inside its turn, and a turn ends early where a
 * host thread's timer (the sharing scanner, the balloon policy) comes due. The same scenario and seed give
 * the same run, to the counter.
 */

import { CPU_PROFILES, type CpuProfile, DEFAULT_CPU } from "../config/cpu.js";
import { DOUBLE_ZERO } from "../hw/double-zero.js";
import { CostModel, CostTotals } from "../metrics/cost.js";
import {
  C_SHARING_MERGES,
  C_SHARING_PAGES_SCANNED,
  C_SHARING_PAGES_VOLATILE,
} from "../metrics/counters.js";
import { defaultHostFrames, Host } from "../vmm/host.js";
import { Rng } from "../workload/rng.js";
import { scenarioToFile } from "../workload/scenario/to-file.js";
import { DomainRuntime } from "./domain.js";
import { runEnding } from "./ending.js";
import { type FrameMap, frameMap } from "./inspect.js";
import { modeDrops } from "./mode-drops.js";
import { checkSimulationInput } from "./options.js";
import { SeriesStore } from "./series.js";
import type { StepRecord } from "./step.js";
import { stepAccess } from "./step.js";
import type { HostCounters, PagingMode, Report, RunEnding, Sample, Scenario } from "./types.js";
import { VERSION } from "./version.js";

/**
 * The most samples a run's time series holds: past it, every other sample is dropped and the
 * interval doubles, so that memory stays bounded however long the run (a 10^8-access shadow run
 * sampled every 10^6 cycles made 260,000 samples, 300 MB).
 */
export const MAX_SERIES_SAMPLES = 4096;
/**
 * The most domain rows the series holds (4,096 samples of 64 domains): a run of more domains
 * keeps fewer samples, so that the series' memory stays bounded whatever the number of domains
 * (1,000 domains at 4,096 samples would be 82 million numbers).
 */
export const MAX_SERIES_ROWS = MAX_SERIES_SAMPLES * 64;

/** Cycles a domain runs before the next one gets the (single) physical CPU. */
export const DOMAIN_QUANTUM = 1_000_000;

export interface SimulationOptions {
  /** Run every domain in this mode instead of the scenario's. */
  mode?: PagingMode;
  /** Override the scenario's seed. */
  seed?: number;
  /**
   * Verify the invariants during the run (see api/check.ts and README's "Invariant checks"):
   * true reads what changed since the last check and a sample of the rest, and everything at
   * the end; "full" reads everything at every check.
   */
  check?: boolean | "full";
  /** Override the scenario's run length (user accesses). */
  accesses?: number;
}

export class Simulation {
  readonly scenario: Scenario;
  readonly domains: DomainRuntime[];
  readonly cost: CostModel;
  /** Every domain's cycles (DomainRuntime.time: its counters priced), summed again as they change. */
  private readonly domainTimes: CostTotals;
  /** The CPU profile that prices the run. */
  readonly profile: CpuProfile;
  readonly check: boolean | "full";
  /** The virtualized host, when any domain is not native. */
  readonly host: Host | null;
  /** The time series, as numbers (series.ts): `series` makes its samples. */
  private readonly store: SeriesStore;
  /** What the `mode` option dropped from the scenario (see mode-drops.ts), in words. */
  readonly droppedSettings: string[];
  private nextSample: number;
  /** Cycles between two samples: run.sampleEvery, doubled each time the series is thinned. */
  private sampleInterval: number;
  private turn = 0;
  /** User accesses made so far in all domains (since the warm-up ended). */
  accessesDone = 0;
  /** User accesses since the start, warm-up included (the clock of fixed balloon targets). */
  private accessesTotal = 0;

  constructor(scenario: Scenario, options: SimulationOptions = {}) {
    checkSimulationInput(scenario, options);
    const seed = options.seed ?? scenario.seed;
    const mode = options.mode;
    this.droppedSettings = modeDrops(scenario, mode);
    this.scenario = {
      ...scenario,
      seed,
      run: { ...scenario.run, accesses: options.accesses ?? scenario.run.accesses },
      domains: scenario.domains.map((d) => (mode ? { ...d, mode } : d)),
    };
    this.check = options.check ?? false;
    this.profile = CPU_PROFILES[scenario.hardware.cpu ?? DEFAULT_CPU];
    this.cost = new CostModel(this.profile, scenario.costs, scenario.hardware.dataCache ?? false);
    const rng = new Rng(seed);
    const virtual = this.scenario.domains.filter((d) => d.mode !== "native");
    const pagerRng = rng.derive(0x5a4d);
    const sharingRng = rng.derive(0x5e5);
    this.host =
      virtual.length === 0
        ? null
        : new Host(
            this.scenario.host.memory > 0
              ? this.scenario.host.memory / 4096
              : defaultHostFrames(this.scenario.domains),
            {
              swap: this.scenario.host.swap,
              sharing: this.scenario.host.sharing,
              randomBelow: (n) => pagerRng.nextBelow(n),
              sharingRandomBelow: (n) => sharingRng.nextBelow(n),
            },
          );
    this.store = new SeriesStore(
      this.scenario.domains.map((d) => d.name),
      this.host !== null,
    );
    this.phaseAccesses = this.scenario.domains.map(() => 0);
    this.domains = this.scenario.domains.map(
      (d, i) =>
        new DomainRuntime(d, this.scenario, this.cost, rng.derive(i + 1), this.check, this.host),
    );
    for (const d of this.domains) if (d.platform.vmm === null) this.natives.push(d);
    this.domainTimes = new CostTotals(
      this.cost,
      this.domains.map((d) => d.counters),
    );
    // The page-contents switch (host.contents), before any guest runs.
    const contents = this.scenario.host.contents ?? true;
    for (const d of this.domains) d.platform.cpu.mem.contents = contents;
    this.host?.startPolicy(this.scenario.host.balloonPolicy);
    this.host?.tick(() => 0, 0);
    for (const d of this.domains) d.boot();
    this.nextSample = 0;
    this.sampleInterval = this.scenario.run.sampleEvery;
    this.warmupLeft = this.scenario.run.warmup;
    this.sample();
  }

  /** The host's cycles since the start, warm-up included (the clock of the host's timers). */
  clock(): number {
    let t = this.hostClockBase + this.hostTime();
    for (const d of this.domains) t += d.clock();
    return t;
  }

  /** Cycles of the VMM's own threads (the sharing scanner), since the warm-up. */
  private hostTime(): number {
    return this.host ? this.cost.total(this.host.counters) : 0;
  }

  /** hostTime before the warm-up's end. */
  private hostClockBase = 0;

  /** The host clock: cycles spent by every domain on the one physical CPU. */
  time(): number {
    let t = this.hostTime();
    for (let i = 0; i < this.domains.length; i++) t += this.domainTimes.total(i);
    return t;
  }

  get done(): boolean {
    return this.warmupLeft === 0 && this.accessesDone >= this.scenario.run.accesses;
  }

  /**
   * Whether runTurn found the run over: every access made, or every domain idle for good (the
   * run then ended early: see ending()).
   */
  private over = false;

  /**
   * Run one domain turn. Returns false when the run is over (enough accesses, or every domain
   * idle for good).
   */
  runTurn(): boolean {
    const more = this.turnOnce();
    if (!more) this.over = true;
    return more;
  }

  private turnOnce(): boolean {
    this.warmupIfDue();
    const limit = this.limit();
    if (this.accessesDone >= limit) return false;
    let idle = 0;
    while (idle < this.domains.length) {
      const i = this.turn;
      const d = this.domains[i];
      let max = this.quotaLeft(i);
      if (max === 0) {
        this.nextDomain();
        idle++;
        continue;
      }
      this.tickHost();
      if (this.host) {
        // Stop the slice where a fixed balloon target changes, so it changes on time.
        max = Math.min(max, Math.max(1, this.host.nextPolicyEvent() - this.accessesTotal));
      }
      const changes = this.host?.p2mChanges() ?? 0;
      // A host thread's timer due inside the turn interrupts it; the domain then goes on
      // with the rest of its turn.
      const left = DOMAIN_QUANTUM - this.turnUsed;
      // No timer: the whole turn, without reading every domain's clock (1,000 domains).
      const timer = this.host ? this.host.nextTimer() : Number.POSITIVE_INFINITY;
      const cycles =
        timer === Number.POSITIVE_INFINITY
          ? left
          : Math.max(1, Math.min(left, timer - this.clock()));
      const before = d.time();
      const n = d.runSlice(cycles, max);
      this.turnUsed += d.time() - before;
      this.countAccesses(i, n);
      if (this.turnUsed >= DOMAIN_QUANTUM || n === 0 || this.quotaLeft(i) === 0) this.nextDomain();
      // A P2M changed during the slice (an emergency reclaim may even have swapped another
      // domain's pages): check every domain's translations.
      if (this.check && changes !== (this.host?.p2mChanges() ?? 0)) {
        for (const other of this.domains) other.checkSoon();
      }
      if (this.time() >= this.nextSample) this.sample();
      else this.notePeak();
      if (n > 0) return this.accessesDone < limit || this.warmupLeft > 0;
      // A slice a host timer cut short may end in system calls before any access: not idle.
      if (!d.idle) return true;
      idle++;
    }
    return false;
  }

  /** Give the CPU to the next domain, for a whole turn. */
  private nextDomain(): void {
    this.turn = (this.turn + 1) % this.domains.length;
    this.turnUsed = 0;
  }

  /** Cycles the domain whose turn it is has run in this turn. */
  private turnUsed = DOUBLE_ZERO;

  /** Between domain turns: the host's balloon policy and pager (see Host.tick). */
  tickHost(): void {
    if (!this.host) return;
    const changes = this.host.p2mChanges();
    this.host.tick(() => this.clock(), this.accessesTotal);
    // Domains that made their share of the run still get their safe points: their balloon
    // drivers keep answering the targets.
    for (let i = 0; i < this.domains.length; i++) {
      const d = this.domains[i];
      if (this.quotaLeft(i) === 0) d.safePoint(d.clock());
    }
    // The pager or the sharing scanner changed P2Ms: check every domain's translations now.
    if (this.check && changes !== this.host.p2mChanges()) {
      for (const d of this.domains) d.checkSoon();
    }
  }

  /** Count user accesses made by domain i in a slice or a step. */
  countAccesses(i: number, n: number): void {
    this.accessesDone += n;
    this.accessesTotal += n;
    this.phaseAccesses[i] += n;
  }

  /**
   * User accesses domain i may still make in this phase. The phase's accesses are split evenly
   * between the domains, so that each does the same guest work in every paging mode however
   * much each mode slows it (a domain that finishes early leaves the CPU to the others).
   */
  quotaLeft(i: number): number {
    const limit = this.limit();
    const n = this.domains.length;
    const quota = Math.floor(limit / n) + (i < limit % n ? 1 : 0);
    return Math.max(0, quota - this.phaseAccesses[i]);
  }

  /** User accesses of each domain in this phase (warm-up, then the measured run). */
  private readonly phaseAccesses: number[];

  /** User accesses of warm-up still to run (not measured). */
  private warmupLeft: number;

  /** The access count this phase runs to: the warm-up's, then the run's. */
  limit(): number {
    return this.warmupLeft > 0 ? this.warmupLeft : this.scenario.run.accesses;
  }

  /** At the end of the warm-up, start every counter, the clock and the series from zero. */
  warmupIfDue(): void {
    if (this.warmupLeft === 0 || this.accessesDone < this.warmupLeft) return;
    this.warmupLeft = 0;
    this.accessesDone = 0;
    this.phaseAccesses.fill(0);
    for (const d of this.domains) d.resetCounters();
    if (this.host) {
      this.hostClockBase += this.hostTime();
      this.host.counters.fill(0);
    }
    this.store.clear();
    this.nextSample = 0;
    this.sampleInterval = this.scenario.run.sampleEvery;
    this.sample();
  }

  /** Run to the end. `progress` is called after every turn with the fraction done. */
  run(progress?: (fraction: number) => void): Report {
    while (this.runTurn()) progress?.(this.accessesDone / this.scenario.run.accesses);
    return this.finish();
  }

  /**
   * The end of a run driven by runTurn until it returned false: the final checks (reading
   * everything, whatever the check's mode), the last sample, the report. (A report taken before
   * that is partial: see ending().)
   */
  finish(): Report {
    if (this.check) for (const d of this.domains) d.runChecks(true, true);
    this.sample();
    return this.report();
  }

  /**
   * How the run ended: complete, early (every domain idle before the accesses were made, each
   * stopped domain with its reason) or partial (the run is not over: its caller stopped).
   */
  ending(): RunEnding {
    const status = this.done ? "complete" : this.over ? "early" : "partial";
    const stopped = this.domains.filter((_, i) => this.quotaLeft(i) > 0);
    return runEnding(status, this.scenario.run, this.warmupLeft > 0, stopped);
  }

  /** One user access of the next process to run, with everything that happened on the way. */
  step(): StepRecord | null {
    this.warmupIfDue();
    if (this.done) return null;
    const record = stepAccess(this);
    // No domain could make an access: the run is over, early.
    if (record === null) this.over = true;
    return record;
  }

  /** The owner of every host frame, now (for a picture of host memory). */
  frameMap(): FrameMap {
    return frameMap(this);
  }

  /** The time series so far (made anew at each call: a run holds it as numbers). */
  get series(): Sample[] {
    return this.store.toSamples();
  }

  private sample(): void {
    this.notePeak();
    const time = this.time();
    const store = this.store;
    const s = store.newSample();
    store.setTime(s, time);
    for (let i = 0; i < this.domains.length; i++) store.setRow(s, i, this.domains[i].seriesRow());
    if (this.host) {
      let swapped = 0;
      for (const d of this.host.domains) swapped += d.p2m.swappedOut;
      store.setHost(s, {
        frames_free: this.host.frames.free,
        frames_used: this.host.frames.used,
        swapped_out: swapped,
        pages_shared: this.host.sharing?.pagesShared ?? 0,
        pages_sharing: this.host.sharing?.pagesSharing ?? 0,
        sharing_cycles: this.hostTime(),
      });
    }
    store.add(s);
    const most = Math.max(
      2,
      Math.min(MAX_SERIES_SAMPLES, Math.floor(MAX_SERIES_ROWS / this.domains.length)),
    );
    if (store.length > most) {
      // A long run keeps a bounded series: every other sample goes and the interval doubles
      // (the first sample and the newest stay).
      store.thin();
      this.sampleInterval *= 2;
    }
    this.nextSample = time + this.sampleInterval;
  }

  report(): Report {
    const domains = this.domains.map((d) => d.report());
    let framesTotal = 0;
    let framesUsed = 0;
    let violations = 0;
    let first = "";
    const hostCounters: HostCounters = {
      cycles: this.time(),
      user_accesses: this.accessesDone,
    };
    if (this.host) {
      framesTotal += this.host.frames.frames;
      framesUsed += this.host.frames.used;
      hostCounters.frames_free = this.host.frames.free;
      hostCounters.balloon_policy_runs = this.host.policyRuns;
      const sharing = this.host.sharing;
      if (sharing) {
        const c = this.host.counters;
        hostCounters.pages_shared = sharing.pagesShared;
        hostCounters.pages_sharing = sharing.pagesSharing;
        hostCounters.memory_saved_bytes = sharing.pagesSharing * 4096;
        hostCounters.pages_unshared = this.host.scanner?.pagesUnshared ?? 0;
        hostCounters.sharing_volatile = c[C_SHARING_PAGES_VOLATILE];
        hostCounters.full_scans = this.host.scanner?.fullScans ?? 0;
        hostCounters.sharing_pages_scanned = c[C_SHARING_PAGES_SCANNED];
        hostCounters.sharing_merges = c[C_SHARING_MERGES];
        hostCounters.sharing_cycles = this.hostTime();
        hostCounters.zero_pages_sharing = this.host.scanner?.zeroPagesSharing ?? 0;
      }
      hostCounters.host_swapped_out = 0;
      for (const d of this.host.domains) hostCounters.host_swapped_out += d.p2m.swappedOut;
    }
    for (const d of this.domains) {
      if (d.platform.vmm === null) {
        framesTotal += d.platform.mem.frames;
        framesUsed += d.hostFramesUsed();
      }
      violations += d.violations;
      if (first === "" && d.firstViolation !== "") first = d.firstViolation;
    }
    this.notePeak();
    return {
      memvisor: VERSION,
      scenario: this.scenario.name,
      seed: this.scenario.seed,
      cpu: { profile: this.profile.name, model: this.profile.model, hz: this.profile.hz.value },
      seconds: hostCounters.cycles / this.profile.hz.value,
      domains,
      host: {
        frames_total: framesTotal,
        frames_used: framesUsed,
        frames_used_peak: this.framesPeak,
        counters: hostCounters,
      },
      checks:
        first === ""
          ? { enabled: this.check !== false, violations }
          : { enabled: this.check !== false, violations, first },
      ending: this.ending(),
      dropped_settings: this.droppedSettings,
      cost_model: { ...this.cost.cycles },
      resolved_scenario: scenarioToFile(this.scenario),
      series: this.series,
    };
  }

  private framesPeak = 0;

  /** The native domains (each a machine of its own), whose frames notePeak adds to the host's. */
  private readonly natives: DomainRuntime[] = [];

  private notePeak(): void {
    let used = this.host ? this.host.frames.used : 0;
    for (const d of this.natives) used += d.hostFramesUsed();
    if (used > this.framesPeak) this.framesPeak = used;
  }
}
