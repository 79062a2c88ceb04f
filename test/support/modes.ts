/**
 * A domain's paging mode as its concrete class, for tests that look inside one mode (nothing in
 * src/ asks which mode a domain has): throws when the domain runs another mode.
 */

import { HapPaging } from "../../src/vmm/hap/hap.js";
import type { VmmDomain } from "../../src/vmm/host.js";
import { PvPaging } from "../../src/vmm/pv/pv.js";
import { ShadowPaging } from "../../src/vmm/shadow/shadow.js";

function modeOf<T>(vmm: VmmDomain | null, kind: new (...args: never[]) => T, name: string): T {
  const paging = vmm?.paging;
  if (!(paging instanceof kind)) throw new Error(`not a ${name} domain`);
  return paging;
}

export const shadowOf = (vmm: VmmDomain | null): ShadowPaging =>
  modeOf(vmm, ShadowPaging, "shadow-paged");
export const hapOf = (vmm: VmmDomain | null): HapPaging => modeOf(vmm, HapPaging, "HAP");
export const pvOf = (vmm: VmmDomain | null): PvPaging => modeOf(vmm, PvPaging, "PV");
