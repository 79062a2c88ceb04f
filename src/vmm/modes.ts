/**
 * The paging modes a VMM domain can run in, by name: the one place that knows them all. A new
 * mode is a folder implementing VmmPaging and a factory, and a line here (see
 * docs/ARCHITECTURE.md, "Adding a paging mode").
 */

import type { PagingMode, VirtualMode } from "../config/scenario.js";
import { hapMode } from "./hap/mode.js";
import type { PagingModeFactory } from "./paging.js";
import { pvMode } from "./pv/mode.js";
import { shadowMode } from "./shadow/mode.js";

const FACTORIES: Record<VirtualMode, PagingModeFactory> = {
  shadow: shadowMode,
  hap: hapMode,
  pv: pvMode,
};

/** Whether a mode runs the domain under the VMM (every mode but native). */
export function isVirtualMode(mode: PagingMode): mode is VirtualMode {
  return mode !== "native";
}

/** The factory of a virtualized mode; RangeError for native, which has no VMM. */
export function pagingModeFactory(mode: PagingMode, domain: string): PagingModeFactory {
  if (!isVirtualMode(mode)) {
    throw new RangeError(`domain ${domain}: mode "${mode}" is not a virtualized mode`);
  }
  return FACTORIES[mode];
}
