/**
 * Shadow paging as a paging mode: its pool of host frames, set aside when the domain is built
 * (Xen's shadow_set_allocation), and the paging-structure caches of the shadow walk.
 */

import type { DomainSpec } from "../../config/scenario.js";
import type { Mfn } from "../../hw/addr.js";
import { pwcLevels } from "../../hw/pwc.js";
import { OWNER_SHADOW } from "../frames.js";
import type { PagingModeFactory } from "../paging.js";
import { defaultShadowPoolPages, ShadowPaging } from "./shadow.js";

/** The domain's pool: the scenario's size, or Xen's default for its memory. */
function poolPages(spec: DomainSpec): number {
  return spec.shadow.pool > 0 ? spec.shadow.pool / 4096 : defaultShadowPoolPages(spec.memory);
}

export const shadowMode: PagingModeFactory = {
  problem(spec, hardware) {
    return hardware.gigaPages
      ? `domain ${spec.name}: shadow paging does not support 1 GiB guest pages (hardware.giga_pages)`
      : "";
  },

  reservedFrames: poolPages,

  create(context) {
    const { spec, frames, p2m, cpu } = context;
    if (context.hardware.walkCaches?.pwc) cpu.pwc = pwcLevels();
    const pages = poolPages(spec);
    const pool: Mfn[] = [];
    for (let i = 0; i < pages; i++) {
      const mfn = frames.alloc(OWNER_SHADOW, p2m.domain);
      if (mfn < 0)
        throw new RangeError(`domain ${spec.name}: the host has no memory for its shadow pool`);
      pool.push(mfn);
    }
    const shadow = new ShadowPaging(context, pool, {
      poolPages: pages,
      unshadow: spec.shadow.unshadow,
      prefetch: spec.shadow.prefetch,
      writableSearch: spec.shadow.writableSearch,
      outOfSync: spec.shadow.outOfSync,
    });
    // The VMM's walks of this guest's tables may not set A/D bits in a shared frame.
    if (context.sharing) shadow.guestWalker.readOnly = context.sharing.isShared;
    return shadow;
  },
};
