/**
 * Read-only views of a simulation for the step API and the web visualizer: the guest's own walk
 * of an address (gfns, as the guest kernel sees its tables), the P2M entry behind a gfn, and the
 * owner of every host frame. Nothing here changes the simulation (reads go through the checkers'
 * side-effect-free peeks), so calling them between steps leaves the run as it was.
 */

import { LEVEL_SPAN, tableIndex } from "../hw/addr.js";
import { describePte, isLeaf, isPresent, pteFrame } from "../hw/pte.js";
import { PAGES_PER_SIZE } from "../hw/tlb.js";
import { OWNER_DOMAIN, OWNER_SHADOW, OWNER_SHARED, OWNER_VMM } from "../vmm/frames.js";
import { P2M_TYPE_NAMES } from "../vmm/p2m.js";
import type { DomainRuntime } from "./domain.js";
import type { Simulation } from "./simulation.js";

/** One guest page-table entry (gpte) read by the guest walk. */
export interface GuestLevel {
  /** Paging level 4 (PML4) .. 1 (page table). */
  level: number;
  /** Guest frame of the table read. */
  tableGfn: number;
  index: number;
  /** The gpte as 16 hex digits (frame numbers are gfns, also under PV), and its flags. */
  entry: string;
  flags: string;
}

/** The guest's translation of a gva through its own tables (gva -> gpa). */
export interface GuestWalk {
  /** Guest frame of the process's PML4 (CR3). */
  rootGfn: number;
  levels: GuestLevel[];
  /** The guest frame the gva maps to, or -1 when a level is not present. */
  gfn: number;
  /** The guest-physical address, hex, or "-". */
  gpa: string;
}

/** The P2M entry of a gfn (gfn -> mfn and Xen's p2m type). */
export interface P2mLookup {
  gfn: number;
  /** -1 when the gfn has no host frame (populate on demand, paged out, ballooned). */
  mfn: number;
  type: string;
}

/** A 64-bit entry as 16 hex digits. */
export function hex64(lo: number, hi: number): string {
  return hi.toString(16).padStart(8, "0") + lo.toString(16).padStart(8, "0");
}

/** The guest walk of `gva` from the PML4 at `rootGfn`, as the tables are now. */
export function guestWalk(d: DomainRuntime, rootGfn: number, gva: number): GuestWalk {
  const peek = d.platform.peek;
  const levels: GuestLevel[] = [];
  let table = rootGfn;
  for (let level = 4; level >= 1 && table >= 0; level--) {
    const index = tableIndex(gva, level);
    peek.peek64(table, index);
    const { lo, hi } = peek;
    levels.push({
      level,
      tableGfn: table,
      index,
      entry: hex64(lo, hi),
      flags: describePte(lo, hi),
    });
    if (!isPresent(lo)) break;
    const frame = pteFrame(lo, hi);
    if (isLeaf(lo, level)) {
      // A leaf: a 2 MiB or 1 GiB page's base frame plus the 4 KiB pages into it.
      const pages = LEVEL_SPAN[level] / 4096;
      const within = Math.floor((gva % LEVEL_SPAN[level]) / 4096);
      const gfn = frame - (frame % pages) + within;
      return { rootGfn, levels, gfn, gpa: `0x${(gfn * 4096 + (gva % 4096)).toString(16)}` };
    }
    table = frame;
  }
  return { rootGfn, levels, gfn: -1, gpa: "-" };
}

/** The P2M entry of `gfn` in a virtualized domain; null natively (gfn = mfn). */
export function p2mLookup(d: DomainRuntime, gfn: number): P2mLookup | null {
  const vmm = d.platform.vmm;
  if (vmm === null || gfn < 0) return null;
  const p2m = vmm.p2m;
  return { gfn, mfn: p2m.lookup(gfn), type: P2M_TYPE_NAMES[p2m.type[gfn]] ?? "invalid" };
}

/** Owner codes of a FrameMap, below the first domain's. */
export const FRAME_FREE = 0;
export const FRAME_SHADOW = 1;
/** The VMM's tables: P2M pages and EPT tables. */
export const FRAME_VMM = 2;
export const FRAME_SHARED = 3;
/** Domain i's frames have code FRAME_DOMAIN + i. */
export const FRAME_DOMAIN = 4;

/** Every host frame and who owns it, for a picture of host memory. */
export interface FrameMap {
  /** Owner code of each frame (FRAME_*). Native domains each have a machine of their own: theirs follow one another. */
  owners: Uint8Array;
  /** Name of each owner code: "free", "shadow", "vmm", "shared", then the domains' names. */
  names: string[];
  /** Frames per owner code. */
  counts: number[];
  /** Frames in use (not free): the report's host.frames_used. */
  used: number;
}

export function frameMap(sim: Simulation): FrameMap {
  const names = ["free", "shadow", "vmm", "shared", ...sim.domains.map((d) => d.spec.name)];
  const natives = sim.domains.filter((d) => d.platform.vmm === null);
  const hostFrames = sim.host?.frames ?? null;
  let total = hostFrames?.frames ?? 0;
  for (const d of natives) total += d.platform.guestFrames;
  const owners = new Uint8Array(total);
  let at = 0;
  if (hostFrames !== null) {
    // Host domain ids are the order the VMM built them in; map them to simulation indices.
    const byVmmId = new Map<number, number>();
    sim.domains.forEach((d, i) => {
      if (d.platform.vmm !== null) byVmmId.set(d.platform.vmm.id, i);
    });
    for (let mfn = 0; mfn < hostFrames.frames; mfn++) {
      const kind = hostFrames.owner[mfn];
      owners[at++] =
        kind === OWNER_DOMAIN
          ? FRAME_DOMAIN + (byVmmId.get(hostFrames.domainOf(mfn)) ?? 0)
          : kind === OWNER_SHADOW
            ? FRAME_SHADOW
            : kind === OWNER_VMM
              ? FRAME_VMM
              : kind === OWNER_SHARED
                ? FRAME_SHARED
                : FRAME_FREE;
    }
  }
  for (const d of natives) {
    const code = FRAME_DOMAIN + sim.domains.indexOf(d);
    const frames = d.kernel.frames;
    for (let gfn = 0; gfn < d.platform.guestFrames; gfn++) {
      owners[at++] = frames.isFree(gfn) ? FRAME_FREE : code;
    }
  }
  const counts = names.map(() => 0);
  for (let i = 0; i < owners.length; i++) counts[owners[i]]++;
  return { owners, names, counts, used: total - counts[FRAME_FREE] };
}

/** One way of a TLB set. */
export interface TlbWay {
  way: number;
  valid: boolean;
  /** The address-space tag (VPID x PCID, or a VPID's global pages). */
  tag: number;
  /** Base gva of the page the entry translates (its size's alignment), hex; "-" when invalid. */
  gva: string;
  /** First host frame of the page (the frame a 4 KiB entry maps). */
  mfn: number;
  /** Access kinds the entry allows, e.g. "ur uw sr sw" (u/s: user/supervisor; r/w/x). */
  perms: string;
  /** LRU age: 0 is the most recently used way of the set. */
  age: number;
  /** Whether this is the entry for the step's gva in the current address space. */
  current: boolean;
}

/** The set of one TLB array that the gva indexes, with every way. */
export interface TlbSet {
  array: string;
  set: number;
  ways: TlbWay[];
}

const PERM_LETTERS = ["sr", "sw", "sx", "ur", "uw", "ux"];

/**
 * The 4 KiB L1 and L2 TLB sets that `gva` indexes, as they are now (after the step: a miss has
 * filled them), and the large-page sets when one of their ways holds the gva.
 */
export function tlbSets(d: DomainRuntime, gva: number): TlbSet[] {
  const cpu = d.platform.cpu;
  const tlb = cpu.tlb;
  const sets: TlbSet[] = [];
  for (const [name, level] of tlb.named()) {
    const large = name.includes("large");
    const sizes = large ? [1, 2] : [0];
    for (const sizeCode of sizes) {
      const pages = PAGES_PER_SIZE[sizeCode];
      const pn = Math.floor(gva / 4096 / pages);
      const set = pn & level.setMask;
      const ways: TlbWay[] = [];
      for (let w = 0; w < level.ways; w++) {
        const s = set * level.ways + w;
        const valid = level.isValid(s, tlb.tagGens);
        const e = level.decode(s);
        const perms = level.permsOf(s);
        ways.push({
          way: w,
          valid,
          tag: valid ? e.tag : -1,
          gva: valid ? `0x${(e.pageNumber * pages * 4096).toString(16)}` : "-",
          mfn: valid ? level.frameOf(s) : -1,
          perms: valid ? PERM_LETTERS.filter((_, k) => (perms >> k) & 1).join(" ") : "",
          age: 0,
          current:
            valid &&
            e.sizeCode === sizeCode &&
            e.pageNumber === pn &&
            (e.tag === cpu.tag || e.tag === cpu.globalTag),
        });
      }
      // Ages: rank of each valid way by its LRU stamp, most recent first.
      const order = ways
        .filter((x) => x.valid)
        .sort(
          (a, b) => level.stamps[set * level.ways + b.way] - level.stamps[set * level.ways + a.way],
        );
      order.forEach((x, rank) => {
        x.age = rank;
      });
      if (!large || ways.some((x) => x.current)) {
        sets.push({ array: large ? `${name} ${sizeCode === 1 ? "2M" : "1G"}` : name, set, ways });
      }
    }
  }
  return sets;
}
