#!/usr/bin/env bash
# Create or refresh the project environment (.venv) with the pinned stack of docs/install.md.
# Idempotent: a stamp holding the hash of every requirement file makes a second run a no-op.
#   TORCH=pinned (default)  install torch/torchvision from requirements/torch.txt
#   TORCH=system            keep the torch already importable by $PYTHON (e.g. your CUDA build):
#                           the venv sees system site-packages and torch is never reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH=${TORCH:-pinned}
VENV=${VENV:-.venv}
MMCV_VERSION=2.1.0
WHEEL_CACHE=${MMDG_WHEEL_CACHE:-$HOME/.cache/mmdg/wheels}

hash=$(cat requirements.txt requirements/*.txt setup.py tools/install_env.sh | sha256sum | cut -c1-16)
stamp="$VENV/.mmdg-env-$TORCH-$hash"
if [[ -f "$stamp" ]]; then
  exit 0
fi

log() { printf '\033[1;34m[install]\033[0m %s\n' "$*"; }

if [[ ! -x "$VENV/bin/python" ]]; then
  if [[ "$TORCH" == system ]]; then
    log "creating $VENV with system site-packages (keeps your torch)"
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check --progress-bar off)

log "build tools"
"${PIP[@]}" -q -r requirements/build.txt

if [[ "$TORCH" == system ]]; then
  "$PY" -c "import torch, torchvision" 2>/dev/null || {
    echo "TORCH=system but torch/torchvision cannot be imported by $PYTHON; install them first." >&2; exit 1; }
else
  log "torch / torchvision (pinned; the first time this downloads ~3 GB)"
  "${PIP[@]}" -q -r requirements/torch.txt
fi
torch_tag=$("$PY" -c "import torch; print(torch.__version__.replace('+', '_'))")

log "runtime requirements"
"${PIP[@]}" -q -r requirements.txt

# mmcv with compiled ops, built from its sdist against *this* torch. The wheel is cached per torch
# version because pip's own cache keys it by the sdist only, and a wheel built against another torch
# fails at import with undefined symbols.
if ! "$PY" -c "import mmcv, sys; from mmcv.ops import nms; sys.exit(mmcv.__version__ != '$MMCV_VERSION')" 2>/dev/null; then
  cache="$WHEEL_CACHE/torch-$torch_tag"
  mkdir -p "$cache"
  wheel=$(ls "$cache"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)
  if [[ -z "$wheel" ]]; then
    log "building mmcv $MMCV_VERSION with ops against torch $torch_tag (about 10 minutes on 2 cores, once)"
    tmp=$(mktemp -d)
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} "$PY" -m pip wheel --no-build-isolation --no-deps \
      --no-cache-dir --no-binary mmcv -w "$tmp" "mmcv==$MMCV_VERSION"
    mv "$tmp"/mmcv-*.whl "$cache"/ && rm -rf "$tmp"
    wheel=$(ls "$cache"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)
  fi
  log "installing $wheel"
  "${PIP[@]}" -q --no-deps --force-reinstall "$wheel"
  # mmcv's own runtime requirements (without letting pip touch mmcv or torch).
  "${PIP[@]}" -q addict packaging pyyaml yapf opencv-python
fi

log "mmdg (editable)"
"${PIP[@]}" -q --no-deps --no-build-isolation -e .

"$PY" - <<'PY'
import mmcv, mmengine, mmseg, mmdet, timm, torch
from mmcv.ops import nms  # noqa: F401  (fails if mmcv was built without ops)
print(f'[install] ok: torch {torch.__version__}, mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, '
      f'mmseg {mmseg.__version__}, mmdet {mmdet.__version__}, timm {timm.__version__}')
PY
rm -f "$VENV"/.mmdg-env-* && touch "$stamp"
