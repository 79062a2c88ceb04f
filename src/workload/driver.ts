/**
 * Process life cycles: what each kind of process does, one action per step, on top of the
 * guest kernel's system calls. One class with a state switch, so that the run loop's call site
 * stays monomorphic.
 *
 * - database: touches its heap by its access pattern, for ever or for `lifetime` accesses.
 * - build: a make-like parent keeps `jobs` children; each child execs a fresh image, touches its
 *   heap `childAccesses` times and exits, and the parent forks the next one (a kernel compile).
 * - mmap-churn: maps a region, touches it `churnAccesses` times, unmaps it, again and again.
 * - trace: replays a recorded program's accesses, in order, in the address space its trace
 *   shows (trace/layout.ts); at the end it starts again (loop) or exits.
 */

import type { ProcessSpec } from "../config/scenario.js";
import type { TraceRecords } from "../config/trace.js";
import { finishUserAccess, userAccess } from "../guest/fault.js";
import { fork } from "../guest/fork.js";
import type { Kernel, ProcessImage } from "../guest/kernel.js";
import { USER_CODE_BASE, USER_HEAP_BASE, USER_STACK_TOP } from "../guest/layout.js";
import { type Process, VM_READ, VM_WRITE } from "../guest/process.js";
import type { Scheduler } from "../guest/scheduler.js";
import { KIND_USER_FETCH, KIND_USER_READ, KIND_USER_WRITE } from "../hw/access.js";
import type { AccessBuffer } from "../hw/access-buffer.js";
import { DOUBLE_ZERO } from "../hw/double-zero.js";
import { foldRead } from "../hw/read-hash.js";
import { C_ACCESSES, C_CORE_CYCLES, C_EXITS, C_INSTRUCTIONS } from "../metrics/counters.js";
import { PageSequence } from "./pattern.js";
import type { Rng } from "./rng.js";
import { traceLayout } from "./trace/layout.js";
import { TraceReader } from "./trace/reader.js";

/** What a step did. */
export const STEP_ACCESS = 0;
export const STEP_SYSCALL = 1;
/** The process cannot run now (a make waiting for a child). */
export const STEP_BLOCKED = 2;
export const STEP_EXITED = 3;

const ROLE_DATABASE = 0;
const ROLE_MAKE = 1;
const ROLE_CHILD = 2;
const ROLE_CHURN = 3;
const ROLE_TRACE = 4;

/** The guest access kind for each trace record kind (load, store, fetch). */
const TRACE_ACCESS_KINDS = [KIND_USER_READ, KIND_USER_WRITE, KIND_USER_FETCH, KIND_USER_READ];

/** The records of a process that replays none. */
const NO_TRACE: TraceRecords = { count: 0, chunks: 0, chunk: () => new Uint32Array(0) };

const STATE_START = 0;
const STATE_RUN = 1;
const STATE_MAP = 2;
const STATE_UNMAP = 3;
const STATE_EXIT = 4;

export class ProcessDriver {
  proc: Process;
  private role: number;
  private state = STATE_START;
  private seq: PageSequence;
  private codeSeq: PageSequence;
  private dataBase: number;
  private remaining = 0;
  private readonly children: ProcessDriver[] = [];
  /** trace: this process's place in its trace's records. */
  private readonly trace: TraceReader;
  /** trace: times the trace was replayed to its end. */
  traceLoops = 0;
  /** The make that forked this child, to wake when it exits. */
  parent: ProcessDriver | null = null;
  /**
   * The work between accesses (see ProcessSpec): instructions per access and their cycles,
   * counted with each access; a trace process counts one instruction per fetch it replays.
   */
  private readonly instructionsPerAccess: number;
  private readonly cyclesPerAccess: number;
  private readonly cpi: number;
  private readonly counters: Float64Array;
  /** The last access, for the step API. */
  lastGva = DOUBLE_ZERO;
  lastKind = 0;
  lastFrame = -1;

  constructor(
    private readonly kernel: Kernel,
    private readonly sched: Scheduler,
    readonly spec: ProcessSpec,
    proc: Process,
    private readonly rng: Rng,
    role: "database" | "build" | "mmap-churn" | "trace" | "child",
  ) {
    this.proc = proc;
    this.role =
      role === "database"
        ? ROLE_DATABASE
        : role === "build"
          ? ROLE_MAKE
          : role === "child"
            ? ROLE_CHILD
            : role === "trace"
              ? ROLE_TRACE
              : ROLE_CHURN;
    this.trace = new TraceReader(role === "trace" ? ProcessDriver.traceOf(spec) : NO_TRACE);
    const pages = Math.max(1, Math.floor(spec.workingSet / 4096));
    this.seq = new PageSequence(spec.pattern, pages, rng);
    this.codeSeq = new PageSequence(
      { type: "uniform" },
      Math.max(1, Math.floor(spec.code / 4096)),
      rng,
    );
    this.dataBase = USER_HEAP_BASE;
    this.instructionsPerAccess = spec.instructionsPerAccess;
    this.cyclesPerAccess = spec.instructionsPerAccess * spec.cpi;
    this.cpi = spec.cpi;
    this.counters = kernel.counters;
  }

  /** The records of a trace process's spec; throws when they were never read. */
  static traceOf(spec: ProcessSpec): TraceRecords {
    const data = spec.trace?.data;
    if (!data) {
      throw new Error(
        `process ${spec.name}: its trace ${spec.trace?.file ?? "(none)"} was not read ` +
          "(load the scenario with loadScenarioFile, or give parseScenario a loadTrace function)",
      );
    }
    return data;
  }

  /** The image a process of this spec runs. A make's own heap is small: its children work. */
  static image(spec: ProcessSpec, make: boolean): ProcessImage {
    if (spec.kind === "trace") {
      return {
        code: 0,
        heap: 0,
        hugeHeap: false,
        name: spec.image,
        layout: traceLayout(ProcessDriver.traceOf(spec)).regions,
      };
    }
    return {
      code: spec.code,
      heap: make ? 64 * 4096 : spec.workingSet,
      hugeHeap: spec.hugePages,
      name: spec.image,
      imageData: make ? 0 : spec.imageData,
    };
  }

  /** Do one thing. Returns STEP_ACCESS, STEP_SYSCALL, STEP_BLOCKED or STEP_EXITED. */
  step(): number {
    if (!this.proc.alive) return STEP_EXITED;
    switch (this.role) {
      case ROLE_DATABASE:
        if (this.state === STATE_START) return this.touchStack(STATE_RUN);
        if (this.spec.lifetime > 0 && this.proc.accesses >= this.spec.lifetime) {
          this.kernel.exit(this.proc);
          this.onExit();
          return STEP_EXITED;
        }
        return this.accessStep();
      case ROLE_MAKE:
        return this.makeStep();
      case ROLE_CHILD:
        return this.childStep();
      case ROLE_TRACE:
        return this.traceStep();
      default:
        return this.churnStep();
    }
  }

  /** One user access by the pattern: a fetch from the code, or a read or write of the data. */
  private accessStep(): number {
    const n = this.proc.accesses;
    const gva = this.patternGva(n);
    this.access(gva, this.patternKind, Math.imul(n + 1, 0x9e3779b1) >>> 0);
    return STEP_ACCESS;
  }

  /** The kind of the access patternGva last drew. */
  private patternKind = 0;

  /**
   * The address of the pattern's next access, the process's access number `n` (its kind in
   * patternKind): the random draws in the order every access makes them.
   */
  private patternGva(n: number): number {
    const spec = this.spec;
    if (spec.fetches > 0 && this.rng.nextFloat() < spec.fetches) {
      this.patternKind = KIND_USER_FETCH;
      return USER_CODE_BASE + this.codeSeq.next() * 4096 + ((n * 8) % 4096);
    }
    const gva = this.dataBase + this.seq.next() * 4096 + ((n * 56) % 4096);
    this.patternKind = this.rng.nextFloat() < spec.writes ? KIND_USER_WRITE : KIND_USER_READ;
    return gva;
  }

  /** The next record of the trace, as the program made it (its stack accesses included). */
  private traceStep(): number {
    const trace = this.trace;
    let j = trace.next();
    if (j < 0) {
      this.traceLoops++;
      if (!this.spec.trace?.loop) {
        this.kernel.exit(this.proc);
        this.onExit();
        return STEP_EXITED;
      }
      trace.rewind();
      j = trace.next();
    }
    const words = trace.words;
    const meta = words[j + 1];
    const gva = (meta & 0xffff) * 4294967296 + words[j];
    const n = this.proc.accesses;
    const kind = TRACE_ACCESS_KINDS[(meta >>> 16) & 3];
    // Lackey records every instruction's fetch: the trace's instructions are its fetches.
    if (kind === KIND_USER_FETCH) {
      this.counters[C_INSTRUCTIONS]++;
      this.counters[C_CORE_CYCLES] += this.cpi;
    }
    this.access(gva, kind, Math.imul(n + 1, 0x9e3779b1) >>> 0);
    return STEP_ACCESS;
  }

  /**
   * One user access with the guest's fault handling: retried after the kernel fixes the fault.
   * Returns false when the process was killed.
   */
  access(gva: number, kind: number, value: number): boolean {
    const proc = this.proc;
    this.lastGva = gva;
    this.lastKind = kind;
    proc.accesses++;
    this.counters[C_INSTRUCTIONS] += this.instructionsPerAccess;
    this.counters[C_CORE_CYCLES] += this.cyclesPerAccess;
    const frame = userAccess(this.kernel, proc, gva, kind, value);
    this.lastFrame = frame;
    if (frame === -1) {
      this.onExit();
      return false;
    }
    if (kind !== KIND_USER_WRITE)
      proc.readHash = foldRead(proc.readHash, this.kernel.cpu.readValue) >>> 0;
    return true;
  }

  /**
   * The user accesses start..end-1 of `buf`, in order, each as access() makes it: the vCPU runs
   * them in a batch up to the first that needs the guest kernel (a #PF) or was emulated by a
   * VMM, which is finished here one at a time. Returns the index reached: `end`, or the index
   * after the access in which the process was killed.
   */
  accessBatch(buf: AccessBuffer, start: number, end: number): number {
    return this.runBatch(buf, start, end, false);
  }

  /**
   * How many of this process's next steps, up to `max`, are user accesses that step() would make
   * one after the other, nothing else between (no system call, exit, trace end or chunk to
   * load): 0 when the next step is not one. `workAfter[j]` receives the work counter
   * (core_cycles) after the j-th of them, added as each step adds it: what the guest's clock
   * needs to know where the scheduler's slice ends among them (DomainRuntime.accessRun).
   */
  planAccesses(max: number, workAfter: Float64Array): number {
    if (!this.proc.alive) return 0;
    let count = max;
    switch (this.role) {
      case ROLE_DATABASE:
        if (this.state !== STATE_RUN) return 0;
        // step() exits once the process made its lifetime's accesses.
        if (this.spec.lifetime > 0) {
          count = Math.max(0, Math.min(count, this.spec.lifetime - this.proc.accesses));
        }
        break;
      case ROLE_CHILD:
      case ROLE_CHURN:
        if (this.state !== STATE_RUN) return 0;
        // The step that takes `remaining` to 0 makes the last access of the run.
        count = Math.min(count, Math.max(1, this.remaining));
        break;
      case ROLE_TRACE:
        // Every step replays a record; the chunk's end (a chunk to load, the trace's end) is one.
        count = Math.min(count, this.trace.left);
        break;
      default:
        return 0;
    }
    let work = this.counters[C_CORE_CYCLES];
    const perAccess = this.cyclesPerAccess;
    if (this.role === ROLE_TRACE) {
      const trace = this.trace;
      for (let j = 0; j < count; j++) {
        if (TRACE_ACCESS_KINDS[(trace.metaAhead(j) >>> 16) & 3] === KIND_USER_FETCH)
          work += this.cpi;
        work += perAccess;
        workAfter[j] = work;
      }
    } else {
      for (let j = 0; j < count; j++) {
        work += perAccess;
        workAfter[j] = work;
      }
    }
    return count;
  }

  /**
   * Make the j-th of the accesses planAccesses counted in slot j of `buf`, as step() would choose
   * it (the same random draws in the same order): slots 0..j-1 hold the ones before it. Then
   * filled(count) moves the process's state past the `count` made.
   */
  fillAccess(buf: AccessBuffer, j: number): void {
    const n = this.proc.accesses + j;
    if (this.role === ROLE_TRACE) {
      const words = this.trace.words;
      const at = this.trace.take(1);
      const meta = words[at + 1];
      buf.lo[j] = words[at] | 0;
      buf.hi[j] = meta & 0xffff;
      buf.kind[j] = TRACE_ACCESS_KINDS[(meta >>> 16) & 3];
    } else {
      const gva = this.patternGva(n);
      buf.lo[j] = gva | 0;
      buf.hi[j] = (gva / 4294967296) | 0;
      buf.kind[j] = this.patternKind;
    }
    buf.value[j] = Math.imul(n + 1, 0x9e3779b1);
  }

  /** After fillAccess of slots 0..count-1: what `count` of childStep's or churnStep's steps leave. */
  filled(buf: AccessBuffer, count: number): void {
    buf.length = count;
    if (this.role === ROLE_CHILD || this.role === ROLE_CHURN) {
      this.remaining -= count;
      if (this.remaining <= 0) this.state = this.role === ROLE_CHILD ? STATE_EXIT : STATE_UNMAP;
    }
  }

  /**
   * The accesses start..end-1 of `buf` (from fillAccess) as step() makes them, through the
   * vCPU's batch as accessBatch: a trace's fetch also counts its instruction. Returns the index
   * reached: `end`, or the index after an access in which the process died or the guest kernel
   * ended a process (the OOM killer: the run loop then reaps before the next step). When the
   * vCPU or the kernel throws (a VMM crashed the domain), the state is access()'s at the throw,
   * the accesses before `batchAt` made and that one started.
   */
  stepBatch(buf: AccessBuffer, start: number, end: number): number {
    return this.runBatch(buf, start, end, true);
  }

  /** The access of the last batch that threw (see stepBatch). */
  batchAt = 0;

  private runBatch(buf: AccessBuffer, start: number, end: number, steps: boolean): number {
    const proc = this.proc;
    const cpu = this.kernel.cpu;
    const c = this.counters;
    const kinds = buf.kind;
    const values = buf.value;
    const fetchWork = steps && this.role === ROLE_TRACE;
    let i = start;
    while (i < end) {
      const started = c[C_ACCESSES];
      let n: number;
      // The vCPU folds the values its batch reads into the process's read hash.
      cpu.batchReadHash = proc.readHash | 0;
      try {
        n = cpu.accessBatch(buf, i, end);
      } catch (e) {
        // The vCPU counts each access as it starts it: the one that threw is the last counted.
        n = i + (c[C_ACCESSES] - started) - 1;
        proc.readHash = cpu.batchReadHash >>> 0;
        this.batchMade(buf, i, n, fetchWork);
        this.batchStarted(buf, n, fetchWork);
        this.batchAt = n;
        throw e;
      }
      proc.readHash = cpu.batchReadHash >>> 0;
      this.batchMade(buf, i, n, fetchWork);
      if (n === end) return end;
      // Access n stopped in the vCPU: its first try is made; finish it as access() would.
      this.batchStarted(buf, n, fetchWork);
      this.batchAt = n;
      const exits = c[C_EXITS];
      const kind = kinds[n];
      const frame = finishUserAccess(
        this.kernel,
        proc,
        this.lastGva,
        kind,
        values[n],
        cpu.batchStop,
      );
      this.lastFrame = frame;
      if (frame === -1) {
        this.onExit();
        return n + 1;
      }
      if (kind !== KIND_USER_WRITE) {
        values[n] = cpu.readValue;
        proc.readHash = foldRead(proc.readHash, cpu.readValue) >>> 0;
      }
      i = n + 1;
      if (steps && (c[C_EXITS] !== exits || !proc.alive)) return i;
    }
    return end;
  }

  /**
   * The accesses i..n-1, which the vCPU made (and folded into the read hash): what access() adds
   * around each, in order (the same floating-point sums), and a trace's fetches' instructions
   * first when `fetchWork`.
   */
  private batchMade(buf: AccessBuffer, i: number, n: number, fetchWork: boolean): void {
    if (n <= i) return;
    const proc = this.proc;
    const c = this.counters;
    const kinds = buf.kind;
    const work = this.instructionsPerAccess !== 0 || this.cyclesPerAccess !== 0;
    proc.accesses += n - i;
    if (work || fetchWork) {
      // The two sums in locals: the same additions in the same order, so the same doubles, but
      // not a load and a store of the counter array per access.
      let instructions = c[C_INSTRUCTIONS];
      let cycles = c[C_CORE_CYCLES];
      const cpi = this.cpi;
      const perAccess = this.instructionsPerAccess;
      const cyclesPerAccess = this.cyclesPerAccess;
      for (let k = i; k < n; k++) {
        if (fetchWork && kinds[k] === KIND_USER_FETCH) {
          instructions++;
          cycles += cpi;
        }
        if (work) {
          instructions += perAccess;
          cycles += cyclesPerAccess;
        }
      }
      c[C_INSTRUCTIONS] = instructions;
      c[C_CORE_CYCLES] = cycles;
    }
    this.lastGva = buf.gva(n - 1);
    this.lastKind = kinds[n - 1];
    this.lastFrame = this.kernel.cpu.batchFrame;
  }

  /** Access n begun, as access() begins it before the vCPU's first try. */
  private batchStarted(buf: AccessBuffer, n: number, fetchWork: boolean): void {
    const c = this.counters;
    const kind = buf.kind[n];
    if (fetchWork && kind === KIND_USER_FETCH) {
      c[C_INSTRUCTIONS]++;
      c[C_CORE_CYCLES] += this.cpi;
    }
    this.lastGva = buf.gva(n);
    this.lastKind = kind;
    this.proc.accesses++;
    c[C_INSTRUCTIONS] += this.instructionsPerAccess;
    c[C_CORE_CYCLES] += this.cyclesPerAccess;
  }

  private touchStack(next: number): number {
    this.state = next;
    this.access(USER_STACK_TOP - 64, KIND_USER_WRITE, this.proc.pid);
    return STEP_ACCESS;
  }

  private makeStep(): number {
    if (this.state === STATE_START) return this.touchStack(STATE_RUN);
    for (let i = this.children.length - 1; i >= 0; i--) {
      if (!this.children[i].proc.alive) this.children.splice(i, 1);
    }
    if (this.children.length >= this.spec.jobs) {
      this.sched.remove(this.proc);
      return STEP_BLOCKED;
    }
    const child = fork(this.kernel, this.proc);
    if (child === null) {
      this.sched.remove(this.proc); // -ENOMEM: wait for a child to finish
      return STEP_BLOCKED;
    }
    const driver = new ProcessDriver(
      this.kernel,
      this.sched,
      this.spec,
      child,
      this.rng.derive(child.pid),
      "child",
    );
    driver.parent = this;
    this.children.push(driver);
    this.spawned.push(driver);
    this.sched.add(child);
    return STEP_SYSCALL;
  }

  /** Children forked since the run loop last looked (it registers their drivers). */
  readonly spawned: ProcessDriver[] = [];

  private childStep(): number {
    switch (this.state) {
      case STATE_START: {
        // The child of fork runs a new program: exec, then touch its stack.
        if (!this.kernel.exec(this.proc, ProcessDriver.image(this.spec, false))) {
          this.kernel.exit(this.proc, "oom");
          this.onExit();
          return STEP_EXITED;
        }
        this.remaining = this.spec.childAccesses;
        return this.touchStack(STATE_RUN);
      }
      case STATE_RUN:
        if (--this.remaining <= 0) this.state = STATE_EXIT;
        return this.accessStep();
      default:
        this.kernel.exit(this.proc);
        this.onExit();
        return STEP_EXITED;
    }
  }

  private churnStep(): number {
    switch (this.state) {
      case STATE_START:
        return this.touchStack(STATE_MAP);
      case STATE_MAP:
        this.dataBase = this.kernel.mmap(
          this.proc,
          this.spec.workingSet,
          VM_READ | VM_WRITE,
          false,
        );
        this.remaining = this.spec.churnAccesses;
        this.state = STATE_RUN;
        return STEP_SYSCALL;
      case STATE_RUN:
        if (--this.remaining <= 0) this.state = STATE_UNMAP;
        return this.accessStep();
      default:
        this.kernel.munmap(this.proc, this.dataBase, this.spec.workingSet);
        this.state = STATE_MAP;
        return STEP_SYSCALL;
    }
  }

  /** Called once the process is gone: leave the run queue, wake a waiting make. */
  onExit(): void {
    this.sched.remove(this.proc);
    if (this.parent?.proc.alive) this.sched.add(this.parent.proc);
  }
}
