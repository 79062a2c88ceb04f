/**
 * Vitest's global setup: builds dist/ once for the whole suite, for the tests that run
 * bin/memvisor.js as a process (a real SIGINT, a closed pipe, a full disk). Type errors elsewhere
 * in the tree are tsc --noEmit's business; tsc still emits dist/.
 */

import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export default function setup(): void {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  spawnSync(
    process.execPath,
    [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"],
    { cwd: root },
  );
}
