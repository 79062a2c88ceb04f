/**
 * The `memvisor` command line. main() never exits the process: it returns the exit code, so that
 * tests can call it in-process and bin/memvisor.js sets process.exitCode from it.
 */

import { Command, Option } from "commander";
import { DEFAULT_SCENARIO, PAGING_MODES, VERSION } from "../api/index.js";
import { type CompareOptions, compareCommand } from "./compare.js";
import { describeError, EXIT_OK } from "./errors.js";
import { type ExperimentOptions, experimentCommand } from "./experiment.js";
import { experimentMergeCommand, type MergeOptions } from "./experiment-merge.js";
import { exitOnOutputError, writeErr, writeJson, writeOut } from "./output.js";
import { startCommand } from "./provenance.js";
import { type RecordOptions, traceRecordCommand } from "./record.js";
import { RUN_FORMATS, type RunOptions, runCommand } from "./run.js";
import { resolveScenario } from "./scenario-arg.js";
import { formatScenarioList, scenarioList } from "./scenarios-table.js";
import { type SweepOptions, sweepCommand } from "./sweep.js";
import { type ImportOptions, traceImportCommand, traceInfoCommand } from "./trace.js";
import { DEFAULT_UI_PORT, type UiCommandOptions, uiCommand } from "./ui.js";
import { type ValidateOptions, validateCommand } from "./validate.js";

function buildProgram(setCode: (code: number) => void): Command {
  const program = new Command("memvisor")
    .description("Simulate hypervisor memory virtualization and report what it costs.")
    .version(VERSION, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .helpCommand("help [command]", "show help for a command")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
      outputError: (s, write) => write(`memvisor: ${s.replace(/^error: /, "")}`),
    })
    .showHelpAfterError("(add --help for usage)");

  program
    .command("run")
    .description("run a scenario and print its report")
    .argument(
      "[scenario]",
      `a built-in scenario (see \`memvisor scenarios\`) or a .yaml/.yml/.json file (default: ${DEFAULT_SCENARIO}; ` +
        "with no scenario, --mode, --from or format, it runs natively and under shadow paging, side by side)",
    )
    .addOption(
      new Option("--mode <mode>", "run every domain in this paging mode").choices(PAGING_MODES),
    )
    .option("--seed <n>", "random seed, 0 to 4294967295 (default: the scenario's)")
    .option("--accesses <n>", "user accesses to simulate (default: the scenario's)")
    .addOption(checkOption("run"))
    .option(
      "--from <report>",
      "run again the run a report file holds (--json output of run, or of compare with --mode)",
    )
    .option("--json", "print the report as one JSON object (--format json)")
    .addOption(
      new Option(
        "--format <format>",
        "text (default), json, csv (the time series) or stats (name value # description)",
      ).choices(RUN_FORMATS),
    )
    .action(async (scenario: string | undefined, options: RunOptions) => {
      setCode(await runCommand(scenario, options));
    });

  program
    .command("compare")
    .description("run a scenario under several paging modes and compare them side by side")
    .argument("[scenario]", `a built-in scenario or a scenario file (default: ${DEFAULT_SCENARIO})`)
    .option(
      "--modes <list>",
      "comma-separated paging modes, the first the baseline",
      "native,shadow",
    )
    .option("--seed <n>", "random seed, 0 to 4294967295 (default: the scenario's)")
    .option("--accesses <n>", "user accesses to simulate (default: the scenario's)")
    .option(
      "--vary <param=values>",
      "run the comparison at each value of a process parameter (child_accesses, jobs, " +
        "churn_accesses, working_set, writes, fetches, lifetime), e.g. child_accesses=1000,10000",
    )
    .option("--jobs <n>", "runs at once, in worker threads (default: the number of cores)")
    .addOption(checkOption("runs"))
    .option("--json", "print the comparison as one JSON object")
    .action(async (scenario: string | undefined, options: CompareOptions) => {
      setCode(await compareCommand(resolveScenario(scenario), options));
    });

  program
    .command("sweep")
    .description(
      "run the scenario's first domain as 1, 2, ... N identical domains on one host and print what page sharing saves",
    )
    .argument("[scenario]", `a built-in scenario or a scenario file (default: sharing)`)
    .requiredOption("--domains <n>", "the largest number of domains, 1 to 16")
    .option("--seed <n>", "random seed, 0 to 4294967295 (default: the scenario's)")
    .option("--accesses <n>", "user accesses per domain (default: the scenario's per domain)")
    .option("--jobs <n>", "runs at once, in worker threads (default: the number of cores)")
    .addOption(checkOption("runs"))
    .option("--json", "print the sweep as one JSON object")
    .action(async (scenario: string | undefined, options: SweepOptions) => {
      setCode(await sweepCommand(resolveScenario(scenario ?? "sharing"), options));
    });

  const experiment = program
    .command("experiment")
    .description(
      "run an experiment: a grid of scenario settings x modes x seeds, on every core; tables, summary, plots",
    )
    .argument("<file>", "the experiment file (.yaml/.yml/.json), or a built-in experiment's name")
    .option("--out <folder>", "the folder for the results (default: <experiment name>-results)")
    .option("--jobs <n>", "runs at once, in worker threads (default: the number of cores)")
    .option("--shard <i/n>", "run shard I of N (0 <= I < N): every run whose index is I modulo N")
    .option("--resume", "finish the runs a killed or interrupted experiment left in --out")
    .option("--force", "start again in a folder that holds results (its files are replaced)")
    .action(async (file: string, options: ExperimentOptions) => {
      setCode(await experimentCommand(file, options));
    });
  experiment
    .command("merge")
    .description(
      "join the folders of an experiment's shards into the tables one machine would write",
    )
    .argument("<folder>", "the folder holding the shards' folders")
    .option("--out <folder>", "where to write the merged results (default: the folder itself)")
    .option("--force", "replace merged results already there")
    .action(async (folder: string, options: MergeOptions) => {
      setCode(await experimentMergeCommand(folder, options));
    });

  const trace = program
    .command("trace")
    .description("import, record or inspect real memory traces");
  trace
    .command("import")
    .description("convert a valgrind lackey trace (plain or .gz) into memvisor's binary format")
    .argument("<file>", "the lackey trace (valgrind --tool=lackey --trace-mem=yes)")
    .requiredOption("-o, --output <file>", "the trace file to write")
    .option("--skip-bad", "count and skip malformed lines instead of stopping at the first")
    .option("--force", "overwrite the output file if it exists")
    .action(async (file: string, options: ImportOptions) => {
      setCode(await traceImportCommand(file, options));
    });
  trace
    .command("record")
    .description(
      "run a command under valgrind lackey and write its program's trace in memvisor's format",
    )
    .argument("<command...>", "the command and its arguments, after --")
    .requiredOption("-o, --output <file>", "the trace file to write")
    .option("--force", "overwrite the output file if it exists")
    .option(
      "--no-follow-children",
      "trace the command's own process only (by default valgrind follows the processes it starts)",
    )
    .option(
      "--program <name>",
      "keep the trace of the process that ran this program (e.g. cc1; default: the one with the most accesses)",
    )
    .option(
      "--valgrind-option <option>",
      "pass an option to valgrind, e.g. --valgrind-option=--trace-children-skip='*git*' (repeatable)",
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .action(async (command: string[], options: RecordOptions) => {
      setCode(await traceRecordCommand(command, options));
    });
  trace
    .command("info")
    .description("what a trace holds and the address space a trace process replaying it gets")
    .argument("<file>", "a trace: memvisor's format or lackey, plain or gzip")
    .option("--json", "print the information as one JSON object")
    .action((file: string, options: { json?: boolean }) => {
      setCode(traceInfoCommand(file, options));
    });

  program
    .command("ui")
    .description("serve the web visualizer on a loopback address and print its URL")
    .option("--port <n>", `the port, 0 for any free one (default: ${DEFAULT_UI_PORT})`)
    .option(
      "--host <host>",
      "the loopback address: 127.0.0.1, localhost or ::1 (default: 127.0.0.1)",
    )
    .action(async (options: UiCommandOptions) => {
      setCode(await uiCommand(options));
    });

  program
    .command("validate")
    .description("run memvisor beside published measurements and print each row's verdict")
    .argument("[rows...]", "the rows to run (default: all)")
    .option("--quick", "each run a tenth as long (the test suite's size)")
    .option("--json", "print the rows as one JSON object")
    .action((rows: string[], options: ValidateOptions) => {
      setCode(validateCommand(rows, options));
    });

  program
    .command("scenarios")
    .description("list the built-in scenarios")
    .option("--json", "print a JSON array of {name, summary, default}")
    .action((options: { json?: boolean }) => {
      if (options.json) writeJson(scenarioList());
      else writeOut(formatScenarioList());
    });

  return program;
}

/** Runs the CLI on argv (without "node" and the script path); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  exitOnOutputError();
  startCommand(argv);
  let code = EXIT_OK;
  const program = buildProgram((c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (e) {
    const { message, code: errorCode } = describeError(e, Boolean(process.env.MEMVISOR_DEBUG));
    if (message !== "") writeErr(message);
    return errorCode;
  }
}

/** --check, or --check=full: every structure read at every check (much slower). */
function checkOption(what: string): Option {
  return new Option(
    "--check [scope]",
    `verify the simulator's invariants during the ${what} (slower; =full: read every structure at every check, much slower)`,
  ).choices(["full"]);
}
