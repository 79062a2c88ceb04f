/**
 * What a guest's run looks like to the guest itself, for differential tests: the values read,
 * the guest kernel's counters, the final page tables (accessed and dirty bits included) and the
 * frames in use. Every paging mode must give the same for the same operations.
 */

import type { Process } from "../../src/guest/process.js";
import { pteFrame } from "../../src/hw/pte.js";
import type { TestGuest } from "./guest.js";
import { type Op, runOps } from "./ops.js";

const GUEST_COUNTERS = [15, 16, 17, 18, 19, 20, 22, 23, 24, 25, 26, 27]; // guest_* .. mprotects

/**
 * An entry line "path: hi lo" without its frame number: with the balloon holding pages the
 * guest's allocator hands out other gfns, which no program can see.
 */
export function withoutFrame(line: string): string {
  const [path, hi, lo] = line.split(/:? /);
  const flagsHi = (Number.parseInt(hi, 16) & 0xfff00000) >>> 0;
  const flagsLo = Number.parseInt(lo, 16) & 0xfff;
  return `${path}: ${flagsHi.toString(16)} ${flagsLo.toString(16)}`;
}

/**
 * Tables as "path: hi lo" lines with each frame renamed by its first appearance, for a mode
 * whose guest allocates other gfns (PV: its boot tables take more frames): which entries share
 * a frame must still agree.
 */
export function renamedFrames(tables: string[][]): string[][] {
  const names = new Map<number, number>();
  return tables.map((t) =>
    t.map((line) => {
      const [, hi, lo] = line.split(/:? /);
      const frame = pteFrame(Number.parseInt(lo, 16), Number.parseInt(hi, 16));
      let name = names.get(frame);
      if (name === undefined) {
        name = names.size;
        names.set(frame, name);
      }
      return `${withoutFrame(line)} frame#${name}`;
    }),
  );
}

export function observe(g: TestGuest, ops: Op[], huge: boolean, frames = true) {
  const seen = runOps(g, ops, huge, () => g.check());
  const tables = g.kernel.processes
    .filter((p: Process) => p.alive)
    .map((p) => (frames ? g.tables(p) : g.tables(p).map(withoutFrame)));
  const counters = GUEST_COUNTERS.map((i) => g.counters[i]);
  // Frames the balloon holds are the host's, not the guest's processes'.
  const framesInUse = g.kernel.framesInUse() - (g.kernel.balloon?.count ?? 0);
  return { seen, tables, counters, framesInUse };
}
