#!/usr/bin/env bash
# Records what the CLI prints (stdout, stderr, exit code) for every built-in scenario, so that a
# redesign can be checked to change no output: run it on the old and the new build, then
# `diff -r OLD NEW` (the commit and wall time of --json output are blanked). Usage: scripts/cli-snapshot.sh OUTDIR [JOBS]   (after `npm run build`)
# About 89 commands; a few minutes on two cores.
set -u
out=${1:?usage: scripts/cli-snapshot.sh OUTDIR [JOBS]}
jobs=${2:-2}
cd "$(dirname "$0")/.."
mkdir -p "$out"
out=$(cd "$out" && pwd)
cmds=()
for s in $(ls scenarios | sed 's/\.yaml$//'); do
  cmds+=("run $s --seed 42")
  cmds+=("run $s --seed 42 --json")
  cmds+=("compare $s --seed 42 --modes native,shadow,hap,pv")
  cmds+=("compare $s --seed 42 --modes native,shadow,hap,pv --json")
  cmds+=("run $s --seed 42 --accesses 100000 --check --json")
done
# PV cannot build the overcommit built-ins (a PV domain is built whole): their other modes.
for s in overcommit overcommit-swap balloon-auto; do
  cmds+=("compare $s --seed 42 --modes native,shadow,hap --json")
done
cmds+=("run" "compare" "sweep --domains 4 --seed 42" "sweep --domains 3 --seed 42 --json")
cmds+=("compare crossover --seed 42 --modes native,shadow,hap --vary child_accesses=20000,200000,2000000")
cmds+=("compare crossover --seed 42 --modes native,shadow,hap --vary child_accesses=20000,200000 --json")
cmds+=("scenarios" "scenarios --json" "trace info traces/sort-services.lackey.gz")
cmds+=("run scenarios/fork-storm.yaml --mode hap --seed 7" "run nosuch")
printf '%s\n' "${cmds[@]}" | xargs -P "$jobs" -I{} bash -c '
  c="{}"; f=$(echo "$c" | tr " /=," "____")
  node bin/memvisor.js $c > "$0/$f.out" 2> "$0/$f.err"; echo $? > "$0/$f.rc"
  # The provenance of --json output differs between builds and runs: its commit and wall time.
  sed -i -E "s/(\"(commit|wall_seconds)\": ).*[^,]/\1-/" "$0/$f.out"' "$out"
echo "$(ls "$out" | wc -l) files in $out"
