/** The CLI run in-process (main()), with what it prints captured. */

import { vi } from "vitest";
import { main } from "../../src/cli/main.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs main() in-process with stdout and stderr captured. */
export async function cli(...argv: string[]): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk: unknown) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, "write").mockImplementation((chunk: unknown) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await main(argv);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/**
 * Printed JSON with the fields that differ between two runs of the same command (the wall time;
 * the command line is the same) set to 0, so that the rest can be compared byte for byte.
 */
export function withoutWallTime(json: string): string {
  return json.replace(/"wall_seconds": [0-9.e+-]+/g, '"wall_seconds": 0');
}
