/**
 * Regression found in review: a guest that turns paging on without ever writing CR3 must walk a
 * shadow of its own CR3, never whatever root frame the vCPU held before (mfn 0, where another
 * domain's shadow root lives).
 */

import { expect, test } from "vitest";
import { userAccess } from "../src/guest/fault.js";
import { Kernel } from "../src/guest/kernel.js";
import { directMap, USER_HEAP_BASE } from "../src/guest/layout.js";
import { NativePagingOps } from "../src/guest/paging-ops.js";
import { KIND_SUP_READ, KIND_USER_READ, KIND_USER_WRITE } from "../src/hw/access.js";
import { XLATE_FAULT } from "../src/hw/vcpu-interfaces.js";
import {
  C_SHADOW_FAULT,
  C_SHADOW_FAULT_BAIL_REAL_FAULT,
  C_VMEXITS,
  newCounters,
} from "../src/metrics/counters.js";
import { OWNER_SHADOW } from "../src/vmm/frames.js";
import { Host } from "../src/vmm/host.js";
import { checkIsolation } from "../src/vmm/shadow/check.js";
import { SH_L4 } from "../src/vmm/shadow/page.js";
import { shadowSpec, TEST_HARDWARE } from "./support/domains.js";
import { shadowOf } from "./support/modes.js";

const SECRET = 0x5ec2e7;
/** Guest frames of the evil domain probed through its direct map (its whole 16 MiB). */
const PROBED = 4096;

// Guards ShadowPaging.enablePaging: turning paging on loads the domain's own shadow root.
test("turning paging on without a CR3 write walks the domain's own shadow root", () => {
  const host = new Host((64 * 2 ** 20) / 4096);
  host.mem.exactData = true;
  const vc = newCounters();
  const victim = host.createDomain(shadowSpec("victim"), TEST_HARDWARE, vc);
  const vk = new Kernel(victim.cpu, new NativePagingOps(victim.cpu), 4096, vc, {
    gigaPages: false,
    pcid: false,
  });
  vk.boot();
  const p = vk.spawn("v", { code: 4096, heap: 64 * 4096, hugeHeap: false })!;
  vk.switchTo(p);
  for (let i = 0; i < 32; i++) {
    const frame = userAccess(vk, p, USER_HEAP_BASE + i * 4096, KIND_USER_WRITE, SECRET + i);
    expect(frame).toBeGreaterThanOrEqual(0);
  }
  // Host frames are handed out lowest first: mfn 0 is the victim's first shadow pool page, the
  // shadow of its boot page table (what a stale rootMfn of 0 would walk).
  expect(host.frames.owner[0]).toBe(OWNER_SHADOW);
  expect(host.frames.domainOf(0)).toBe(victim.id);
  expect(shadowOf(victim).tables.byMfn.get(0)?.type).toBe(SH_L4);
  expect(shadowOf(victim).tables.byMfn.get(0)?.gfn).toBe(vk.initL4);

  const ec = newCounters();
  const evil = host.createDomain(shadowSpec("evil"), TEST_HARDWARE, ec);
  const sh = shadowOf(evil);
  expect(evil.cpu.guestCr3).toBe(0);
  evil.cpu.enablePaging(); // no CR3 write before: the guest's CR3 is gpa 0
  // The CR0 exit loaded a shadow of the evil guest's gfn 0 (a fresh, zeroed page) as its root.
  expect(ec[C_VMEXITS]).toBe(1);
  expect(sh.root).not.toBeNull();
  expect(sh.root!.gfn).toBe(0);
  expect(sh.root!.type).toBe(SH_L4);
  expect(evil.cpu.rootMfn).toBe(sh.root!.mfn);
  expect(host.frames.owner[evil.cpu.rootMfn]).toBe(OWNER_SHADOW);
  expect(host.frames.domainOf(evil.cpu.rootMfn)).toBe(evil.id);
  expect(checkIsolation(sh, evil.cpu, host.frames, evil.id)).toBeNull();

  // Its tables map nothing, so every kernel read through its direct map exits and the VMM
  // injects a not-present #PF (error code 0: supervisor read); no access reaches any frame.
  const reached: string[] = [];
  for (let g = 0; g < PROBED; g++) {
    const f = evil.cpu.access(directMap(g), KIND_SUP_READ, 0);
    if (f !== XLATE_FAULT || evil.cpu.faultCode !== 0) {
      const owner = `owner kind ${host.frames.owner[f]}, domain ${host.frames.domainOf(f)}`;
      const read = `read 0x${evil.cpu.readValue.toString(16)}, #PF ${evil.cpu.faultCode}`;
      reached.push(`gfn ${g} -> mfn ${f} (${owner}, ${read})`);
    }
  }
  expect(reached).toEqual([]);
  expect(ec[C_SHADOW_FAULT]).toBe(PROBED);
  expect(ec[C_SHADOW_FAULT_BAIL_REAL_FAULT]).toBe(PROBED);
  expect(ec[C_VMEXITS]).toBe(1 + PROBED);
  expect(checkIsolation(sh, evil.cpu, host.frames, evil.id)).toBeNull();

  // The secrets were there to be leaked: the victim still reads them.
  for (let i = 0; i < 32; i++) {
    expect(userAccess(vk, p, USER_HEAP_BASE + i * 4096, KIND_USER_READ, 0)).toBeGreaterThan(0);
    expect(victim.cpu.readValue).toBe(SECRET + i);
  }
});
