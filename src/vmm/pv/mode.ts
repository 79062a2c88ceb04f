/**
 * Xen PV direct paging as a paging mode: a PV kernel (its page-table operations are
 * hypercalls), a domain built whole, and one frame table of page types per host, shared by
 * its PV domains as Xen's frame_table is.
 */

import { pwcLevels } from "../../hw/pwc.js";
import type { HostFrames } from "../frames.js";
import type { PagingModeFactory } from "../paging.js";
import { PvFrameTypes } from "./mm.js";
import { PvPaging } from "./pv.js";

const frameTables = new WeakMap<HostFrames, PvFrameTypes>();

/** The host's frame table, made with its first PV domain. */
function frameTableOf(frames: HostFrames): PvFrameTypes {
  let types = frameTables.get(frames);
  if (types === undefined) {
    types = new PvFrameTypes(frames.frames);
    frameTables.set(frames, types);
  }
  return types;
}

export const pvMode: PagingModeFactory = {
  problem(spec, hardware) {
    return hardware.gigaPages
      ? `domain ${spec.name}: a PV guest has no large pages (hardware.giga_pages)`
      : "";
  },

  /** A PV domain needs no more than its RAM, but all of it at once (it is built whole). */
  reservedFrames: () => 0,

  create(context) {
    const { spec, cpu, p2m } = context;
    if (context.hardware.walkCaches?.pwc) cpu.pwc = pwcLevels();
    const pv = new PvPaging(context, frameTableOf(context.frames));
    cpu.pvMmu = pv;
    if (!pv.populate()) {
      p2m.destroy();
      throw new RangeError(`domain ${spec.name}: the host has no memory for the PV domain`);
    }
    return pv;
  },
};
