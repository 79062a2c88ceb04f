/**
 * Built-in scenarios, kept as YAML text so that each is also an example of the file format
 * (scenarios/<name>.yaml holds the same text; a test keeps the two in step).
 */
import type { Scenario } from "../../config/scenario.js";
import { type ParseOptions, parseScenario } from "./parse.js";
import { ScenarioError } from "./problems.js";

export interface BuiltinScenario {
  name: string;
  /** One line for `memvisor scenarios`. */
  summary: string;
  yaml: string;
}

export const DEFAULT_SCENARIO = "mixed";

const MIXED = `# The default: a database, a parallel build and an mmap-churning process share one guest.
name: mixed
description: A database, a parallel build and an mmap-churning process in one 1GiB guest
seed: 42
run:
  accesses: 2000000
  sample_every: 1000000
domains:
  - name: guest
    memory: 1GiB
    mode: native
    processes:
      - name: postgres
        kind: database
        working_set: 256MiB
        pattern: { type: zipf, s: 0.99 }
        writes: 0.25
      - name: make
        kind: build
        jobs: 2
        working_set: 8MiB # each child's
        child_accesses: 20000
      - name: mapper
        kind: mmap-churn
        working_set: 16MiB # each mapping's
        churn_accesses: 5000
`;

const DATABASE = `# One large database whose accesses mostly fall on a small hot set.
name: database
description: A database with a 1GiB working set, 5% of it getting 90% of the accesses
seed: 42
run:
  accesses: 2000000
domains:
  - name: db
    memory: 2GiB
    mode: native
    processes:
      - name: postgres
        kind: database
        working_set: 1GiB
        pattern: { type: hotcold, hot_fraction: 0.05, hot_probability: 0.9 }
        writes: 0.25
`;

const BUILD = `# A make -j4: short-lived children fork, exec, touch a little memory and exit.
name: build
description: A parallel build (4 jobs) of short-lived compiler processes
seed: 42
run:
  accesses: 2000000
domains:
  - name: builder
    memory: 1GiB
    mode: native
    processes:
      - name: make
        kind: build
        jobs: 4
        working_set: 4MiB # each child's
        child_accesses: 10000
`;

const TWO_DOMAINS = `# Two guests, each with its own database, scheduled on one CPU.
name: two-domains
description: Two 512MiB guests, each running a database with uniform accesses
seed: 42
run:
  accesses: 2000000
domains:
  - name: vm1
    memory: 512MiB
    mode: native
    processes:
      - name: db1
        kind: database
        working_set: 128MiB
        pattern: { type: uniform }
  - name: vm2
    memory: 512MiB
    mode: native
    processes:
      - name: db2
        kind: database
        working_set: 128MiB
        pattern: { type: uniform }
`;

const TLB_THRASH = `# Sequential scans over 64MiB (16384 pages): far more pages than the TLB holds.
name: tlb-thrash
description: Sequential scans over a working set that overflows the TLB
seed: 42
run:
  accesses: 2000000
domains:
  - name: scanner
    memory: 256MiB
    mode: native
    processes:
      - name: scan
        kind: database
        working_set: 64MiB
        pattern: { type: stride, stride: 1 }
        writes: 0.1
`;

const SHADOW_STEADY = `# The article's first claim: with a stable address space, shadow paging runs almost at native
# cost. After a warm-up that touches the working set, the hardware walks the shadow tables and
# the VMM is not involved. Compare: memvisor compare shadow-steady
name: shadow-steady
description: A long-running database with a stable working set, measured after warm-up
seed: 42
run:
  warmup: 500000
  accesses: 2000000
domains:
  - name: db
    memory: 1GiB
    mode: shadow
    processes:
      - name: postgres
        kind: database
        working_set: 64MiB
        fetches: 0.05
        pattern: { type: uniform }
        writes: 0.25
`;

const FORK_STORM = `# The article's second claim: short-lived processes make shadow paging pay. Every fork, exec
# and exit rewrites page tables the VMM write-protects (emulated writes), builds shadows that
# die with the process, and the exits are invisible to the VMM.
# Compare: memvisor compare fork-storm
name: fork-storm
description: A build of very short-lived processes, the worst case for shadow paging
seed: 42
run:
  accesses: 600000
domains:
  - name: builder
    memory: 1GiB
    mode: shadow
    processes:
      - name: make
        kind: build
        jobs: 4
        working_set: 2MiB # each child's
        code: 512KiB
        child_accesses: 3000
`;

const UNSHADOW_POLICIES = `# Xen's early unshadow, KVM's write flooding and no heuristic at all, under the same fork storm
# and a small shadow pool (64 pages) that makes reclaim run: one domain per policy.
name: unshadow-policies
description: The unshadow policies side by side under a small shadow pool
seed: 42
run:
  accesses: 600000
domains:
  - name: early
    memory: 512MiB
    mode: shadow
    shadow: { pool: 256KiB, unshadow: early }
    processes:
      - { name: make, kind: build, jobs: 4, working_set: 2MiB, code: 512KiB, child_accesses: 3000 }
  - name: flood
    memory: 512MiB
    mode: shadow
    shadow: { pool: 256KiB, unshadow: flood }
    processes:
      - { name: make, kind: build, jobs: 4, working_set: 2MiB, code: 512KiB, child_accesses: 3000 }
  - name: none
    memory: 512MiB
    mode: shadow
    shadow: { pool: 256KiB, unshadow: none }
    processes:
      - { name: make, kind: build, jobs: 4, working_set: 2MiB, code: 512KiB, child_accesses: 3000 }
`;

const OVERCOMMIT = `# Four 512MiB guests on a 1GiB host. Each loads a file (its loader touches 160MiB, then exits)
# beside a database; then the host lowers every target to 160MiB. The balloon drivers give back
# what their guests no longer use. Compare with overcommit-swap (Waldspurger, OSDI 2002).
name: overcommit
description: Four 512MiB guests on a 1GiB host; targets drop to 160MiB and the balloons give back free guest memory
seed: 42
run:
  accesses: 2000000
host:
  memory: 1GiB
  swap: { enabled: true }
domains:
  - name: vm1
    memory: 512MiB
    mode: shadow
    balloon: { schedule: [{ at: 600000, target: 160MiB }] }
    processes:
      - name: db
        kind: database
        working_set: 128MiB
        pattern: { type: hotcold, hot_fraction: 0.2, hot_probability: 0.9 }
      - name: loader
        kind: database
        working_set: 160MiB
        pattern: { type: sequential }
        writes: 1
        fetches: 0
        lifetime: 40960
  - name: vm2
    memory: 512MiB
    mode: shadow
    balloon: { schedule: [{ at: 600000, target: 160MiB }] }
    processes:
      - name: db
        kind: database
        working_set: 128MiB
        pattern: { type: hotcold, hot_fraction: 0.2, hot_probability: 0.9 }
      - name: loader
        kind: database
        working_set: 160MiB
        pattern: { type: sequential }
        writes: 1
        fetches: 0
        lifetime: 40960
  - name: vm3
    memory: 512MiB
    mode: shadow
    balloon: { schedule: [{ at: 600000, target: 160MiB }] }
    processes:
      - name: db
        kind: database
        working_set: 128MiB
        pattern: { type: hotcold, hot_fraction: 0.2, hot_probability: 0.9 }
      - name: loader
        kind: database
        working_set: 160MiB
        pattern: { type: sequential }
        writes: 1
        fetches: 0
        lifetime: 40960
  - name: vm4
    memory: 512MiB
    mode: shadow
    balloon: { schedule: [{ at: 600000, target: 160MiB }] }
    processes:
      - name: db
        kind: database
        working_set: 128MiB
        pattern: { type: hotcold, hot_fraction: 0.2, hot_probability: 0.9 }
      - name: loader
        kind: database
        working_set: 160MiB
        pattern: { type: sequential }
        writes: 1
        fetches: 0
        lifetime: 40960
`;

const OVERCOMMIT_SWAP = `# overcommit without balloon drivers: the host reaches the same targets by swapping pages it
# picks at random, some of them the databases' hot pages, which then come back one by one.
name: overcommit-swap
description: overcommit with host swapping only, the same targets reached by random swap-outs
seed: 42
run:
  accesses: 2000000
host:
  memory: 1GiB
  swap: { enabled: true }
domains:
  - name: vm1
    memory: 512MiB
    mode: shadow
    balloon: { driver: false, schedule: [{ at: 600000, target: 160MiB }] }
    processes:
      - name: db
        kind: database
        working_set: 128MiB
        pattern: { type: hotcold, hot_fraction: 0.2, hot_probability: 0.9 }
      - name: loader
        kind: database
        working_set: 160MiB
        pattern: { type: sequential }
        writes: 1
        fetches: 0
        lifetime: 40960
  - name: vm2
    memory: 512MiB
    mode: shadow
    balloon: { driver: false, schedule: [{ at: 600000, target: 160MiB }] }
    processes:
      - name: db
        kind: database
        working_set: 128MiB
        pattern: { type: hotcold, hot_fraction: 0.2, hot_probability: 0.9 }
      - name: loader
        kind: database
        working_set: 160MiB
        pattern: { type: sequential }
        writes: 1
        fetches: 0
        lifetime: 40960
  - name: vm3
    memory: 512MiB
    mode: shadow
    balloon: { driver: false, schedule: [{ at: 600000, target: 160MiB }] }
    processes:
      - name: db
        kind: database
        working_set: 128MiB
        pattern: { type: hotcold, hot_fraction: 0.2, hot_probability: 0.9 }
      - name: loader
        kind: database
        working_set: 160MiB
        pattern: { type: sequential }
        writes: 1
        fetches: 0
        lifetime: 40960
  - name: vm4
    memory: 512MiB
    mode: shadow
    balloon: { driver: false, schedule: [{ at: 600000, target: 160MiB }] }
    processes:
      - name: db
        kind: database
        working_set: 128MiB
        pattern: { type: hotcold, hot_fraction: 0.2, hot_probability: 0.9 }
      - name: loader
        kind: database
        working_set: 160MiB
        pattern: { type: sequential }
        writes: 1
        fetches: 0
        lifetime: 40960
`;

const BALLOON_AUTO = `# oVirt MOM's rules at work: three 512MiB guests on an 896MiB host. vm1 runs a 320MiB database;
# vm2 and vm3 each run a smaller one beside a loader that touches 192MiB and exits. When the
# host's free memory falls under 20%, every guest is shrunk by up to 5% a step towards what it
# uses plus a margin (never below its 128MiB floor), and grown back when the pressure ends. Plot
# series[].domains.*.host_frames against balloon_target_pages from --json.
name: balloon-auto
description: Three 512MiB guests on an 896MiB host under oVirt MOM's automatic balloon policy
seed: 42
run:
  accesses: 1500000
  sample_every: 5000000
host:
  memory: 896MiB
  swap: { enabled: true }
  balloon_policy: { type: auto, interval: 5000000 }
domains:
  - name: vm1
    memory: 512MiB
    mode: shadow
    balloon: { floor: 128MiB }
    processes:
      - name: db
        kind: database
        working_set: 320MiB
        pattern: { type: hotcold, hot_fraction: 0.5, hot_probability: 0.9 }
  - name: vm2
    memory: 512MiB
    mode: shadow
    balloon: { floor: 128MiB }
    processes:
      - name: db
        kind: database
        working_set: 96MiB
      - name: loader
        kind: database
        working_set: 192MiB
        pattern: { type: sequential }
        writes: 1
        fetches: 0
        lifetime: 49152
  - name: vm3
    memory: 512MiB
    mode: shadow
    balloon: { floor: 128MiB }
    processes:
      - name: db
        kind: database
        working_set: 96MiB
      - name: loader
        kind: database
        working_set: 192MiB
        pattern: { type: sequential }
        writes: 1
        fetches: 0
        lifetime: 49152
`;

const SORT_TRACE = `# A real program: valgrind lackey's record of "sort /etc/services" (1.33 million accesses over
# 247 pages: the binary, ld.so, libc and the locale files it maps, its heap and its stack),
# replayed in a loop by two processes of one shadow-paged guest. Each process's address space
# is the one the trace shows; the guest demand-pages it as the replay touches it. Record your
# own with "memvisor trace record -o my.mvtr -- COMMAND" and name it in a process's trace key.
name: sort-trace
description: A recorded run of sort (valgrind lackey), replayed in a loop by two processes
seed: 1
run:
  accesses: 2000000
domains:
  - name: guest
    memory: 256MiB
    mode: shadow
    processes:
      - name: sort
        kind: trace
        trace: ../traces/sort-services.lackey.gz
        loop: true
        instances: 2
`;

const CROSSOVER = `# Shadow paging against hardware-assisted paging as processes live longer (VMware's "Performance
# Evaluation of Intel EPT Hardware Assist", 2009: EPT wins by up to 48% on MMU-intensive work,
# shadow paging on TLB-miss-heavy work with a stable address space). Each child of this make
# touches 16MiB at random, far more than the TLB holds: under HAP every miss is a 2D walk (24
# references, no caches), under shadow paging a 4-reference walk of the shadow, but each new
# child's pages cost shadow faults and emulated page-table writes. Sweep the children's lives:
#   memvisor compare crossover --modes native,shadow,hap --vary child_accesses=20000,200000,2000000
name: crossover
description: Short-lived to long-lived processes with a TLB-thrashing working set, for compare --vary
seed: 42
run:
  accesses: 2000000
domains:
  - name: guest
    memory: 512MiB
    mode: shadow
    processes:
      - name: job
        kind: build
        jobs: 1
        working_set: 16MiB
        code: 64KiB
        fetches: 0
        child_accesses: 200000
`;

const EPT_LARGE_PAGES = `# Large EPT pages: two identical guests under hardware-assisted paging, one with 4KiB EPT
# pages, one backed by 2MiB blocks mapped with 2MiB EPT leaves (Xen's superpages). A cold 2D
# walk makes 24 references over 4KiB EPT pages and 19 over 2MiB ones (4 * (3 + 1) + 3), and the
# guest's own 2MiB pages (its direct map) are cached as 2MiB TLB entries again instead of being
# splintered into 4KiB ones. Compare the domains' "refs per walk" and cycles.
name: ept-large-pages
description: The same database under HAP with 4KiB and with 2MiB EPT pages
seed: 42
run:
  accesses: 2000000
domains:
  - name: ept-4k
    memory: 512MiB
    mode: hap
    processes:
      - name: db
        kind: database
        working_set: 64MiB
        pattern: { type: zipf, s: 0.8 }
  - name: ept-2m
    memory: 512MiB
    mode: hap
    hap: { large_pages: true }
    processes:
      - name: db
        kind: database
        working_set: 64MiB
        pattern: { type: zipf, s: 0.8 }
`;

const SHARING = `# Content-based page sharing across identical guests (Waldspurger, OSDI 2002): four 256MiB
# guests run the same OS and the same database image, whose code and a third of whose data come
# from the image; pages only read stay zero; writes make private data. A KSM-style scanner
# merges what is identical. "memvisor sweep sharing --domains 4" prints the saving against the
# number of guests.
name: sharing
description: Four identical 256MiB guests with a KSM-style scanner merging their identical pages
seed: 42
run:
  accesses: 1200000
host:
  sharing: { enabled: true, pages_to_scan: 512, sleep: 200000 }
domains:
  - name: vm1
    memory: 256MiB
    mode: shadow
    processes:
      - name: db
        kind: database
        image: postgres-15
        code: 8MiB
        working_set: 96MiB
        image_data: 0.3
        pattern: { type: hotcold, hot_fraction: 0.1, hot_probability: 0.9 }
        writes: 0.2
  - name: vm2
    memory: 256MiB
    mode: shadow
    processes:
      - name: db
        kind: database
        image: postgres-15
        code: 8MiB
        working_set: 96MiB
        image_data: 0.3
        pattern: { type: hotcold, hot_fraction: 0.1, hot_probability: 0.9 }
        writes: 0.2
  - name: vm3
    memory: 256MiB
    mode: shadow
    processes:
      - name: db
        kind: database
        image: postgres-15
        code: 8MiB
        working_set: 96MiB
        image_data: 0.3
        pattern: { type: hotcold, hot_fraction: 0.1, hot_probability: 0.9 }
        writes: 0.2
  - name: vm4
    memory: 256MiB
    mode: shadow
    processes:
      - name: db
        kind: database
        image: postgres-15
        code: 8MiB
        working_set: 96MiB
        image_data: 0.3
        pattern: { type: hotcold, hot_fraction: 0.1, hot_probability: 0.9 }
        writes: 0.2
`;

export const BUILTIN_SCENARIOS: readonly BuiltinScenario[] = [
  {
    name: "mixed",
    summary: "database + parallel build + mmap churn in one 1GiB guest (the default)",
    yaml: MIXED,
  },
  {
    name: "database",
    summary: "one 1GiB hot/cold database working set in a 2GiB guest",
    yaml: DATABASE,
  },
  { name: "build", summary: "make -j4 of short-lived children in a 1GiB guest", yaml: BUILD },
  {
    name: "two-domains",
    summary: "two 512MiB guests, each with a 128MiB uniform database",
    yaml: TWO_DOMAINS,
  },
  {
    name: "tlb-thrash",
    summary: "sequential scans over 64MiB, overflowing the TLB",
    yaml: TLB_THRASH,
  },
  {
    name: "shadow-steady",
    summary: "shadow paging near native cost: a stable working set after warm-up",
    yaml: SHADOW_STEADY,
  },
  {
    name: "fork-storm",
    summary: "shadow paging at its worst: very short-lived processes",
    yaml: FORK_STORM,
  },
  {
    name: "unshadow-policies",
    summary: "early unshadow, write flooding and none, under a small shadow pool",
    yaml: UNSHADOW_POLICIES,
  },
  {
    name: "overcommit",
    summary: "four 512MiB guests on a 1GiB host: the balloons meet lower targets",
    yaml: OVERCOMMIT,
  },
  {
    name: "overcommit-swap",
    summary: "the same targets met by host swapping only (no balloon drivers)",
    yaml: OVERCOMMIT_SWAP,
  },
  {
    name: "balloon-auto",
    summary: "oVirt MOM's automatic targets moving memory between three guests",
    yaml: BALLOON_AUTO,
  },
  {
    name: "sharing",
    summary: "four identical guests: page sharing merges their code, data and zero pages",
    yaml: SHARING,
  },
  {
    name: "sort-trace",
    summary: "a recorded run of sort (valgrind lackey), replayed in a loop by two processes",
    yaml: SORT_TRACE,
  },
  {
    name: "crossover",
    summary:
      "short- to long-lived processes with a TLB-thrashing working set: shadow paging against HAP (compare --vary)",
    yaml: CROSSOVER,
  },
  {
    name: "ept-large-pages",
    summary:
      "one database under HAP with 4KiB and with 2MiB EPT pages: 24 against 19 references a cold walk",
    yaml: EPT_LARGE_PAGES,
  },
];

/** A fresh copy of the built-in scenario `name`; throws ScenarioError naming the ones there are. */
export function builtinScenario(name: string, options: ParseOptions = {}): Scenario {
  const found = BUILTIN_SCENARIOS.find((b) => b.name === name);
  if (!found) {
    const names = BUILTIN_SCENARIOS.map((b) => b.name).join(", ");
    throw new ScenarioError(name, [
      { path: "", message: `not a built-in scenario (available: ${names})` },
    ]);
  }
  return parseScenario(found.yaml, `${found.name}.yaml`, options);
}
