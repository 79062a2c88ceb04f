/** The validated file form of a scenario to the typed Scenario, with every default filled in. */

import { CPU_PROFILES } from "../../config/cpu.js";
import { SCENARIO_DEFAULTS, WORK_DEFAULTS } from "../../config/defaults.js";
import type { HardwareSpec, Scenario, SliceRule } from "../../config/scenario.js";
import type { SliceInput } from "./fields.js";
import type { ScenarioFile } from "./schema.js";

/** "dir/db-and-build.yaml" -> "db-and-build". */
function baseName(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() ?? fileName;
  return base.replace(/\.(ya?ml|json)$/i, "") || "scenario";
}

function toPattern(p: NonNullable<ScenarioFile["domains"][0]["processes"][0]["pattern"]>) {
  return p.type === "hotcold"
    ? ({ type: "hotcold", hotFraction: p.hot_fraction, hotProbability: p.hot_probability } as const)
    : { ...p };
}

/** The validated file form to the typed Scenario (camelCase, every default filled in). */
export function toScenario(f: ScenarioFile, fileName: string): Scenario {
  const d = SCENARIO_DEFAULTS;
  return {
    name: f.name ?? baseName(fileName),
    description: f.description,
    seed: f.seed,
    hardware: toHardware(f.hardware),
    host: {
      memory: f.host.memory ?? 0,
      swap: {
        enabled: f.host.swap.enabled,
        lowWater: f.host.swap.low_water ?? 0,
        highWater: f.host.swap.high_water ?? 0,
        grace: f.host.swap.grace,
      },
      balloonPolicy:
        f.host.balloon_policy.type === "fixed"
          ? { type: "fixed" }
          : {
              type: "auto",
              interval: f.host.balloon_policy.interval,
              pressureThreshold: f.host.balloon_policy.pressure_threshold,
              pressureCritical: f.host.balloon_policy.pressure_critical,
              minGuestFree: f.host.balloon_policy.min_guest_free,
              maxChange: f.host.balloon_policy.max_change,
              minChange: f.host.balloon_policy.min_change,
            },
      sharing: {
        enabled: f.host.sharing.enabled,
        algorithm: f.host.sharing.algorithm,
        pagesToScan: f.host.sharing.pages_to_scan,
        sleep: f.host.sharing.sleep,
        useZeroPages: f.host.sharing.use_zero_pages,
      },
      // Only when off, so that a scenario that leaves it alone resolves as it always did.
      ...(!f.host.contents && { contents: false }),
    },
    costs: Object.fromEntries(Object.entries(f.costs).filter(([, v]) => v !== undefined)),
    run: {
      accesses: f.run.accesses,
      sampleEvery: f.run.sample_every,
      warmup: f.run.warmup,
      mayEndEarly: f.run.may_end_early,
    },
    domains: f.domains.map((dom) => ({
      name: dom.name,
      memory: dom.memory,
      mode: dom.mode,
      osImage: dom.os_image,
      shadow: {
        pool: dom.shadow.pool ?? 0,
        unshadow: dom.shadow.unshadow,
        prefetch: dom.shadow.prefetch,
        writableSearch: dom.shadow.writable_search,
        outOfSync: dom.shadow.out_of_sync,
      },
      hap: { largePages: dom.hap.large_pages },
      balloon: {
        driver: dom.balloon.driver,
        target: dom.balloon.target ?? dom.memory,
        floor: dom.balloon.floor ?? 0,
        touch: dom.balloon.on_touch,
        schedule: dom.balloon.schedule.map((step) => ({ at: step.at, target: step.target })),
        retryDelay: dom.balloon.retry_delay,
        maxRetryDelay: dom.balloon.max_retry_delay,
      },
      quantum: toSlice(dom.quantum, CPU_PROFILES[f.hardware.cpu].hz.value),
      processes: dom.processes.map((p) => ({
        name: p.name,
        kind: p.kind,
        instances: p.instances,
        // A trace process's working set is what its trace touches (set when the trace is read).
        workingSet: p.working_set ?? 0,
        code: p.kind === "trace" ? 0 : (p.code ?? d.code),
        pattern: toPattern(p.pattern ?? { type: "uniform" }),
        writes: p.writes ?? d.writes,
        fetches: p.fetches ?? d.fetches,
        childAccesses: p.child_accesses ?? d.childAccesses,
        jobs: p.jobs ?? d.jobs,
        churnAccesses: p.churn_accesses ?? d.churnAccesses,
        lifetime: p.lifetime ?? 0,
        image: p.image ?? p.name,
        imageData: p.image_data ?? 0,
        hugePages: p.huge_pages ?? d.hugePages,
        instructionsPerAccess:
          p.instructions_per_access ?? WORK_DEFAULTS[p.kind].instructionsPerAccess,
        cpi: p.cpi ?? WORK_DEFAULTS[p.kind].cpi,
        trace: p.trace === undefined ? null : { file: p.trace, loop: p.loop ?? false, data: null },
      })),
    })),
  };
}

/** The hardware section: what it leaves out of the TLBs and walk caches is the CPU profile's. */
function toHardware(h: ScenarioFile["hardware"]): HardwareSpec {
  const profile = CPU_PROFILES[h.cpu];
  const level = (key: "l1" | "l2") => ({
    entries: h.tlb[key].entries ?? profile.tlb[key].entries,
    ways: h.tlb[key].ways ?? profile.tlb[key].ways,
  });
  const caches = profile.walkCaches;
  return {
    cpu: h.cpu,
    tlb: { l1: level("l1"), l2: level("l2") },
    pcid: h.pcid,
    gigaPages: h.giga_pages,
    walkCaches: {
      pwc: h.walk_caches.pwc ?? caches.pwc,
      eptPwc: h.walk_caches.ept_pwc ?? caches.eptPwc,
      nestedTlb: h.walk_caches.nested_tlb ?? caches.nestedTlb,
    },
    dataCache: h.data_cache,
  };
}

/** The slice rule, a duration in cycles at the profile's clock (at least one). */
function toSlice(q: SliceInput, hz: number): SliceRule {
  if (q.type === "cfs" || q.type === "eevdf") return { type: q.type };
  const cycles = q.type === "cycles" ? q.value : Math.max(1, Math.round(q.value * hz));
  return { type: "fixed", cycles };
}
