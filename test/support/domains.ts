/** The hardware and domain settings the VMM tests build domains with. */

import type {
  DomainSpec,
  HardwareSpec,
  PagingMode,
  ShadowSpec,
  WalkCacheSpec,
} from "../../src/api/types.js";
import { defaultBalloon } from "../../src/config/defaults.js";

/** Default TLB geometry, no PCIDs, no 1 GiB pages. */
/**
 * Every walk cache on (the paging-structure caches, the EPT's and the nested TLB): the fuzz
 * tests run with them, so that the checks of what the caches hold are exercised.
 */
export const ALL_WALK_CACHES: WalkCacheSpec = { pwc: true, eptPwc: true, nestedTlb: true };

export const TEST_HARDWARE: HardwareSpec = {
  tlb: { l1: { entries: 64, ways: 4 }, l2: { entries: 1536, ways: 12 } },
  pcid: false,
  gigaPages: false,
};

/** A shadow-paged domain of `memory` bytes (16 MiB by default) with default shadow settings. */
export function shadowSpec(
  name: string,
  shadow: Partial<ShadowSpec> = {},
  memory = 16 * 2 ** 20,
): DomainSpec {
  return {
    name,
    memory,
    mode: "shadow",
    quantum: { type: "fixed", cycles: 1e18 },
    processes: [],
    shadow: {
      pool: 0,
      unshadow: "early",
      prefetch: 0,
      writableSearch: "rmap",
      outOfSync: true,
      ...shadow,
    },
    balloon: defaultBalloon(memory),
    osImage: "linux",
  };
}

/** A domain of `mode` (a VMM mode: shadow or pv) with default settings. */
export function vmmSpec(
  name: string,
  mode: PagingMode,
  shadow: Partial<ShadowSpec> = {},
  memory = 16 * 2 ** 20,
): DomainSpec {
  return { ...shadowSpec(name, shadow, memory), mode };
}
