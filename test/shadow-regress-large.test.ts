import { expect, test } from "vitest";
import { userAccess } from "../src/guest/fault.js";
import { USER_HEAP_BASE } from "../src/guest/layout.js";
import { KIND_USER_READ, KIND_USER_WRITE } from "../src/hw/access.js";
import { PTE_D } from "../src/hw/pte.js";
import { bootGuest, type TestMode } from "./support/guest.js";

/** Kept from the review's reproductions: evaluates what it was shown, prints nothing. */
const note = (..._values: unknown[]): void => {};

const HUGE = 2 ** 21;
function remapHuge(mode: TestMode) {
  const g = bootGuest(16, { mode });
  const p = g.kernel.spawn("p", { code: 4096, heap: 2 * HUGE, hugeHeap: true })!;
  g.kernel.switchTo(p);
  userAccess(g.kernel, p, USER_HEAP_BASE + 4096, KIND_USER_WRITE, 111); // huge page A, 4K page 1
  userAccess(g.kernel, p, USER_HEAP_BASE + HUGE + 4096, KIND_USER_WRITE, 222); // huge page B
  userAccess(g.kernel, p, USER_HEAP_BASE + 4096, KIND_USER_READ, 0); // A page 1 in the TLB
  const l2 = g.kernel.pt.tableFor(p.l4Gfn, USER_HEAP_BASE, 2, false);
  g.kernel.pt.read(l2, 129);
  const [lo, hi] = [g.kernel.pt.lo, g.kernel.pt.hi];
  g.kernel.pt.set(l2, 128, lo, hi, true); // l2e[0] now maps huge page B as well
  g.cpu.invlpg(USER_HEAP_BASE); // one INVLPG invalidates the whole 2 MiB translation (SDM 4.10.4.1)
  note(
    mode,
    "l2",
    l2,
    "l2e1",
    lo.toString(16),
    hi.toString(16),
    "access ->",
    g.cpu.access(USER_HEAP_BASE + 4096, KIND_USER_READ, 0),
    "fault",
    g.cpu.faultCode,
  );
  return g.cpu.readValue;
}

test("INVLPG of a 2 MiB page: native vs shadow", () => {
  const n = remapHuge("native");
  const s = remapHuge("shadow");
  note("native reads", n, "shadow reads", s);
  expect(s).toBe(n);
});

function aliasD(mode: TestMode) {
  const g = bootGuest(16, { mode });
  const p = g.kernel.spawn("p", { code: 4096, heap: 2 * HUGE, hugeHeap: true })!;
  g.kernel.switchTo(p);
  userAccess(g.kernel, p, USER_HEAP_BASE, KIND_USER_WRITE, 1); // huge page A, dirty
  const l2 = g.kernel.pt.tableFor(p.l4Gfn, USER_HEAP_BASE, 2, false);
  g.kernel.pt.read(l2, 128);
  const [lo, hi] = [g.kernel.pt.lo, g.kernel.pt.hi];
  g.kernel.pt.set(l2, 133, (lo & ~PTE_D) >>> 0, hi, false); // alias at l2e[5], clean
  note(
    mode,
    "alias write ->",
    g.cpu.access(USER_HEAP_BASE + 5 * HUGE, KIND_USER_WRITE, 2),
    g.cpu.faultCode,
    lo.toString(16),
  ); // write through the alias
  g.kernel.pt.read(l2, 133);
  return (g.kernel.pt.lo & PTE_D) !== 0;
}

// FL1 shadows are keyed by their first gfn and the guest 2 MiB entry's D bit, so a clean alias
// of dirty frames gets its own, read-only leaves: the first write through it sets its D bit.
test("2 MiB alias: D bit of the alias's l2e, native vs shadow", () => {
  const n = aliasD("native");
  const s = aliasD("shadow");
  note("alias D native", n, "shadow", s);
  expect(s).toBe(n);
});
