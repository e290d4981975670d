#!/usr/bin/env bash
# Collect everything `make install` needs into one folder, for a machine without network:
#   make wheelhouse DIR=wheelhouse            (pinned torch, for the python running this script)
#   make wheelhouse DIR=wheelhouse TORCH=system   (no torch: the target machine brings its own)
#   PYTHON_VERSION=3.10 PLATFORM=manylinux2014_x86_64 make wheelhouse DIR=...   (another interpreter)
# then, on the offline machine:  make install WHEELHOUSE=wheelhouse [TORCH=system]
# mmcv comes as its source archive: its ops must be compiled there, against that machine's torch/CUDA.
# REQUIREMENTS overrides the list of requirement files (space-separated; the tests use a small one).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${1:-${DIR:-}}
[[ -n "$DIR" ]] || { echo "usage: tools/wheelhouse.sh DIR   (or make wheelhouse DIR=...)" >&2; exit 2; }
PYTHON=${PYTHON:-python3}
TORCH=${TORCH:-pinned}
MMCV_VERSION=2.1.0
if [[ -z "${REQUIREMENTS:-}" ]]; then
  REQUIREMENTS="requirements/build.txt requirements.txt requirements/mmcv_runtime.txt"
  [[ "$TORCH" == system ]] || REQUIREMENTS="requirements/torch.txt $REQUIREMENTS"
  with_mmcv=1
else
  with_mmcv=${WITH_MMCV:-0}
fi
mkdir -p "$DIR"

target=()  # pip download for another interpreter / platform needs binary wheels only
if [[ -n "${PYTHON_VERSION:-}${PLATFORM:-}" ]]; then
  target=(--only-binary=:all:)
  [[ -z "${PYTHON_VERSION:-}" ]] || target+=(--python-version "$PYTHON_VERSION")
  [[ -z "${PLATFORM:-}" ]] || target+=(--platform "$PLATFORM")
fi
reqs=()
for f in $REQUIREMENTS; do reqs+=(-r "$f"); done

echo "[wheelhouse] downloading ${REQUIREMENTS} into $DIR"
"$PYTHON" -m pip download --disable-pip-version-check --progress-bar off -d "$DIR" "${target[@]}" "${reqs[@]}"
if [[ "$with_mmcv" == 1 ]]; then
  echo "[wheelhouse] mmcv $MMCV_VERSION source archive (built on the target machine)"
  # pip prepares the sdist's metadata, which needs the setuptools mmcv's setup.py works with (<81).
  PIP_CONSTRAINT=requirements/build.txt "$PYTHON" -m pip download --disable-pip-version-check \
    --progress-bar off -d "$DIR" --no-deps --no-binary :all: "mmcv==$MMCV_VERSION"
fi
# The installer hashes the requirement files: keep a copy so a later mismatch can be spotted.
cat $REQUIREMENTS > "$DIR/requirements.lock.txt"
n=$(find "$DIR" -maxdepth 1 \( -name '*.whl' -o -name '*.tar.gz' -o -name '*.zip' \) | wc -l)
echo "[wheelhouse] $n archives in $DIR ($(du -sh "$DIR" | cut -f1)); install offline with: make install WHEELHOUSE=$DIR"
