#!/usr/bin/env bash
# One command on a GPU machine: install (offline when WHEELHOUSE is set), check the install, run the GPU
# tests, then the recipe benchmark, most important part first, inside a time budget. Every part writes
# into RESULTS as soon as it ends, so a machine taken back midway still leaves what finished.
#   WHEELHOUSE=wh RESULTS=gpu_results BUDGET_S=3600 bash tools/gpu_benchmark.sh
# Parts (each starts only while budget is left; a measurement in progress may run past it by its length):
#   1. recipe_sora:  SoRA training step fp32 + bf16, backbone MFU, SVD initialisation, data loader (the targets)
#   2. recipe_loss:  the LOSS_CURVE-iteration (200) bf16-vs-fp32 loss curves
#   3. recipe_all:   every method (and DINOv3-L beside DINOv2-L), fp32 + bf16, without and with gradient
#                    checkpointing, round-robin over 2 rounds; slide inference; detection
# Files in RESULTS: log.txt (install, checks, tests, benchmark logs) and <part>.json / <part>.md.
# PY=python skips the install and uses that interpreter; DEVICE=cpu BENCH_ARGS="--reduced ..." is the
# CPU smoke run of this script (tests/test_benchmark.py).
set -uo pipefail
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-gpu_results}
BUDGET_S=${BUDGET_S:-3600}
LOSS_CURVE=${LOSS_CURVE:-200}
DEVICE=${DEVICE:-cuda}
BENCH_ARGS=${BENCH_ARGS:-}
MARGIN_S=${MARGIN_S:-90}  # about one full-size measurement: a part starts no measurement this close to the end
mkdir -p "$RESULTS"
log_file="$RESULTS/log.txt"
: > "$log_file"
start=$SECONDS
left() { echo $(( BUDGET_S - (SECONDS - start) )); }
say() { echo "[gpu_benchmark] $* ($(( SECONDS - start )) s)" | tee -a "$log_file"; }
export PYTHONUNBUFFERED=1

if [[ -z "${PY:-}" ]]; then
  say "install (TORCH=system MMCV_OPS=cuda${WHEELHOUSE:+ WHEELHOUSE=$WHEELHOUSE})"
  make install TORCH=system MMCV_OPS=cuda ${WHEELHOUSE:+WHEELHOUSE=$WHEELHOUSE} 2>&1 | tee -a "$log_file" \
    || { say "install failed"; exit 1; }
  PY=.venv/bin/python
  "$PY" tools/check_install.py --verify --want-cuda-ops 2>&1 | tee -a "$log_file" || { say "install check failed"; exit 1; }
fi
command -v nvidia-smi >/dev/null && nvidia-smi 2>&1 | tee -a "$log_file" >/dev/null
say "GPU tests"
# -rs: the skip reasons say whether the GPU tests ran at all
"$PY" -m pytest -q -rs -p no:cacheprovider tests/test_mixed_precision.py 2>&1 | tee -a "$log_file"

bench() {
  local name=$1 budget
  shift
  budget=$(( $(left) - MARGIN_S ))
  if (( budget <= 0 )); then say "$name: not run (budget spent)"; return; fi
  say "$name (time budget $budget s)"
  # shellcheck disable=SC2086  # BENCH_ARGS is a list of options
  "$PY" tools/benchmark.py --suite recipe --device "$DEVICE" --time-budget "$budget" --json "$RESULTS/$name.json" \
    --md "$RESULTS/$name.md" "$@" $BENCH_ARGS 2>&1 | tee -a "$log_file" >/dev/null
  local rc=${PIPESTATUS[0]}
  say "$name: exit $rc"
  (( rc == 0 )) || status=1
}
status=0
bench recipe_sora --methods sora --grad-ckpt off --rounds 1 --skip slide det
bench recipe_loss --loss-curve "$LOSS_CURVE" --rounds 1 --skip train mfu svd loader slide det
# every method round-robin over 2 rounds, DINOv3-L beside DINOv2-L (its rows: frozen, full, lora, sora)
bench recipe_all --methods frozen full lora pissa alore hta clora sora --backbones dinov2-l dinov3-l --rounds 2 \
  --skip svd loader
say "done"
for f in "$RESULTS"/recipe_*.md; do
  if [[ -f "$f" ]]; then echo; echo "== $f"; cat "$f"; fi
done
exit $status
