#!/bin/bash
# One shard of a memvisor experiment per task of a Slurm job array; a job that depends on the
# array merges the shards. Submit both with:
#
#   EXPERIMENT=experiments/modes-working-set.yaml OUT=results/modes sbatch --array=0-3 \
#     --export=ALL docs/cluster/slurm-experiment.sh
#   # then, with the array's job id:
#   sbatch --dependency=afterok:JOBID --export=ALL --wrap "npx memvisor experiment merge results/modes"
#
# or `docs/cluster/slurm-submit.sh EXPERIMENT OUT SHARDS`, which does both. The array's size is
# the number of shards (SLURM_ARRAY_TASK_COUNT); each task runs `--jobs` worker threads, one
# per CPU Slurm gives it. `--resume` makes a requeued or restarted task finish its shard instead
# of starting again. Run from a checkout where `npm ci` has been run (or with memvisor installed).
#SBATCH --job-name=memvisor-experiment
#SBATCH --cpus-per-task=2
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail

: "${EXPERIMENT:?set EXPERIMENT to the experiment file}"
: "${OUT:?set OUT to the folder for the results of the shards}"
MEMVISOR=${MEMVISOR:-npx memvisor}

$MEMVISOR experiment "$EXPERIMENT" \
  --shard "${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}" \
  --jobs "${SLURM_CPUS_PER_TASK:-1}" \
  --out "$OUT/shard-${SLURM_ARRAY_TASK_ID}" \
  --resume
