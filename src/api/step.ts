/**
 * The step API: one user access, with everything the hardware and the kernels did for it, for
 * tools that show a translation happen (the web visualizer). It runs the same code as a normal
 * run; the only difference is that the vCPU records its walks (on its slow path, never on the
 * TLB-hit path) and that counters are compared before and after.
 */

import { KIND_NAMES } from "../hw/access.js";
import { formatGva, tableIndex } from "../hw/addr.js";
import { describeEpte } from "../hw/ept.js";
import { EPT_VIOLATION } from "../hw/nested.js";
import { describePte } from "../hw/pte.js";
import type { TraceEvent, WalkTrace } from "../hw/step-trace.js";
import { C_GUEST_PAGE_FAULTS, C_TLB_L1_HITS, C_TLB_L2_HITS } from "../metrics/counters.js";
import { STEP_ACCESS, STEP_SYSCALL } from "../workload/driver.js";
import type { DomainRuntime } from "./domain.js";
import {
  type GuestWalk,
  guestWalk,
  hex64,
  type P2mLookup,
  p2mLookup,
  type TlbSet,
  tlbSets,
} from "./inspect.js";
import type { Simulation } from "./simulation.js";
import { decodeErrorCode, hexOf, type StepEvent, tellEvent } from "./story.js";

export interface StepLevel {
  /** Paging level 4 (PML4) .. 1 (page table). */
  level: number;
  /** Host frame of the table read. */
  tableMfn: number;
  index: number;
  /** The entry read, as 16 hex digits, and its flags. */
  entry: string;
  flags: string;
}

/** One memory reference of a 2D walk (hardware-assisted paging), in the order made. */
export interface StepNestedRef {
  /** "ept": an EPT entry read to translate `gfn`; "guest": a guest entry read. */
  dim: "ept" | "guest";
  level: number;
  tableMfn: number;
  index: number;
  entry: string;
  flags: string;
  /** The gfn being translated (ept) or the gfn of the guest table read (guest; -1: cached). */
  gfn: number;
}

export interface StepWalk {
  /** The root: a host frame, or under hardware-assisted paging the guest's root gfn. */
  rootMfn: number;
  /** The guest levels read (natively and under HAP) or the shadow levels (shadow paging). */
  levels: StepLevel[];
  /** "ok", "EPT violation", or the #PF error code in hex. */
  result: string;
  /** Under hardware-assisted paging: every reference of the 2D walk (up to 24). */
  nested?: StepNestedRef[];
}

/** An exit to the VMM during the step, and what the VMM did. */
export interface StepExit {
  reason: "PF" | "CR3" | "INVLPG" | "EPT_VIOLATION" | "HYPERCALL";
  /** The gva the exit is about, in hex; "" when it is not about one (CR3, EPT, hypercalls). */
  gva: string;
  /** What the VMM did, in words ("hidden fault: ...", "true fault: ...", "emulated ..."). */
  outcome: string;
  /** The exit's place in the step's events. */
  event: number;
  /** For a #PF under shadow paging: the VMM's software walk of the guest's tables (gfns). */
  guestWalk?: StepWalk;
}

export interface StepRecord {
  domain: string;
  pid: number;
  process: string;
  /** The address as the program used it, canonical hex. */
  gva: string;
  /** The four 9-bit table indices (L4, L3, L2, L1) and the 12-bit offset. */
  indices: [number, number, number, number];
  offset: number;
  access: (typeof KIND_NAMES)[number];
  /** Where the first lookup found the translation. */
  tlb: "l1" | "l2" | "miss";
  /**
   * The TLB sets the gva indexes (L1 and L2, 4 KiB; a large-page set when it holds the gva), as
   * they are after the access: the entry that hit or was filled is marked current.
   */
  tlbSets: TlbSet[];
  /**
   * The hardware's walks during the step (under shadow paging: of the shadow tables), the
   * guest kernel's before the access included; the events name each by its place here.
   */
  walks: StepWalk[];
  /**
   * Exits to the VMM, in order (none natively), every one the domain's exit counters count
   * during the step, the steps of the guest kernel before the access (system calls, the
   * balloon driver) included.
   */
  exits: StepExit[];
  /** What happened, in order: the step's story (api/story.ts). */
  events: StepEvent[];
  /**
   * The guest's own translation of the gva (its gptes, read after the access, so with the A/D
   * bits the access set); no levels when the process is gone.
   */
  guest: GuestWalk;
  /** The P2M entry of the gfn the guest walk gives (virtualized domains only). */
  p2m: P2mLookup | null;
  /** True page faults the guest kernel handled for this access. */
  guestFaults: number;
  /** Host frame reached, or -1 when the process was killed. */
  mfn: number;
  hpa: string;
  /** Simulated cycles this step cost the domain. */
  cycles: number;
}

const MAX_STEPS = 1_000_000;

export function stepAccess(sim: Simulation): StepRecord | null {
  // Every domain's vCPU records from here: the host's timers (page sharing) and the balloon
  // driver act before the access, on any domain.
  const cpus = sim.domains.map((d) => d.platform.cpu);
  for (const cpu of cpus) cpu.events = [];
  try {
    sim.tickHost();
    const tried = new Set<number>();
    for (let tries = 0; tries < sim.domains.length; tries++) {
      const i = stepTurn(sim, tried);
      if (i < 0) break;
      tried.add(i);
      const d = sim.domains[i];
      d.safePoint(d.clock());
      const record = stepDomain(d);
      if (record !== null) {
        sim.countAccesses(i, 1);
        return record;
      }
    }
    return null;
  } finally {
    for (const cpu of cpus) cpu.events = null;
  }
}

/**
 * Domains take turns step by step in the order of a normal run's turns: the one with the least
 * time that still has accesses to make in this phase. -1 when none is left.
 */
function stepTurn(sim: Simulation, tried: Set<number>): number {
  let best = -1;
  for (let i = 0; i < sim.domains.length; i++) {
    if (tried.has(i) || sim.quotaLeft(i) === 0) continue;
    if (best < 0 || sim.domains[i].time() < sim.domains[best].time()) best = i;
  }
  return best;
}

function stepDomain(d: DomainRuntime): StepRecord | null {
  const cpu = d.platform.cpu;
  const c = d.counters;
  const walks: WalkTrace[] = [];
  // The events recorded so far (the balloon driver's, the host's) belong to this step.
  const events: TraceEvent[] = cpu.events ?? [];
  const story: StepEvent[] = [];
  const mode = d.spec.mode;
  /** Tell the events recorded since the last call. */
  const tellAll = (): void => {
    for (const e of events.splice(0)) {
      // What the guest's fault handler mapped, read from its tables with no side effect.
      if (e.kind === "guest-fault" && e.note !== "segv") {
        e.gfn = guestWalk(d, e.index ?? -1, e.gva ?? 0).gfn;
      }
      const told = tellEvent(e, walks, mode);
      if (e.walk) told.guestWalk = stepWalk(e.walk);
      story.push(told);
    }
  };
  cpu.trace = walks;
  cpu.events = events;
  try {
    for (let i = 0; i < MAX_STEPS; i++) {
      const l1Before = c[C_TLB_L1_HITS];
      const l2Before = c[C_TLB_L2_HITS];
      const faultsBefore = c[C_GUEST_PAGE_FAULTS];
      const timeBefore = d.time();
      const walksBefore = walks.length;
      tellAll();
      const r = d.stepOnce();
      const driver = d.currentDriver;
      if (r < 0) return null;
      if (r !== STEP_ACCESS) {
        if (r === STEP_SYSCALL) {
          story.push({
            kind: "syscall",
            text: `Process ${driver?.proc.name ?? ""} (pid ${driver?.proc.pid ?? 0}) makes a system call; the guest kernel runs it.`,
            details: [],
            values: { pid: String(driver?.proc.pid ?? 0) },
          });
        }
        tellAll();
        continue;
      }
      d.userAccesses++;
      const gva = driver?.lastGva ?? 0;
      const kind = driver?.lastKind ?? 0;
      const mfn = driver?.lastFrame ?? -1;
      const tlb =
        walks.length > walksBefore
          ? "miss"
          : c[C_TLB_L1_HITS] > l1Before
            ? "l1"
            : c[C_TLB_L2_HITS] > l2Before
              ? "l2"
              : "miss";
      const offset = gva % 4096;
      const guest = guestWalk(d, driver?.proc.l4Gfn ?? -1, gva);
      const p2m = p2mLookup(d, guest.gfn);
      story.push(tlbEvent(formatGva(gva), KIND_NAMES[kind], tlb));
      tellAll();
      const hpa = mfn >= 0 ? `0x${(mfn * 4096 + offset).toString(16)}` : "-";
      story.push(resultEvent(formatGva(gva), guest.gpa, hpa, mfn));
      return {
        domain: d.spec.name,
        pid: driver?.proc.pid ?? 0,
        process: driver?.proc.name ?? "",
        gva: formatGva(gva),
        indices: [4, 3, 2, 1].map((l) => tableIndex(gva, l)) as StepRecord["indices"],
        offset,
        access: KIND_NAMES[kind],
        tlb,
        tlbSets: tlbSets(d, gva),
        walks: walks.map(stepWalk),
        exits: exitsOf(story),
        events: story,
        guest,
        p2m,
        guestFaults: c[C_GUEST_PAGE_FAULTS] - faultsBefore,
        mfn,
        hpa,
        cycles: d.time() - timeBefore,
      };
    }
    return null;
  } finally {
    cpu.trace = null;
  }
}

/** The first event of the access: where the TLB found it. */
function tlbEvent(gva: string, access: string, tlb: StepRecord["tlb"]): StepEvent {
  const text =
    tlb === "l1"
      ? `The ${access} of gva ${gva} looks up the TLB: hit in the L1 TLB, no walk.`
      : tlb === "l2"
        ? `The ${access} of gva ${gva} looks up the TLB: missed the L1 TLB, hit in the L2 TLB (the L1 TLB is filled), no walk.`
        : `The ${access} of gva ${gva} looks up the TLB: missed both TLBs, so the page walker runs.`;
  return { kind: "tlb", text, details: [], values: { gva, tlb } };
}

/** The last event: the translation the access ended with. */
function resultEvent(gva: string, gpa: string, hpa: string, mfn: number): StepEvent {
  return {
    kind: "result",
    text:
      mfn >= 0
        ? `Done: gva ${gva} -> gpa ${gpa} -> hpa ${hpa} (mfn ${hexOf(mfn)}).`
        : `Done: the access to gva ${gva} did not complete (the process was killed).`,
    details: [],
    values: { gva, gpa, hpa, mfn: hexOf(mfn) },
  };
}

/** Events that are exits to the VMM, and the reason each counts under. */
const EXIT_REASONS: Partial<Record<StepEvent["kind"], StepExit["reason"]>> = {
  "pf-exit": "PF",
  "pf-bounce": "PF",
  cr3: "CR3",
  invlpg: "INVLPG",
  "ept-violation": "EPT_VIOLATION",
  hypercall: "HYPERCALL",
};

/** Events that say how a #PF exit ended. */
const PF_OUTCOMES: Partial<Record<StepEvent["kind"], true>> = {
  "true-fault": true,
  "hidden-fault": true,
  "emulate-write": true,
};

/** The exits among a step's events, each with what the VMM did. */
function exitsOf(story: StepEvent[]): StepExit[] {
  const exits: StepExit[] = [];
  story.forEach((e, n) => {
    const reason = EXIT_REASONS[e.kind];
    if (reason === undefined) return;
    let outcome = e.text;
    let guestWalk: StepWalk | undefined;
    if (e.kind === "pf-exit") {
      outcome = "the VMM handled it";
      for (let k = n + 1; k < story.length && EXIT_REASONS[story[k].kind] === undefined; k++) {
        const next = story[k];
        if (next.kind === "guest-walk") guestWalk = next.guestWalk;
        if (!PF_OUTCOMES[next.kind]) continue;
        outcome =
          next.kind === "true-fault"
            ? `true fault: injected #PF ${decodeErrorCode(Number(next.values.code))}`
            : next.kind === "hidden-fault"
              ? `hidden fault: the shadow fixed for gfn ${next.values.gfn}`
              : `emulated write to guest table gfn ${next.values.gfn} entry [${next.values.index}]`;
        break;
      }
    }
    exits.push({
      reason,
      gva: e.values.gva ?? "",
      outcome,
      event: n,
      ...(guestWalk ? { guestWalk } : {}),
    });
  });
  return exits;
}

function stepWalk(w: WalkTrace): StepWalk {
  return {
    rootMfn: w.root,
    levels: w.levels.map((l) => ({
      level: l.level,
      tableMfn: l.tableMfn,
      index: l.index,
      entry: hex64(l.lo, l.hi),
      flags: describePte(l.lo, l.hi),
    })),
    result:
      w.result === EPT_VIOLATION
        ? "EPT violation"
        : w.result < 0
          ? "ok"
          : `#PF 0x${w.result.toString(16)}`,
    ...(w.nested
      ? {
          nested: w.nested.map((r) => ({
            dim: r.dim,
            level: r.level,
            tableMfn: r.tableMfn,
            index: r.index,
            entry: hex64(r.lo, r.hi),
            flags: r.dim === "ept" ? describeEpte(r.lo, r.hi) : describePte(r.lo, r.hi),
            gfn: r.gfn,
          })),
        }
      : {}),
  };
}
