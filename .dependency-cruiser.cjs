/**
 * The layers of memvisor, as import rules (npm test runs them; a violation names the import):
 *
 *   web/  cli/          front ends: only the library's entry points, src/api/index.ts and
 *                       (cli/, in Node) src/api/node.ts
 *   api/                Simulation, reports, checks; assembles a domain's platform
 *   workload/           generators, trace readers, scenario files
 *   guest/   vmm/       the guest kernel and the hypervisor: never each other
 *   hw/                 the simulated hardware
 *   metrics/            counters, the cost model
 *   config/             scenario types, sizes, defaults: importable by every layer
 *
 * Each layer imports only the layers below it. src/bench/ (benchmarks) may reach any layer but
 * the front ends; tests may import anything.
 */

/** A rule that src/<layer>/ imports nothing in src/ outside `allowed` (folders of src/). */
function layer(name, allowed) {
  const inside = [name, ...allowed].join("|");
  return {
    name: `${name}-imports-only-below`,
    comment: `src/${name}/ may import only ${allowed.length > 0 ? `src/{${allowed.join(",")}}/ and itself` : "itself"}`,
    severity: "error",
    from: { path: `^src/${name}/` },
    to: { path: "^src/", pathNot: `^src/(${inside})/` },
  };
}

module.exports = {
  forbidden: [
    layer("config", []),
    layer("metrics", ["config"]),
    layer("hw", ["config", "metrics"]),
    layer("guest", ["config", "metrics", "hw"]),
    layer("vmm", ["config", "metrics", "hw"]),
    layer("workload", ["config", "metrics", "hw", "guest"]),
    layer("api", ["config", "metrics", "hw", "guest", "vmm", "workload"]),
    {
      name: "cli-through-entry-points",
      comment:
        "src/cli/ uses the library only through its entry points (api/index.ts, api/node.ts; and " +
        "api/pool-threads.ts, which starts worker threads before the rest of the library loads)",
      severity: "error",
      from: { path: "^src/cli/" },
      to: {
        path: "^src/",
        pathNot: [
          "^src/cli/",
          "^src/api/index\\.ts$",
          "^src/api/node\\.ts$",
          "^src/api/pool-threads\\.ts$",
        ],
      },
    },
    {
      name: "web-through-entry-point",
      comment: "web/ uses the library only through its browser entry point (src/api/index.ts)",
      severity: "error",
      from: { path: "^web/" },
      to: { path: "^src/", pathNot: "^src/api/index\\.ts$" },
    },
    {
      name: "nothing-imports-front-ends",
      comment: "no library code imports the CLI, the page or the benchmarks",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/(cli|bench)/" },
      to: { path: "^(src/cli|src/bench|web)/" },
    },
    {
      name: "browser-safe-core",
      comment: "below the CLI, only Node-side files may import Node's built-in modules",
      severity: "error",
      from: {
        path: "^(src|web)/",
        pathNot: [
          "^src/(cli|bench)/",
          "^src/api/node\\.ts$",
          "^src/workload/scenario/file\\.ts$",
          "^src/workload/trace/file\\.ts$",
          "^src/workload/trace/stream\\.ts$",
          "^src/workload/experiment/file\\.ts$",
          "^src/api/pool\\.ts$",
          "^src/api/pool-threads\\.ts$",
          "^web/vite\\.config\\.ts$",
        ],
      },
      to: { dependencyTypes: ["core"] },
    },
    {
      name: "not-to-unresolvable",
      comment: "an import that resolves to nothing",
      severity: "error",
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      extensions: [".ts", ".js"],
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default"],
    },
  },
};
