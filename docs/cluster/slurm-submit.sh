#!/bin/bash
# Submits a memvisor experiment as a Slurm job array of SHARDS tasks and a merge job that runs
# when every task has succeeded. Usage: slurm-submit.sh EXPERIMENT OUT SHARDS
set -euo pipefail
if [ $# -ne 3 ]; then
  echo "usage: $0 EXPERIMENT OUT SHARDS" >&2
  exit 2
fi
export EXPERIMENT=$1 OUT=$2
MEMVISOR=${MEMVISOR:-npx memvisor}
export MEMVISOR
here=$(dirname "$0")
array=$(sbatch --parsable --array="0-$(($3 - 1))" --export=ALL "$here/slurm-experiment.sh")
merge=$(sbatch --parsable --dependency="afterok:${array}" --export=ALL \
  --job-name=memvisor-merge --output="slurm-%j-merge.out" \
  --wrap "$MEMVISOR experiment merge '$OUT'")
echo "submitted job array $array (shards 0..$(($3 - 1))) and merge job $merge"
