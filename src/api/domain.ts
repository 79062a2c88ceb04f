/**
 * One domain at run time: its platform (the hardware, and the VMM's mode behind it), its guest
 * kernel, its processes and their drivers, its counters and its clock. The clock is the
 * domain's simulated cycles: its counters priced by the cost model.
 */

import { BalloonDriver } from "../guest/balloon.js";
import type { GuestClock } from "../guest/clock.js";
import { Kernel } from "../guest/kernel.js";
import { Scheduler } from "../guest/scheduler.js";
import { AccessBuffer } from "../hw/access-buffer.js";
import type { CostModel } from "../metrics/cost.js";
import {
  C_BALLOON_BACKOFFS,
  C_BALLOON_DEFLATED_PAGES,
  C_BALLOON_INFLATED_PAGES,
  C_CONTEXT_SWITCHES,
  C_CORE_CYCLES,
  C_DOMAIN_CRASHES,
  C_EXITS,
  C_FORKS,
  C_GUEST_OOM,
  C_GUEST_PAGE_FAULTS,
  C_HOST_SWAP_INS,
  C_HOST_SWAP_OUTS,
  C_TLB_MISSES,
  C_WALK_REFS,
  countersToRecord,
  type DomainCounters,
  newCounters,
} from "../metrics/counters.js";
import { targetOf } from "../vmm/balloon/policy.js";
import { DomainCrash } from "../vmm/crash.js";
import type { Host } from "../vmm/host.js";
import { isVirtualMode } from "../vmm/modes.js";
import { ProcessDriver, STEP_ACCESS, STEP_BLOCKED, STEP_EXITED } from "../workload/driver.js";
import type { Rng } from "../workload/rng.js";
import { checkDomain } from "./check.js";
import { nativePlatform, newGuestClock, type Platform, virtualPlatform } from "./platform.js";
import { ProcessTotals } from "./process-totals.js";
import type { DomainReport, DomainSpec, SampleRow, Scenario } from "./types.js";

/** Steps between two reads of the clock (the cost model's dot product). */
const CLOCK_EVERY = 16;
/**
 * In check mode, page faults between two checks of the translations, and the fewest steps
 * between two such checks (a check scans every shadow: a run of first touches would otherwise
 * spend nearly all its time checking).
 */
const FAULT_CHECK_EVERY = 8;
const FAULT_CHECK_MIN_STEPS = 256;
/**
 * Under sampled checks (`--check`), the fewest steps between two checks of the translations:
 * one asked sooner (a system call, a P2M change) waits until then. Nothing is lost meanwhile:
 * the next check reads everything written since the last (see VmmPaging.check).
 */
const SAMPLED_CHECK_MIN_STEPS = 256;
/**
 * Most accesses a run hands the vCPU at once (accessRun): a read of the host's clock ends a
 * batch, and runSlice reads it every CLOCK_EVERY steps.
 */
const BATCH = CLOCK_EVERY;
/** In check mode, accesses between two full checks of the guest's tables. */
const FULL_CHECK_EVERY = 20000;

/** Error for what a scenario asks but this build cannot do. */
export class SimulationError extends Error {}

export class DomainRuntime {
  readonly counters = newCounters();
  readonly platform: Platform;
  readonly kernel: Kernel;
  readonly sched: Scheduler;
  /** Drivers of processes not yet retired, by process. */
  readonly drivers = new Map<object, ProcessDriver>();
  /** The processes of each spec, added up as they retire. */
  private readonly totals = new ProcessTotals();
  private current: ProcessDriver | null = null;
  /** Steps the guest's processes made (accesses and system calls). */
  guestSteps = 0;
  /**
   * The guest's clock (see GuestClock), by which its scheduler gives slices: its processes'
   * work and their data accesses' stalls, the same in every mode; and one cycle a step, so that
   * a process making only system calls still moves it.
   */
  readonly guestClock: GuestClock;
  /** User accesses made (all processes). */
  userAccesses = 0;
  /** Checks: violations found and the first one's description. */
  violations = 0;
  firstViolation = "";
  private sinceFullCheck = 0;
  private faultsSinceCheck = 0;
  private lastCheckStep = 0;
  /** A quick check was asked for and deferred (SAMPLED_CHECK_MIN_STEPS). */
  private checkPending = false;

  constructor(
    readonly spec: DomainSpec,
    readonly scenario: Scenario,
    readonly cost: CostModel,
    private readonly rng: Rng,
    /** Check the invariants: sampled (true) or every structure at every check ("full"). */
    readonly check: boolean | "full",
    readonly host: Host | null,
  ) {
    for (const p of spec.processes) {
      if (p.trace !== null && p.trace.data === null) {
        throw new SimulationError(
          `domain ${spec.name}: process ${p.name}: its trace ${p.trace.file} was not read ` +
            "(load the scenario with loadScenarioFile or loadBuiltinScenario from memvisor/node, " +
            "or give parseScenario a loadTrace function)",
        );
      }
    }
    if (host === null || !isVirtualMode(spec.mode)) {
      this.platform = nativePlatform(spec, scenario.hardware, this.counters);
    } else {
      try {
        this.platform = virtualPlatform(host, spec, scenario.hardware, this.counters);
      } catch (e) {
        if (e instanceof RangeError) throw new SimulationError(e.message);
        throw e;
      }
    }
    this.kernel = new Kernel(
      this.platform.cpu,
      this.platform.ops,
      this.platform.guestFrames,
      this.counters,
      {
        gigaPages: scenario.hardware.gigaPages,
        pcid: scenario.hardware.pcid,
        osImage: spec.osImage,
      },
    );
    this.sched = new Scheduler(this.kernel, spec.quantum, cost.hz);
    this.guestClock = newGuestClock(scenario.hardware, cost);
    const vmm = this.platform.vmm;
    if (vmm !== null) vmm.clock = () => this.clock();
    if (vmm !== null && spec.balloon.driver) {
      this.kernel.balloon = new BalloonDriver(this.kernel, vmm.xenstore, {
        retryDelay: spec.balloon.retryDelay,
        maxRetryDelay: spec.balloon.maxRetryDelay,
      });
    }
  }

  /** Why the VMM crashed this domain ("" while it runs). */
  crashed = "";

  /** Boot the guest and start every process of the spec. */
  boot(): void {
    try {
      this.bootGuest();
    } catch (e) {
      this.onCrash(e, true);
    }
  }

  /** Whether the crash came before the guest finished booting and starting its processes. */
  crashedAtBoot = false;

  private onCrash(e: unknown, atBoot = false): void {
    if (!(e instanceof DomainCrash)) throw e;
    this.crashed = e.reason;
    this.crashedAtBoot = atBoot;
    this.counters[C_DOMAIN_CRASHES]++;
    // The toolstack destroys a crashed domain: its memory goes back to the host.
    const vmm = this.platform.vmm;
    if (vmm !== null && this.host !== null) this.host.destroyDomain(vmm);
  }

  private bootGuest(): void {
    this.kernel.boot();
    // The balloon driver starts during boot and goes to its target before any process runs
    // (a domain built with memory below maxmem starts ballooned).
    this.kernel.balloon?.start();
    this.kernel.balloon?.poll(this.clock());
    let stream = 1;
    for (const spec of this.spec.processes) {
      for (let i = 0; i < spec.instances; i++) {
        const make = spec.kind === "build";
        const name = spec.instances > 1 ? `${spec.name}.${i}` : spec.name;
        const proc = this.kernel.spawn(name, ProcessDriver.image(spec, make));
        if (proc === null)
          throw new SimulationError(`domain ${this.spec.name}: out of memory starting ${name}`);
        const driver = new ProcessDriver(
          this.kernel,
          this.sched,
          spec,
          proc,
          this.rng.derive(stream++),
          spec.kind,
        );
        this.adopt(driver);
        this.sched.add(proc);
      }
    }
  }

  private adopt(driver: ProcessDriver): void {
    this.drivers.set(driver.proc, driver);
    this.totals.started(driver.spec.name);
  }

  /** Host frames this domain occupies (natively: its machine's frames in use). */
  hostFramesUsed(): number {
    const vmm = this.platform.vmm;
    if (vmm === null) return this.platform.guestFrames - this.kernel.frames.freeCount;
    // gfns on shared frames are not counted: those frames are the host's, shared by several.
    const p2m = vmm.p2m;
    return p2m.populated - p2m.sharedGfns + p2m.tablePages.length + vmm.paging.hostFrames();
  }

  /** The driver of the process that ran the last step. */
  get currentDriver(): ProcessDriver | null {
    return this.current;
  }

  /**
   * Start measuring afresh (the end of a warm-up): counters, the walk histogram and the user
   * access count go to zero; the guest, its processes and the VMM's state carry on.
   */
  resetCounters(): void {
    this.clockBase += this.time();
    this.counters.fill(0);
    this.platform.cpu.walkHist.fill(0);
    this.userAccesses = 0;
  }

  /** The domain's simulated cycles so far (since the warm-up ended, if there was one). */
  time(): number {
    return this.cost.total(this.counters);
  }

  /** Cycles before the last counter reset (the warm-up's). */
  private clockBase = 0;

  /**
   * The domain's simulated cycles since the start, warm-up included: the clock of its timers
   * (the balloon driver's retries, the pager's grace), which a reset must not move back.
   */
  clock(): number {
    return this.clockBase + this.time();
  }

  /**
   * Run for `cycles` simulated cycles or `maxAccesses` user accesses, whichever comes first.
   * Returns the user accesses made; 0 with `idle` set means the domain is idle for good.
   */
  runSlice(cycles: number, maxAccesses: number): number {
    this.idle = false;
    let now = this.time();
    const end = now + cycles;
    let accesses = 0;
    let sinceClock = 0;
    // Steps until the next clock read: CLOCK_EVERY, or fewer near the end of the slice, judged
    // by the cycles the last steps took (a host timer may end a slice after a few steps).
    let readEvery = CLOCK_EVERY;
    while (accesses < maxAccesses) {
      if (++sinceClock >= readEvery) {
        const then = now;
        now = this.time();
        if (now >= end) break;
        const perStep = (now - then) / sinceClock;
        readEvery =
          perStep * CLOCK_EVERY <= end - now ? CLOCK_EVERY : 1 + Math.floor((end - now) / perStep);
        sinceClock = 0;
        this.safePoint(this.clockBase + now);
      }
      // The steps before the next clock read, at most, may go as one batch of accesses.
      const r = this.stepRun(Math.min(readEvery - sinceClock, maxAccesses - accesses));
      accesses += this.runAccesses;
      if (r < 0) {
        this.idle = true;
        break;
      }
      sinceClock += this.runSteps - 1;
    }
    this.userAccesses += accesses;
    return accesses;
  }

  /**
   * Whether the last slice stopped because nothing could run (crashed, no runnable process),
   * not because its cycles ran out: a slice cut short by a host timer may end before any access.
   */
  idle = false;

  /**
   * Between two steps, where nothing is in flight: the balloon driver's turn, and the host
   * pager's if host memory runs low.
   */
  safePoint(now: number): void {
    if (this.crashed !== "") return;
    try {
      const before = this.host?.p2mChanges() ?? 0;
      this.kernel.balloon?.poll(now);
      this.host?.swap.keepFree();
      // The balloon or the pager changed a P2M: check the translations now.
      if (this.check && before !== (this.host?.p2mChanges() ?? 0)) this.checkSoon();
    } catch (e) {
      this.onCrash(e);
    }
  }

  /** One step of whichever process the scheduler picks. Returns the step kind, or -1 if idle. */
  stepOnce(): number {
    return this.stepRun(1);
  }

  /**
   * Most steps a batch makes, and whether runs batch accesses at all (1: one step at a time, the
   * loop a batch must match; test/run-batch.test.ts runs both).
   */
  batchMax = BATCH;
  /** User accesses made in batches (accessRun), warm-up included: how much of a run they take. */
  batchedAccesses = 0;
  /** Steps the last stepRun made, and user accesses among them. */
  private runSteps = 0;
  private runAccesses = 0;

  /**
   * Up to `room` steps (1 <= room): one step of whichever process the scheduler picks, or a run
   * of its accesses (accessRun) where nothing would come between them. Returns the last step's
   * kind, or -1 if idle (or crashed); runSteps and runAccesses say what it made.
   */
  private stepRun(room: number): number {
    this.runSteps = 1;
    this.runAccesses = 0;
    if (this.crashed !== "") return -1;
    try {
      return this.stepGuest(room);
    } catch (e) {
      this.onCrash(e);
      return -1;
    }
  }

  private stepGuest(room: number): number {
    const clock = this.guestClock;
    const proc = this.sched.pick(clock.now);
    this.guestSteps++;
    if (proc === null) return -1;
    let driver = this.current;
    if (driver === null || driver.proc !== proc) {
      driver = this.drivers.get(proc) ?? null;
      if (driver === null)
        throw new Error(`domain ${this.spec.name}: pid ${proc.pid} has no driver`);
      this.current = driver;
    }
    if (room > 1 && this.batching) {
      const planned = driver.planAccesses(Math.min(room, this.batchMax), this.workAfter);
      if (planned > 1) return this.accessRun(driver, planned);
    }
    const faultsBefore = this.counters[C_GUEST_PAGE_FAULTS];
    const exitsBefore = this.counters[C_EXITS];
    const workBefore = this.counters[C_CORE_CYCLES];
    const accessesBefore = proc.accesses;
    const r = driver.step();
    clock.advance(1 + this.counters[C_CORE_CYCLES] - workBefore);
    // The access's stall, unless the process died making it.
    if (proc.accesses !== accessesBefore && proc.alive) clock.dataAccess(proc.pid, driver.lastGva);
    if (r === STEP_ACCESS) this.runAccesses = 1;
    if (r !== STEP_ACCESS) {
      this.afterSyscall(driver, r);
    } else if (this.counters[C_EXITS] !== exitsBefore) {
      // The access's fault ran the OOM killer, which may have killed another process.
      this.reapKilled();
    } else if (this.check) {
      if (++this.sinceFullCheck >= FULL_CHECK_EVERY) {
        this.sinceFullCheck = 0;
        this.runChecks(true);
      } else if (
        (this.checkPending ||
          (this.counters[C_GUEST_PAGE_FAULTS] !== faultsBefore &&
            ++this.faultsSinceCheck >= FAULT_CHECK_EVERY)) &&
        this.guestSteps - this.lastCheckStep >= FAULT_CHECK_MIN_STEPS
      ) {
        // The kernel changed page tables (or a deferred check is due): check the translations.
        this.faultsSinceCheck = 0;
        this.runChecks(false);
      }
    }
    return r;
  }

  /**
   * Whether runs may batch: not while invariant checks run (they are counted in steps and
   * faults between them).
   */
  private get batching(): boolean {
    return this.batchMax > 1 && !this.check;
  }

  /** The work counter after each access of a planned run (ProcessDriver.planAccesses). */
  private readonly workAfter = new Float64Array(BATCH);
  /** The guest's clock after each access of the run: its work, then its stall. */
  private readonly clockWorked = new Float64Array(BATCH);
  private readonly clockAfter = new Float64Array(BATCH);
  /** Where the guest clock's log stood before each access's stall. */
  private readonly stallMark = new Int32Array(BATCH);
  private readonly batchBuf = new AccessBuffer(BATCH);

  /**
   * The picked process's next accesses, `planned` of them at most, as that many steps of
   * stepGuest would make them: the loop's between-step work reduced to what it does when the
   * step is a user access and no check runs. Before any runs, each access is chosen and the
   * guest's clock moved by it as its step moves it (1 + its work, known beforehand; then its
   * stall with data caches, its line store changes logged), in order; the run stops before the
   * first access a switch would precede (the clock at or past the slice's end). The kernel
   * ending a process (the OOM killer) reaps at once, and the run goes on, as pick() would keep
   * the process; the process dying ends it, its stall and those after it taken back. The only
   * reads of the host's clock and safe points are between runs (runSlice sizes them).
   */
  private accessRun(driver: ProcessDriver, planned: number): number {
    const clock = this.guestClock;
    const c = this.counters;
    const workAfter = this.workAfter;
    const clockWorked = this.clockWorked;
    const clockAfter = this.clockAfter;
    const stallMark = this.stallMark;
    const buf = this.batchBuf;
    const proc = driver.proc;
    const pid = proc.pid;
    const sliceEnd = this.sched.sliceEnd;
    const start = clock.now;
    clock.clearLog();
    let work = c[C_CORE_CYCLES];
    let count = 0;
    while (count < planned && (count === 0 || clock.now < sliceEnd)) {
      driver.fillAccess(buf, count);
      // stepGuest's advance, 1 + the step's work, in its order of operations; then the stall.
      clock.now += 1 + workAfter[count] - work;
      work = workAfter[count];
      clockWorked[count] = clock.now;
      stallMark[count] = clock.logged;
      clock.dataAccessLogged(pid, buf.lo[count], buf.hi[count]);
      clockAfter[count] = clock.now;
      count++;
    }
    driver.filled(buf, count);
    let done = 0;
    while (done < count) {
      const exits = c[C_EXITS];
      let reached: number;
      try {
        reached = driver.stepBatch(buf, done, count);
      } catch (e) {
        // Access batchAt threw: the steps before it made, its own counted, as stepOnce counts.
        const at = driver.batchAt;
        clock.now = at > 0 ? clockAfter[at - 1] : start;
        clock.undo(stallMark[at]);
        this.guestSteps += at - done;
        this.runSteps = at + 1;
        this.runAccesses = at;
        throw e;
      }
      this.guestSteps += reached - done - 1;
      done = reached;
      if (c[C_CORE_CYCLES] !== workAfter[done - 1]) {
        throw new Error(`domain ${this.spec.name}: a batch's work differs from its plan`);
      }
      if (!proc.alive) {
        // It died making access done - 1: its step moved the clock by its work, no stall.
        clock.now = clockWorked[done - 1];
        clock.undo(stallMark[done - 1]);
      } else clock.now = clockAfter[done - 1];
      if (c[C_EXITS] !== exits) this.reapKilled();
      if (done === count || !proc.alive) break;
      // The next step's pick: the same process (its slice lasts, it is still runnable).
      if (this.sched.pick(clock.now) !== proc) {
        throw new Error(`domain ${this.spec.name}: a batch's process lost the CPU mid-batch`);
      }
      this.guestSteps++;
    }
    this.runSteps = done;
    this.runAccesses = done;
    this.batchedAccesses += done;
    return STEP_ACCESS;
  }

  private afterSyscall(driver: ProcessDriver, r: number): void {
    for (const child of driver.spawned) this.adopt(child);
    driver.spawned.length = 0;
    if (r === STEP_EXITED) {
      driver.onExit();
      this.retire(driver);
    }
    this.reapKilled();
    if (r !== STEP_BLOCKED && this.check) this.checkSoon();
  }

  /**
   * Retire the processes the OOM killer killed while another ran (they leave the run queue); the
   * running one, if killed, is retired by its own next step.
   */
  private reapKilled(): void {
    if (this.kernel.processes.length >= this.drivers.size) return; // nobody died
    for (const [proc, d] of this.drivers) {
      if (!d.proc.alive && proc !== this.current?.proc) {
        d.onExit();
        this.retire(d);
      }
    }
  }

  private retire(driver: ProcessDriver): void {
    if (!this.drivers.delete(driver.proc)) return;
    if (this.current === driver) this.current = null;
    this.totals.retire(driver);
  }

  /**
   * Check the translations soon (something changed them: a system call, a P2M change): now
   * under `--check=full`; under sampled checks now if SAMPLED_CHECK_MIN_STEPS steps have passed
   * since the last check, else at the first step after them.
   */
  checkSoon(): void {
    if (this.check !== "full" && this.guestSteps - this.lastCheckStep < SAMPLED_CHECK_MIN_STEPS) {
      this.checkPending = true;
    } else this.runChecks(false);
  }

  /**
   * Check the invariants (see checkDomain); a violation is counted, the first one kept. The
   * scans are sampled unless the run checks in full or `exhaustive` (the end of a run) asks.
   */
  runChecks(full: boolean, exhaustive = false): void {
    if (this.crashed !== "") return;
    const all = exhaustive || this.check === "full";
    this.checkPending = false;
    this.lastCheckStep = this.guestSteps;
    const err = checkDomain(this.platform, this.kernel, this.host, full, all);
    if (err !== null) {
      this.violations++;
      if (this.firstViolation === "") this.firstViolation = `domain ${this.spec.name}: ${err}`;
    }
  }

  /**
   * This domain's row of the time series: what report() gives for the series counters (the
   * simulator's counters, then the guest's and the VMM's figures over them, as report() takes
   * them; the paging modes report none of them), without making the rest of a report: a
   * sample of 1,000 domains takes 1,000 rows.
   */
  seriesRow(): SampleRow {
    const c = this.counters;
    const vmm = this.platform.vmm;
    // One literal with every key, in SERIES_COUNTERS' order after cycles: an object grown key
    // by key would turn into a hash table, several times larger, and a run keeps 262,144 rows.
    return {
      cycles: this.time(),
      user_accesses: this.userAccesses,
      tlb_misses: c[C_TLB_MISSES],
      walk_refs: c[C_WALK_REFS],
      guest_page_faults: c[C_GUEST_PAGE_FAULTS],
      context_switches: c[C_CONTEXT_SWITCHES],
      forks: c[C_FORKS],
      guest_frames_used: this.kernel.framesInUse() - (this.kernel.balloon?.count ?? 0),
      pt_pages: this.kernel.pt.pages,
      host_frames: vmm === null ? 0 : this.hostFramesUsed(),
      balloon_target_pages: vmm === null ? 0 : targetOf(vmm),
      balloon_pages: vmm === null ? 0 : (this.kernel.balloon?.count ?? 0),
      host_swapped_out: vmm === null ? 0 : vmm.p2m.swappedOut,
      host_swap_ins: c[C_HOST_SWAP_INS],
      host_swap_outs: c[C_HOST_SWAP_OUTS],
      reservation_pages: vmm === null ? 0 : vmm.p2m.gfns - vmm.p2m.ballooned,
      balloon_inflated_pages: c[C_BALLOON_INFLATED_PAGES],
      balloon_deflated_pages: c[C_BALLOON_DEFLATED_PAGES],
      balloon_backoffs: c[C_BALLOON_BACKOFFS],
      guest_oom: c[C_GUEST_OOM],
    };
  }

  report(): DomainReport {
    const processes = this.totals.report(this.spec.processes, this.drivers.values());
    const counters: DomainCounters = {
      ...countersToRecord(this.counters, this.platform.cpu.walkHist),
      guest_frames: this.platform.guestFrames,
      // The balloon's pages are the host's, not the guest's processes'.
      guest_frames_used: this.kernel.framesInUse() - (this.kernel.balloon?.count ?? 0),
      pt_pages: this.kernel.pt.pages,
      page_cache_pages: this.kernel.pageCache.pages,
      user_accesses: this.userAccesses,
    };
    const vmm = this.platform.vmm;
    if (vmm !== null) {
      counters.p2m_entries = vmm.p2m.populated;
      counters.p2m_pages = vmm.p2m.tablePages.length;
      counters.host_frames = this.hostFramesUsed();
      counters.reservation_pages = vmm.p2m.gfns - vmm.p2m.ballooned;
      counters.balloon_target_pages = targetOf(vmm);
      counters.balloon_pages = this.kernel.balloon?.count ?? 0;
      counters.host_swapped_out = vmm.p2m.swappedOut;
    }
    vmm?.paging.report(counters);
    return {
      name: this.spec.name,
      mode: this.spec.mode,
      ...(this.crashed !== ""
        ? { crashed: `${this.crashedAtBoot ? "at boot: " : ""}${this.crashed}` }
        : {}),
      ...(vmm !== null
        ? {
            overcommit: {
              balloon_driver: this.kernel.balloon !== null,
              on_touch: vmm.p2m.touchPolicy,
              target_policy: this.scenario.host.balloonPolicy.type,
              host_swap: this.scenario.host.swap.enabled,
            },
          }
        : {}),
      counters,
      cycles: {
        total: this.time(),
        seconds: this.time() / this.cost.hz,
        by_event: this.cost.byEvent(this.counters),
      },
      rates: ratesOf(counters, this.time()),
      processes,
    };
  }
}

/**
 * The field's rates: events per thousand instructions, and cycles per instruction over the
 * whole run (every cost included); 0 when no instruction was counted.
 */
function ratesOf(c: DomainCounters, cycles: number): DomainReport["rates"] {
  const instructions = c.instructions;
  const perKi = (n: number) => (instructions > 0 ? (1000 * n) / instructions : 0);
  return {
    cpi: instructions > 0 ? cycles / instructions : 0,
    page_faults_pki: perKi(c.guest_page_faults),
    tlb_mpki: perKi(c.tlb_misses),
    walks_pki: perKi(c.walks),
    vmexits_pki: perKi(c.vmexits),
  };
}
