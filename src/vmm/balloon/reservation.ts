/**
 * The balloon's back end: Xen's XENMEM memory_op hypercalls as the VMM serves them. The guest
 * hands over a batch of gfns (decrease_reservation): each loses its host frame, which goes back
 * to the host (scrubbed), and its P2M entry becomes invalid after every shadow and TLB entry of
 * the frame is removed. populate_physmap gives ballooned gfns back as populate-on-demand (a
 * frame at first touch, see P2m.addPage). Both stop at the first page they cannot do and return
 * how many they did, as Xen does.
 */

import type { Gfn } from "../../hw/addr.js";
import { HYPERCALL_ENOSYS } from "../../hw/vcpu-interfaces.js";
import {
  C_BALLOON_DEFLATED_PAGES,
  C_BALLOON_INFLATED_PAGES,
  C_VMEXITS,
  C_VMEXITS_HYPERCALL,
} from "../../metrics/counters.js";
import type { P2m } from "../p2m.js";

/** XENMEM_decrease_reservation: give gfns back to the host. */
export const MEMOP_DECREASE_RESERVATION = 1;
/** XENMEM_populate_physmap: ask for frames behind gfns. */
export const MEMOP_POPULATE_PHYSMAP = 6;

/** One memory_op hypercall: an exit, then the batch page by page. Returns the pages done. */
export function memoryOp(
  p2m: P2m,
  counters: Float64Array,
  op: number,
  gfns: Int32Array,
  count: number,
): number {
  counters[C_VMEXITS]++;
  counters[C_VMEXITS_HYPERCALL]++;
  const events = p2m.trace.events;
  const call = events ? { kind: "hypercall" as const, note: "memory_op", count, code: 0 } : null;
  if (call !== null) events?.push(call);
  if (op !== MEMOP_DECREASE_RESERVATION && op !== MEMOP_POPULATE_PHYSMAP) return HYPERCALL_ENOSYS;
  const n = Math.min(count, gfns.length);
  let done = 0;
  while (done < n) {
    const gfn: Gfn = gfns[done];
    const ok = op === MEMOP_DECREASE_RESERVATION ? p2m.removePage(gfn) : p2m.addPage(gfn);
    if (!ok) break;
    done++;
  }
  counters[
    op === MEMOP_DECREASE_RESERVATION ? C_BALLOON_INFLATED_PAGES : C_BALLOON_DEFLATED_PAGES
  ] += done;
  if (call !== null) call.code = done;
  events?.push({
    kind: "balloon",
    note: op === MEMOP_DECREASE_RESERVATION ? "decrease_reservation" : "populate_physmap",
    count: done,
    index: n,
    gfn: n > 0 ? gfns[0] : -1,
  });
  return done;
}
