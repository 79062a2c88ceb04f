/**
 * A typed Scenario back to its file form (snake_case, sizes in bytes), with every setting written
 * out: what a report holds so that the run can be made again (`memvisor run --from`). Parsing the
 * result gives the same Scenario (to-scenario.ts is the way there; a test holds the two together).
 * Left out are only the settings whose default is computed from the others and that the file
 * form has no way to write as a value of 0: host.memory (enough for every domain), the swap's
 * water marks, a shadow pool of Xen's size and a balloon floor of 0.
 */

import type { z } from "zod";
import type {
  AccessPattern,
  BalloonPolicySpec,
  DomainSpec,
  ProcessSpec,
  Scenario,
  SliceRule,
} from "../../config/scenario.js";
import type { scenarioFileSchema } from "./schema.js";

/** A scenario as a file holds it, before validation (what `parseScenario` reads as JSON). */
export type ScenarioFileInput = z.input<typeof scenarioFileSchema>;
type DomainInput = ScenarioFileInput["domains"][number];
type ProcessInput = DomainInput["processes"][number];

/** The scenario in its file form, every setting written out (see the module comment). */
export function scenarioToFile(s: Scenario): ScenarioFileInput {
  const h = s.hardware;
  return {
    name: s.name,
    description: s.description,
    seed: s.seed,
    hardware: {
      cpu: h.cpu,
      tlb: { l1: { ...h.tlb.l1 }, l2: { ...h.tlb.l2 } },
      pcid: h.pcid,
      giga_pages: h.gigaPages,
      ...(h.walkCaches && {
        walk_caches: {
          pwc: h.walkCaches.pwc,
          ept_pwc: h.walkCaches.eptPwc,
          nested_tlb: h.walkCaches.nestedTlb,
        },
      }),
      ...(h.dataCache !== undefined && { data_cache: h.dataCache }),
    },
    host: {
      ...(s.host.memory > 0 && { memory: s.host.memory }),
      swap: {
        enabled: s.host.swap.enabled,
        ...(s.host.swap.lowWater > 0 && { low_water: s.host.swap.lowWater }),
        ...(s.host.swap.highWater > 0 && { high_water: s.host.swap.highWater }),
        grace: s.host.swap.grace,
      },
      balloon_policy: policyToFile(s.host.balloonPolicy),
      sharing: {
        enabled: s.host.sharing.enabled,
        algorithm: s.host.sharing.algorithm,
        pages_to_scan: s.host.sharing.pagesToScan,
        sleep: s.host.sharing.sleep,
        use_zero_pages: s.host.sharing.useZeroPages,
      },
      ...(s.host.contents === false && { contents: false }),
    },
    costs: { ...s.costs },
    run: {
      accesses: s.run.accesses,
      sample_every: s.run.sampleEvery,
      warmup: s.run.warmup,
      may_end_early: s.run.mayEndEarly ?? false,
    },
    domains: s.domains.map(domainToFile),
  };
}

function policyToFile(
  p: BalloonPolicySpec,
): NonNullable<ScenarioFileInput["host"]>["balloon_policy"] {
  if (p.type === "fixed") return { type: "fixed" };
  return {
    type: "auto",
    interval: p.interval,
    pressure_threshold: p.pressureThreshold,
    pressure_critical: p.pressureCritical,
    min_guest_free: p.minGuestFree,
    max_change: p.maxChange,
    min_change: p.minChange,
  };
}

function domainToFile(d: DomainSpec): DomainInput {
  return {
    name: d.name,
    memory: d.memory,
    mode: d.mode,
    os_image: d.osImage,
    shadow: {
      ...(d.shadow.pool > 0 && { pool: d.shadow.pool }),
      unshadow: d.shadow.unshadow,
      prefetch: d.shadow.prefetch,
      writable_search: d.shadow.writableSearch,
      out_of_sync: d.shadow.outOfSync,
    },
    hap: { large_pages: d.hap?.largePages ?? false },
    balloon: {
      driver: d.balloon.driver,
      target: d.balloon.target,
      ...(d.balloon.floor > 0 && { floor: d.balloon.floor }),
      on_touch: d.balloon.touch,
      retry_delay: d.balloon.retryDelay,
      max_retry_delay: d.balloon.maxRetryDelay,
      schedule: d.balloon.schedule.map((step) => ({ at: step.at, target: step.target })),
    },
    quantum: sliceToFile(d.quantum),
    processes: d.processes.map(processToFile),
  };
}

/** A fixed slice is written in cycles: the duration it was written as is already converted. */
function sliceToFile(q: SliceRule): string | number {
  return q.type === "fixed" ? q.cycles : q.type;
}

function patternToFile(p: AccessPattern): NonNullable<ProcessInput["pattern"]> {
  return p.type === "hotcold"
    ? { type: "hotcold", hot_fraction: p.hotFraction, hot_probability: p.hotProbability }
    : { ...p };
}

/**
 * A process's settings; those its kind does not read are left out, as the schema refuses them
 * (a trace process's accesses come from its trace, whose path is the one it was read from).
 */
function processToFile(p: ProcessSpec): ProcessInput {
  const common = {
    name: p.name,
    kind: p.kind,
    instances: p.instances,
    image: p.image,
    cpi: p.cpi,
  };
  if (p.kind === "trace") {
    const trace = p.trace;
    return {
      ...common,
      trace: trace?.path ?? trace?.file ?? "",
      loop: trace?.loop ?? false,
    };
  }
  return {
    ...common,
    working_set: p.workingSet,
    code: p.code,
    pattern: patternToFile(p.pattern),
    writes: p.writes,
    fetches: p.fetches,
    image_data: p.imageData,
    huge_pages: p.hugePages,
    instructions_per_access: p.instructionsPerAccess,
    ...(p.kind === "build" && { child_accesses: p.childAccesses, jobs: p.jobs }),
    ...(p.kind === "mmap-churn" && { churn_accesses: p.churnAccesses }),
    ...(p.kind === "database" && { lifetime: p.lifetime }),
  };
}
