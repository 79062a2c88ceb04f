/**
 * The bit layouts of hw/pte.ts and hw/ept.ts against the SDM, and the masks that must not
 * overlap (as KVM's spte.h checks with static_assert): the address field against the flags,
 * the software bits against the hardware's, reserved bits against address bits, the EPT's
 * permissions against its memory type. A mask moved onto another fails here, naming the pair.
 */

import { describe, expect, it } from "vitest";
import { EPT_MT_WB, EPT_PS, EPT_R, EPT_RWX, EPT_W, EPT_X } from "../src/hw/ept.js";
import { EPT_VIOLATION, NESTED_OK } from "../src/hw/nested.js";
import {
  MAXPHYADDR,
  PFEC_I,
  PFEC_P,
  PFEC_RSVD,
  PFEC_U,
  PFEC_W,
  PTE_1G_ADDR_LO_MASK,
  PTE_1G_RESERVED_LO,
  PTE_2M_ADDR_LO_MASK,
  PTE_2M_RESERVED_LO,
  PTE_A,
  PTE_ADDR_LO_MASK,
  PTE_AVAIL_MASK,
  PTE_D,
  PTE_G,
  PTE_HI_ADDR_MASK,
  PTE_HI_NX,
  PTE_HI_RESERVED,
  PTE_P,
  PTE_PCD,
  PTE_PS,
  PTE_PWT,
  PTE_RW,
  PTE_US,
  pteFrame,
  pteHi,
  pteLo,
} from "../src/hw/pte.js";
import { PF_EMULATED, PF_RETRY, XLATE_EMULATED, XLATE_FAULT } from "../src/hw/vcpu-interfaces.js";
import { WALK_NO_FRAME, WALK_OK } from "../src/hw/walker.js";

/** Bits `from`..`to` (0..31) of a 32-bit half, as an unsigned number. */
function bits(from: number, to: number): number {
  return 2 ** (to + 1) - 2 ** from;
}

/** The union of masks, unsigned. */
function union(...masks: number[]): number {
  return masks.reduce((all, m) => (all | m) >>> 0, 0);
}

/** Every pair of the named masks that shares a bit, as "a & b". */
function overlaps(masks: Record<string, number>): string[] {
  const names = Object.keys(masks);
  const pairs: string[] = [];
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      if ((masks[names[i]] & masks[names[j]]) !== 0) pairs.push(`${names[i]} & ${names[j]}`);
    }
  }
  return pairs;
}

const FLAGS = {
  P: PTE_P,
  RW: PTE_RW,
  US: PTE_US,
  PWT: PTE_PWT,
  PCD: PTE_PCD,
  A: PTE_A,
  D: PTE_D,
  PS: PTE_PS,
  G: PTE_G,
};

describe("x86-64 paging-structure entries (SDM Vol. 3A 4.5, tables 4-15 to 4-20)", () => {
  it("each flag of the low half is the SDM's bit", () => {
    expect(FLAGS).toEqual({
      P: 1 << 0,
      RW: 1 << 1,
      US: 1 << 2,
      PWT: 1 << 3,
      PCD: 1 << 4,
      A: 1 << 5,
      D: 1 << 6,
      PS: 1 << 7,
      G: 1 << 8,
    });
    expect(PTE_AVAIL_MASK).toBe(bits(9, 11));
    expect(PTE_ADDR_LO_MASK).toBe(bits(12, 31));
  });

  it("the flags, the software-available bits and the address share no bit", () => {
    expect(overlaps({ ...FLAGS, avail: PTE_AVAIL_MASK, addr: PTE_ADDR_LO_MASK })).toEqual([]);
  });

  it("and together they are the whole low half", () => {
    expect(union(...Object.values(FLAGS), PTE_AVAIL_MASK, PTE_ADDR_LO_MASK)).toBe(bits(0, 31));
  });

  // A large leaf (SDM Vol. 3A 4.5): bit 12 is PAT, then reserved bits, then the address.
  it.each([
    { leaf: "2 MiB", reserved: PTE_2M_RESERVED_LO, addr: PTE_2M_ADDR_LO_MASK, addrFrom: 21 },
    { leaf: "1 GiB", reserved: PTE_1G_RESERVED_LO, addr: PTE_1G_ADDR_LO_MASK, addrFrom: 30 },
  ])(
    "a $leaf leaf splits the address field: PAT, reserved 13 up, address from bit $addrFrom",
    ({ reserved, addr, addrFrom }) => {
      expect(reserved).toBe(bits(13, addrFrom - 1));
      expect(addr).toBe(bits(addrFrom, 31));
      const parts = { pat: 1 << 12, reserved, addr };
      expect(overlaps(parts)).toEqual([]);
      expect(union(...Object.values(parts))).toBe(PTE_ADDR_LO_MASK);
    },
  );

  it("the high half: address below MAXPHYADDR, reserved to bit 51, ignored 52..62, NX 63", () => {
    // Bit n of an entry is bit n - 32 of its high half.
    expect(PTE_HI_ADDR_MASK).toBe(bits(0, MAXPHYADDR - 1 - 32));
    expect(PTE_HI_RESERVED).toBe(bits(MAXPHYADDR - 32, 51 - 32));
    expect(PTE_HI_NX).toBe(2 ** (63 - 32));
    const parts = { addr: PTE_HI_ADDR_MASK, reserved: PTE_HI_RESERVED, nx: PTE_HI_NX };
    expect(overlaps(parts)).toEqual([]);
    expect(union(...Object.values(parts)) & bits(52 - 32, 62 - 32)).toBe(0);
  });

  it("every frame number below 2^(MAXPHYADDR-12) fits an int32 (the TLB keeps frames so)", () => {
    expect(2 ** (MAXPHYADDR - 12) - 1).toBeLessThanOrEqual(2 ** 31 - 1);
  });

  it("pteLo and pteHi put a frame in the address bits only, and pteFrame reads it back", () => {
    for (const frame of [0, 1, 2 ** 20 - 1, 2 ** 20, 2 ** (MAXPHYADDR - 12) - 1]) {
      const lo = pteLo(frame, 0);
      const hi = pteHi(frame, false);
      expect(lo & ~PTE_ADDR_LO_MASK).toBe(0);
      expect(hi & ~PTE_HI_ADDR_MASK).toBe(0);
      expect(pteFrame(lo, hi)).toBe(frame);
      expect(pteFrame(pteLo(frame, 0xfff), pteHi(frame, true))).toBe(frame);
    }
  });
});

describe("#PF error code (SDM Vol. 3A 4.7)", () => {
  it("each bit is the SDM's, and no two coincide", () => {
    const code = { P: PFEC_P, W: PFEC_W, U: PFEC_U, RSVD: PFEC_RSVD, I: PFEC_I };
    expect(code).toEqual({ P: 1 << 0, W: 1 << 1, U: 1 << 2, RSVD: 1 << 3, I: 1 << 4 });
    expect(overlaps(code)).toEqual([]);
  });
});

describe("EPT entries (SDM Vol. 3C 29.3.2)", () => {
  it("each bit is the SDM's: R, W, X in 0..2, the memory type in 3..5 (WB = 6), PS in 7", () => {
    expect({ R: EPT_R, W: EPT_W, X: EPT_X, PS: EPT_PS }).toEqual({
      R: 1 << 0,
      W: 1 << 1,
      X: 1 << 2,
      PS: 1 << 7,
    });
    expect(EPT_RWX).toBe(bits(0, 2));
    expect(EPT_MT_WB & ~bits(3, 5)).toBe(0);
    expect(EPT_MT_WB >>> 3).toBe(6);
  });

  it("the permissions, the memory type, ignore-PAT, PS and the address share no bit", () => {
    const parts = {
      R: EPT_R,
      W: EPT_W,
      X: EPT_X,
      memoryType: bits(3, 5),
      ignorePat: 1 << 6,
      PS: EPT_PS,
      addr: PTE_ADDR_LO_MASK,
    };
    expect(overlaps(parts)).toEqual([]);
    expect(overlaps({ permissions: EPT_RWX, writeBack: EPT_MT_WB, PS: EPT_PS })).toEqual([]);
  });
});

describe("result codes", () => {
  // A #PF error code, a frame and a gfn are >= 0: the codes below zero stand apart from them.
  it("a walk's codes below zero are distinct, and both walkers succeed with one code", () => {
    const codes = [WALK_OK, WALK_NO_FRAME, EPT_VIOLATION];
    expect(new Set(codes).size).toBe(codes.length);
    for (const c of codes) expect(c).toBeLessThan(0);
    expect(NESTED_OK).toBe(WALK_OK);
  });

  it("translate's and a VMM's answers below zero are distinct", () => {
    for (const pair of [
      [XLATE_FAULT, XLATE_EMULATED],
      [PF_RETRY, PF_EMULATED],
    ]) {
      expect(pair[0]).not.toBe(pair[1]);
      for (const c of pair) expect(c).toBeLessThan(0);
    }
  });
});
