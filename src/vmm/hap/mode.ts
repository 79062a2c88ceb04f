/**
 * Hardware-assisted paging as a paging mode: the vCPU walks in two dimensions through the
 * domain's EPT, with the walk caches the hardware has.
 */

import { NestedWalker } from "../../hw/nested.js";
import type { PagingModeFactory } from "../paging.js";
import { HapPaging } from "./hap.js";

/** A 2D walk with no cache: the default hardware (every cold walk makes 24 references). */
const NO_WALK_CACHES = { pwc: false, eptPwc: false, nestedTlb: false };

export const hapMode: PagingModeFactory = {
  problem: () => "",

  /** The EPT: one L1 page per 512 gfns and the pages above (and the splits of large pages). */
  reservedFrames: (spec) => 2 * Math.ceil(spec.memory / 4096 / 512) + 8,

  create(context) {
    const hap = new HapPaging(context, { largePages: context.spec.hap?.largePages ?? false });
    // The 2D walk has combined caches of its own (hw/nested.ts), not the vCPU's 1D ones.
    const cpu = context.cpu;
    cpu.nested = new NestedWalker(context.hardware.walkCaches ?? NO_WALK_CACHES);
    cpu.nested.cache = cpu.dcache;
    cpu.eptRoot = hap.ept.root;
    return hap;
  },
};
