/**
 * What running every domain in one mode (Simulation's `mode` option, the CLI's --mode and each
 * column of compare) drops from a scenario: the settings that mode cannot apply. Natively there
 * is no VMM, so no balloon, no host (each domain is a machine of its own), no swapping and no
 * sharing; the host never swaps or shares a PV domain (Xen's paging and sharing need HAP).
 * Shadow paging and HAP apply everything.
 */

import { formatSizeApprox } from "../config/sizes.js";
import type { DomainSpec, PagingMode, Scenario } from "./types.js";

/** The scenario's settings that `mode` drops, in words; empty when it drops none. */
export function modeDrops(scenario: Scenario, mode: PagingMode | undefined): string[] {
  if (mode === undefined) return [];
  // Domains already in the mode lose nothing they had.
  const moved = scenario.domains.filter((d) => d.mode !== mode && d.mode !== "native");
  if (moved.length === 0) return [];
  const host = scenario.host;
  const dropped: string[] = [];
  const of = (ds: DomainSpec[]) => `domain${ds.length === 1 ? "" : "s"} ${names(ds)}`;
  if (mode === "native") {
    const ballooning = moved.filter(balloons);
    if (ballooning.length > 0) {
      dropped.push(`ballooning and memory targets (the balloon settings of ${of(ballooning)})`);
    }
    if (host.balloonPolicy.type === "auto") {
      dropped.push("the automatic balloon policy (host.balloon_policy)");
    }
    if (host.memory > 0) {
      dropped.push(
        `the host's memory (host.memory ${formatSizeApprox(host.memory)}): each native domain ` +
          "is a machine of its own",
      );
    }
  }
  if (mode === "native" || mode === "pv") {
    const why = mode === "pv" ? ` of ${of(moved)}: the host never swaps a PV domain` : "";
    if (host.swap.enabled) dropped.push(`host swapping (host.swap)${why}`);
    const shares = mode === "pv" ? ` of ${of(moved)}: the host never shares a PV domain` : "";
    if (host.sharing.enabled) dropped.push(`page sharing (host.sharing)${shares}`);
  }
  return dropped;
}

/** Whether the domain has a memory target below its memory (met by its balloon, or by swapping). */
function balloons(d: DomainSpec): boolean {
  return d.balloon.target < d.memory || d.balloon.schedule.length > 0;
}

function names(ds: DomainSpec[]): string {
  return ds.map((d) => d.name).join(", ");
}
