/**
 * From a guest entry to its shadow entry (Xen's _sh_propagate), the rules that make a shadow
 * a faithful cache of guest translations:
 *
 * - a shadow entry is present only if the guest entry is present, has A set (A/D emulation:
 *   the first access faults so the VMM can set A in the guest entry, as the hardware would
 *   have) and has no reserved bit set (the fault then reports RSVD from the guest walk);
 * - a leaf is writable only if the guest allows writing, the guest D bit is set (so the first
 *   write faults and sets D), the target is not a shadowed guest page table (write protection)
 *   unless it is out of sync and this is the demand write that faulted (oos.ts), and the P2M
 *   type allows writes;
 * - a non-leaf entry points at the shadow of the lower guest table if one exists, with the
 *   guest's RW/US/NX bits, so that permissions combine across levels as the guest's do;
 * - leaves map the P2M's frame for the guest frame; none when the gfn has no frame yet.
 */

import type { Gfn } from "../../hw/addr.js";
import {
  isAccessed,
  isDirty,
  isNoExec,
  isPresent,
  isWritable,
  PTE_A,
  PTE_D,
  PTE_G,
  PTE_P,
  PTE_RW,
  PTE_US,
  pteHi,
  pteLo,
} from "../../hw/pte.js";
import { entryReserved, type PagingControl } from "../../hw/walker.js";
import { type P2m, p2mWritable } from "../p2m.js";
import type { ShadowTables } from "./tables.js";

/**
 * Output of the propagate functions: an entry's two halves as int32 (bit 31 is the sign, so
 * compare halves with ^ and print them with >>> 0). Int32 so that no half is a boxed number on
 * its way into setEntry; in a typed array, not in number fields, because a field that first
 * holds small integers and later a boxed one changes its object's hidden class, and each new
 * domain's scratch would then differ in class from the first one's: the optimized fault
 * handler, compiled against the first, was thrown away when the next domain was built.
 */
export class Spte {
  private readonly halves = new Int32Array(2);

  get lo(): number {
    return this.halves[0];
  }

  set lo(value: number) {
    this.halves[0] = value;
  }

  get hi(): number {
    return this.halves[1];
  }

  set hi(value: number) {
    this.halves[1] = value;
  }
}

/**
 * The shadow leaf for 4 KiB guest page `gfn` under the guest leaf entry (glo, ghi) (an l1e, or
 * the l2e of a 2 MiB page when splintering into an FL1). Not present when the rules say so.
 * `demandWrite`: the entry is propagated for a write that faulted (Xen's ft_demand_write),
 * not for a read, a prefetch or a revalidation.
 */
export function propagateLeaf(
  out: Spte,
  glo: number,
  ghi: number,
  level: number,
  gfn: Gfn,
  ctx: { p2m: P2m; tables: ShadowTables; cpu: { ctl: PagingControl } },
  demandWrite: boolean,
): void {
  out.lo = 0;
  out.hi = 0;
  if (!isPresent(glo) || !isAccessed(glo)) return;
  if (entryReserved(glo, ghi, level, ctx.cpu.ctl)) return;
  const p2m = ctx.p2m;
  const tables = ctx.tables;
  const mfn = p2m.lookup(gfn);
  if (mfn < 0) return;
  let flags = PTE_P | PTE_A | (glo & (PTE_US | PTE_G | PTE_D));
  if (
    isWritable(glo) &&
    isDirty(glo) &&
    p2mWritable(p2m.type[gfn]) &&
    (!tables.isShadowedTable(gfn) || (demandWrite && tables.oos?.isOutOfSync(gfn) === true))
  ) {
    flags |= PTE_RW;
  }
  out.lo = pteLo(mfn, flags);
  out.hi = pteHi(mfn, isNoExec(ghi));
}

/**
 * The shadow of a non-leaf guest entry: it points at `childMfn` (the shadow of the lower guest
 * table, or the FL1 of a 2 MiB page), or is not present when childMfn < 0.
 */
export function propagateTable(
  out: Spte,
  glo: number,
  ghi: number,
  level: number,
  childMfn: number,
  ctl: PagingControl,
): void {
  out.lo = 0;
  out.hi = 0;
  if (!isPresent(glo) || !isAccessed(glo) || childMfn < 0) return;
  if (entryReserved(glo, ghi, level, ctl)) return;
  out.lo = pteLo(childMfn, PTE_P | PTE_A | (glo & (PTE_RW | PTE_US)));
  out.hi = pteHi(childMfn, isNoExec(ghi));
}
