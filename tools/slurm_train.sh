#!/usr/bin/env bash
# Training on a Slurm cluster: srun starts one task per GPU, mmengine reads the ranks from Slurm.
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#       tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [tools/train.py options]
#   e.g. GPUS=16 tools/slurm_train.sh gpu sora_gta5 configs/dg_seg/sora/<config>.py work_dirs/sora --resume
# Python: $PYTHON if set, else the repository's .venv.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG [WORK_DIR] [tools/train.py options]" >&2; exit 2
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
shift 3
WORK_DIR_ARGS=()
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then WORK_DIR_ARGS=(--work-dir "$1"); shift; fi
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN=${SRUN:-srun}
# SRUN_ARGS is split on spaces on purpose (several srun options in one variable, as in mmseg)
# shellcheck disable=SC2086
exec "$SRUN" -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    "$PYTHON" -u "$TOOLS/train.py" "$CONFIG" ${WORK_DIR_ARGS[@]+"${WORK_DIR_ARGS[@]}"} --launcher slurm "$@"
