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
import type { ExitTrace, WalkTrace } from "../hw/step-trace.js";
import { C_GUEST_PAGE_FAULTS, C_TLB_L1_HITS, C_TLB_L2_HITS } from "../metrics/counters.js";
import { STEP_ACCESS } from "../workload/driver.js";
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
  reason: ExitTrace["reason"];
  gva: string;
  outcome: string;
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
  /** The hardware's walks (under shadow paging: of the shadow tables). */
  walks: StepWalk[];
  /** Exits to the VMM, in order (none natively). */
  exits: StepExit[];
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
  for (let i = 0; i < MAX_STEPS; i++) {
    const l1Before = c[C_TLB_L1_HITS];
    const l2Before = c[C_TLB_L2_HITS];
    const faultsBefore = c[C_GUEST_PAGE_FAULTS];
    const timeBefore = d.time();
    cpu.trace = [];
    cpu.exitTrace = [];
    const r = d.stepOnce();
    const walks = cpu.trace;
    const exits = cpu.exitTrace;
    cpu.trace = null;
    cpu.exitTrace = null;
    if (r < 0) return null;
    if (r !== STEP_ACCESS) continue;
    d.userAccesses++;
    const driver = d.currentDriver;
    const gva = driver?.lastGva ?? 0;
    const kind = driver?.lastKind ?? 0;
    const mfn = driver?.lastFrame ?? -1;
    const tlb =
      walks.length > 0
        ? "miss"
        : c[C_TLB_L1_HITS] > l1Before
          ? "l1"
          : c[C_TLB_L2_HITS] > l2Before
            ? "l2"
            : "miss";
    const offset = gva % 4096;
    const guest = guestWalk(d, driver?.proc.l4Gfn ?? -1, gva);
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
      exits: exits.map((e) => ({
        reason: e.reason,
        gva: formatGva(e.gva),
        outcome: e.outcome,
        ...(e.guestWalk ? { guestWalk: stepWalk(e.guestWalk) } : {}),
      })),
      guest,
      p2m: p2mLookup(d, guest.gfn),
      guestFaults: c[C_GUEST_PAGE_FAULTS] - faultsBefore,
      mfn,
      hpa: mfn >= 0 ? `0x${(mfn * 4096 + offset).toString(16)}` : "-",
      cycles: d.time() - timeBefore,
    };
  }
  return null;
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
