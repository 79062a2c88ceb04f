/**
 * One domain's invariants, checked from outside (nothing changes: no counter, A/D bit or TLB
 * entry): what `--check` runs during a run and what every test guest checks. Here because it
 * looks at both sides of a domain, the guest kernel's and the VMM's, which never import each
 * other.
 */

import { checkGuest } from "../guest/check.js";
import type { Kernel } from "../guest/kernel.js";
import { checkPwc, checkTlb } from "../hw/check.js";
import { checkP2m } from "../vmm/balloon/check.js";
import { checkHostFrames } from "../vmm/frames-check.js";
import type { Host } from "../vmm/host.js";
import { checkSharing } from "../vmm/sharing/check.js";
import type { Platform } from "./platform.js";

/**
 * The first violation found, or null. Quick (`full` false): the translations the hardware can
 * use now (natively every TLB entry against the tables it came from; under a VMM its paging
 * mode's own check). Full: also the mode's structures, the host's frame accounting, the P2M,
 * page sharing's bookkeeping and the guest kernel's accounting. `exhaustive` false (`--check`)
 * lets the mode read only what changed since its last check and a rotating sample of the rest
 * (see VmmPaging.check); true (`--check=full`, the end of a run) reads everything.
 */
export function checkDomain(
  platform: Platform,
  kernel: Kernel,
  host: Host | null,
  full: boolean,
  exhaustive = true,
): string | null {
  const vmm = platform.vmm;
  let err =
    vmm === null
      ? (checkTlb(platform.cpu, platform.mem.frames) ?? checkNativePwc(platform))
      : vmm.paging.check(full, exhaustive);
  if (err === null && full && vmm !== null && host !== null) {
    const balloon = kernel.balloon?.inBalloon ?? null;
    err =
      checkHostFrames(host.frames) ??
      checkP2m(vmm.p2m, host.frames, vmm.id, balloon) ??
      checkSharing(host);
  }
  if (err === null && full) err = checkGuest(kernel, platform.peek);
  return err;
}

/**
 * Natively every paging-structure cache entry names a frame of memory (there is no one else's
 * to reach), and those of the running address space the table a walk reads.
 */
function checkNativePwc(platform: Platform): string | null {
  const cpu = platform.cpu;
  const frames = platform.mem.frames;
  return checkPwc(cpu, cpu.pwc, cpu.rootMfn, (mfn) =>
    mfn < frames ? null : `beyond memory's ${frames} frames`,
  );
}
