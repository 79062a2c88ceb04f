#!/usr/bin/env node
import { dropEarlyThreads, startEarly } from "../dist/cli/early-threads.js";

// Before the command line loads (a dynamic import, so that it comes after): an experiment's
// worker threads start loading now, on the core this thread leaves idle while it loads.
startEarly(process.argv.slice(2));
const { main } = await import("../dist/cli/main.js");

main(process.argv.slice(2)).then(async (code) => {
  process.exitCode = code;
  await dropEarlyThreads();
});
