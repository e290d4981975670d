#!/usr/bin/env bash
# Multi-process training with PyTorch's launcher (torchrun), one process per GPU.
#   tools/dist_train.sh CONFIG NPROC [--cpu-ddp] [tools/train.py options]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 tools/dist_train.sh CONFIG 8   # on each node
# Python: $PYTHON if set, else the repository's .venv (a bare `python` on PATH after `make` has no torch).
# Without CUDA the run stops unless CPU processes (gloo) are asked for: --cpu-ddp or MMDG_CPU_DDP=1.
set -euo pipefail
if [ $# -lt 2 ]; then echo "usage: $0 CONFIG NPROC [--cpu-ddp] [tools/train.py options]" >&2; exit 2; fi
# PYTHON: $PYTHON if set, else <repo>/.venv/bin/python when present, else python3 on PATH. `make` puts torch
# in .venv only, so the first `python` on PATH is usually the wrong one.
TOOLS=$(cd "$(dirname "$0")" && pwd)
MMDG_ROOT=$(cd "$TOOLS/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$MMDG_ROOT/.venv/bin/python" ]; then PYTHON="$MMDG_ROOT/.venv/bin/python"
    else PYTHON=$(command -v python3 || command -v python); fi
fi
export PYTHONPATH="$MMDG_ROOT${PYTHONPATH:+:$PYTHONPATH}"

# EXTRA: the tool options with --cpu-ddp taken out (it becomes MMDG_CPU_DDP=1, read by every process).
mmdg_parse_extra() {
    EXTRA=()
    for arg in "$@"; do
        if [ "$arg" = "--cpu-ddp" ]; then export MMDG_CPU_DDP=1; else EXTRA+=("$arg"); fi
    done
}
CONFIG=$1
NPROC=$2
mmdg_parse_extra "${@:3}"
# no CUDA and no --cpu-ddp: the one-line refusal here, before torchrun wraps it in 40 lines of its own report
if [ -z "${MMDG_CPU_DDP:-}" ] && ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)'; then
    echo "error: no CUDA device found; for multi-process runs on CPU (gloo) ask for them explicitly:" \
         "$0 ... --cpu-ddp (or MMDG_CPU_DDP=1)" >&2
    exit 1
fi
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" --nproc_per_node="$NPROC" \
    "$TOOLS/train.py" "$CONFIG" --launcher pytorch ${EXTRA[@]+"${EXTRA[@]}"}
