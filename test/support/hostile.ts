/** What a hostile guest does, for isolation tests: raw values into its page tables, wild accesses. */

import fc from "fast-check";
import { PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US, pteLo } from "../../src/hw/pte.js";

/** A raw 64-bit store into the table of `level` on a fixed path: garbage or a plausible leaf. */
export const evilWrite = fc.record({
  level: fc.integer({ min: 1, max: 4 }),
  index: fc.nat(511),
  lo: fc.oneof(
    fc.nat(0xffffffff),
    fc.nat(0xffff).map((f) => pteLo(f, PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D)),
  ),
  hi: fc.oneof(fc.constant(0), fc.nat(0xffffffff)),
});
/** An access of any kind anywhere in the first 4 GiB. */
export const evilAccess = fc.record({ page: fc.nat(2 ** 20), kind: fc.nat(5) });
