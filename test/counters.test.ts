import { expect, test } from "vitest";
import * as Counters from "../src/metrics/counters.js";

test("every counter constant indexes its own name", () => {
  const constants = Object.entries(Counters).filter(([k]) => k.startsWith("C_"));
  expect(constants.length).toBe(Counters.COUNTER_COUNT);
  for (const [name, index] of constants) {
    expect(Counters.COUNTER_NAMES[index as number].toUpperCase(), name).toBe(name.slice(2));
  }
});
