#!/usr/bin/env bash
# Evaluation on a Slurm cluster: srun starts one task per GPU, mmengine gathers the results.
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#       tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py options]
# Python: $PYTHON if set, else the repository's .venv.
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py options]" >&2; exit 2
fi
# PYTHON: $PYTHON if set, else <repo>/.venv/bin/python when present, else python3 on PATH. `make` puts torch
# in .venv only, so the first `python` on PATH is usually the wrong one.
TOOLS=$(cd "$(dirname "$0")" && pwd)
MMDG_ROOT=$(cd "$TOOLS/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$MMDG_ROOT/.venv/bin/python" ]; then PYTHON="$MMDG_ROOT/.venv/bin/python"
    else PYTHON=$(command -v python3 || command -v python); fi
fi
export PYTHONPATH="$MMDG_ROOT${PYTHONPATH:+:$PYTHONPATH}"

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
shift 4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN=${SRUN:-srun}
# shellcheck disable=SC2086
exec "$SRUN" -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    "$PYTHON" -u "$TOOLS/test.py" "$CONFIG" "$CHECKPOINT" --launcher slurm "$@"
