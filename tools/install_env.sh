#!/usr/bin/env bash
# Create or refresh the project environment (.venv) with the pinned stack of docs/install.md.
# Idempotent: a stamp holding the hash of every requirement file makes a second run a no-op.
#   TORCH=pinned            install torch/torchvision from requirements/torch.txt (a new environment's default)
#   TORCH=system            keep the torch already importable by $PYTHON (e.g. your CUDA build):
#                           the venv sees system site-packages and torch is never reinstalled.
#   MMCV_OPS=auto (default) CUDA ops where a GPU is visible or TORCH_CUDA_ARCH_LIST is set (and a probe
#                           compile succeeds), else CPU ops; the first build line says which and why
#   MMCV_OPS=cuda|cpu       ask for one kind explicitly (rebuilds mmcv if the environment has the other)
#   TORCH_CUDA_ARCH_LIST    GPU architectures of a CUDA build (default: the visible GPUs', else
#                           "8.0;8.6;8.9;9.0": A100, RTX 30xx/A40, L40/RTX 40xx, H100/H200)
#   WHEELHOUSE=DIR          install with no network from a folder made by tools/wheelhouse.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
REQ_TORCH=${TORCH:-}    # empty: whatever the environment has (pinned for a new one)
REQ_OPS=${MMCV_OPS:-}   # empty or auto: whatever serves this machine
VENV=${VENV:-.venv}
MMCV_VERSION=2.1.0
WHEEL_CACHE=${MMDG_WHEEL_CACHE:-$HOME/.cache/mmdg/wheels}
WHEELHOUSE=${WHEELHOUSE:-}
case "$REQ_OPS" in ""|auto|cuda|cpu) ;; *) echo "MMCV_OPS must be auto, cuda or cpu (got '$REQ_OPS')" >&2; exit 2;; esac
case "$REQ_TORCH" in ""|pinned|system) ;; *) echo "TORCH must be pinned or system (got '$REQ_TORCH')" >&2; exit 2;; esac
if [[ -n "$WHEELHOUSE" && ! -d "$WHEELHOUSE" ]]; then
  echo "WHEELHOUSE=$WHEELHOUSE is not a folder; make one with: make wheelhouse DIR=$WHEELHOUSE" >&2; exit 2
fi
if [[ -n "$WHEELHOUSE" && ! -f "$WHEELHOUSE/install.lock.txt" ]]; then
  echo "WHEELHOUSE=$WHEELHOUSE has no install.lock.txt (made by an older mmdg?); rebuild it with make wheelhouse" >&2
  exit 2
fi

hash=$(cat requirements.txt requirements/*.txt setup.py $(ls mmdg/version.py 2>/dev/null) tools/install_env.sh \
       mmdg/utils/install_check.py | sha256sum | cut -c1-16)
[[ "${1:-}" != --env-hash ]] || { echo "$hash"; exit 0; }  # what a stamp of this checkout holds (tests)
# The stamp records what the environment *has* (torch kind, mmcv's ops), not what was asked for, so that
# `make demo` then `make test` (or the reverse, or an explicit MMCV_OPS=cpu first) share one environment.
stamp="$VENV/.mmdg-env"
gpu_visible() {  # the device node first: no torch import (2 s) on the common CPU machine
  compgen -G '/dev/nvidia[0-9]*' >/dev/null &&
    "$VENV/bin/python" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null
}
if [[ -f "$stamp" ]]; then
  read -r had_hash had_torch had_ops < "$stamp" || true
  serves=1
  [[ "$had_hash" == "$hash" ]] || serves=0
  [[ -z "$REQ_TORCH" || "$REQ_TORCH" == "$had_torch" ]] || serves=0
  case "$REQ_OPS" in
    cpu|cuda) [[ "$REQ_OPS" == "$had_ops" ]] || serves=0 ;;
    *) if [[ "$had_ops" == cpu ]] && { [[ -n "${TORCH_CUDA_ARCH_LIST:-}" ]] || gpu_visible; }; then serves=0; fi ;;
  esac
  [[ $serves == 0 ]] || exit 0
  REQ_TORCH=${REQ_TORCH:-$had_torch}
fi
if [[ -z "$REQ_TORCH" && -f "$VENV/pyvenv.cfg" ]] && grep -q '^include-system-site-packages = true' "$VENV/pyvenv.cfg"; then
  REQ_TORCH=system  # a venv made by TORCH=system (an older stamp, or none yet): keep using that torch
fi
TORCH=${REQ_TORCH:-pinned}
MMCV_OPS=${REQ_OPS:-auto}

log() { printf '\033[1;34m[install]\033[0m %s\n' "$*"; }

if [[ ! -x "$VENV/bin/python" ]]; then
  if [[ "$TORCH" == system ]]; then
    log "creating $VENV with system site-packages (keeps your torch)"
    "$PYTHON" -m venv --system-site-packages "$VENV"
    # A venv made from a venv's python sees the *base* interpreter's packages, not that venv's (where the
    # torch usually is): point a .pth at them. Listed after .venv's own, so what mmdg installs still wins.
    parent=$("$PYTHON" -c 'import site, sys; print(site.getsitepackages()[0] if sys.prefix != sys.base_prefix else "")')
    if [[ -n "$parent" ]]; then
      own=$("$VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])')
      echo "$parent" > "$own/_mmdg_parent_env.pth"
      log "  $PYTHON is itself a virtual environment: its packages ($parent) are visible too"
    fi
  else
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
PIP_OPTS=(--disable-pip-version-check --progress-bar off)
if [[ -n "$WHEELHOUSE" ]]; then
  # Everything from the folder, nothing from the network (compute nodes of many clusters have none).
  PIP_OPTS+=(--no-index --find-links "$(cd "$WHEELHOUSE" && pwd)")
  log "offline install from $WHEELHOUSE"
fi
PIP=("$PY" -m pip install "${PIP_OPTS[@]}")
if [[ "$TORCH" == system ]]; then  # before anything could pull a torch in
  "$PY" -c "import torch, torchvision" 2>/dev/null || {
    echo "TORCH=system but torch/torchvision cannot be imported by $PYTHON; install them first." >&2; exit 1; }
fi

if [[ -n "$WHEELHOUSE" ]]; then
  # The exact list resolved when the wheelhouse was made, for this target: nothing to resolve offline.
  log "the wheelhouse's $(wc -l < "$WHEELHOUSE/install.lock.txt") locked packages"
  "${PIP[@]}" -q --no-deps -r "$WHEELHOUSE/install.lock.txt"
else
  log "build tools"
  "${PIP[@]}" -q -r requirements/build.txt
  if [[ "$TORCH" != system ]]; then
    log "torch / torchvision (pinned; the first time this downloads ~3 GB)"
    "${PIP[@]}" -q -r requirements/torch.txt
  fi
  log "runtime requirements"
  "${PIP[@]}" -q -r requirements.txt
fi
# mmcv with compiled ops, built from its sdist against *this* torch. pip's own cache keys the wheel by
# the sdist only, and a wheel built against another torch, CUDA or without CUDA kernels fails later
# (undefined symbols at import, or "not compiled with GPU support" in the first deformable attention), so
# ours is keyed by all three.
read -r ops archs cache_tag cuda_cpath reason < <("$PY" -m mmdg.utils.install_check --plan "$MMCV_OPS") || exit 1
[[ -n "${reason:-}" ]] || exit 1
[[ "$ops" == cpu ]] || export TORCH_CUDA_ARCH_LIST=$archs
[[ "$cuda_cpath" == - ]] || export CPATH="$cuda_cpath${CPATH:+:$CPATH}"  # headers from torch's NVIDIA wheels
want_cuda_ops=$([[ "$ops" == cuda ]] && echo 1 || echo 0)
only_cpu_ops=$([[ "$REQ_OPS" == cpu ]] && echo 1 || echo 0)  # asked for explicitly: a CUDA build is replaced

mmcv_ok() {
  "$PY" - <<PY 2>/dev/null
import sys, mmcv
from mmcv.ops import get_compiling_cuda_version, nms  # noqa: F401 (fails if built without ops)
has_cuda = get_compiling_cuda_version() != 'not available'
sys.exit(mmcv.__version__ != '$MMCV_VERSION' or ($want_cuda_ops == 1 and not has_cuda)
         or ($only_cpu_ops == 1 and has_cuda))
PY
}
if ! mmcv_ok; then
  cache="$WHEEL_CACHE/$cache_tag"
  mkdir -p "$cache"
  wheel=$(ls "$cache"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)
  if [[ -z "$wheel" ]]; then
    if [[ "$ops" == cuda ]]; then
      log "building mmcv $MMCV_VERSION with CUDA ops for $TORCH_CUDA_ARCH_LIST ($reason); 30-60 min, once"
    else
      log "building mmcv $MMCV_VERSION with CPU ops ($reason); 10-30 minutes on 2 cores, once"
    fi
    tmp=$(mktemp -d)
    src="mmcv==$MMCV_VERSION"
    if [[ -n "$WHEELHOUSE" ]]; then
      src=$(ls "$WHEELHOUSE"/mmcv-"$MMCV_VERSION".tar.gz 2>/dev/null | head -n1 || true)
      [[ -n "$src" ]] || { echo "$WHEELHOUSE has no mmcv-$MMCV_VERSION.tar.gz; rebuild it with make wheelhouse" >&2; exit 1; }
    fi
    FORCE_CUDA=$want_cuda_ops MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} "$PY" -m pip wheel "${PIP_OPTS[@]}" \
      --no-build-isolation --no-deps --no-cache-dir --no-binary mmcv -w "$tmp" "$src"
    mv "$tmp"/mmcv-*.whl "$cache"/ && rm -rf "$tmp"
    wheel=$(ls "$cache"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)
  fi
  log "installing $wheel ($ops ops: $reason)"
  "${PIP[@]}" -q --no-deps --force-reinstall "$wheel"
  # mmcv's own runtime requirements (without letting pip touch mmcv or torch); a wheelhouse's lock has them.
  [[ -n "$WHEELHOUSE" ]] || "${PIP[@]}" -q -r requirements/mmcv_runtime.txt
fi

log "mmdg (editable)"
"${PIP[@]}" -q --no-deps --no-build-isolation -e .

"$PY" -m mmdg.utils.install_check --verify $([[ "$ops" == cuda ]] && echo --want-cuda-ops)
rm -f "$VENV"/.mmdg-env-*  # stamps of older installers
echo "$hash $TORCH $("$PY" -m mmdg.utils.install_check --built-ops)" > "$stamp"
