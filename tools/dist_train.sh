#!/usr/bin/env bash
# Multi-process training with PyTorch's launcher (torchrun), one process per GPU (or per CPU slot: with no
# GPU, tools/train.py switches to the gloo backend on its own).
#   tools/dist_train.sh CONFIG NPROC [tools/train.py options]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 tools/dist_train.sh CONFIG 8   # on each node
set -euo pipefail
if [ $# -lt 2 ]; then echo "usage: $0 CONFIG NPROC [tools/train.py options]" >&2; exit 2; fi
CONFIG=$1
NPROC=$2
PYTHON=${PYTHON:-python}
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" --nproc_per_node="$NPROC" \
    "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "${@:3}"
