#!/usr/bin/env bash
# Collect everything `make install` needs into one folder, for a machine without network:
#   make wheelhouse DIR=wheelhouse            (pinned torch, for the python running this script)
#   make wheelhouse DIR=wheelhouse TORCH=system   (no torch: the target machine brings its own)
#   PYTHON_VERSION=3.10 PLATFORM=manylinux2014_x86_64 make wheelhouse DIR=...   (another interpreter)
#   PRESENT=freeze.txt      leave out what the target already has (its `pip list --format=freeze`)
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
  [[ -z "${PLATFORM:-}" ]] || for p in $PLATFORM; do target+=(--platform "$p"); done  # several: "a b"
fi
reqs=()
for f in $REQUIREMENTS; do reqs+=(-r "$f"); done

# Resolve here, online, and write the exact list the target installs with --no-deps: nothing is left to
# resolve offline, and what the target already has (its torch; with PRESENT, its other packages) stays out.
echo "[wheelhouse] resolving ${REQUIREMENTS}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m pip install --disable-pip-version-check --dry-run --ignore-installed --quiet --target "$tmp/unused" \
  --report "$tmp/resolution.json" "${target[@]}" "${reqs[@]}"
lock_args=()
[[ "$TORCH" != system ]] || lock_args+=(--system-torch)
[[ -z "${PRESENT:-}" ]] || lock_args+=(--present "$PRESENT")
[[ -z "${PYTHON_VERSION:-}" ]] || lock_args+=(--python-version "$PYTHON_VERSION")
"$PYTHON" -m mmdg.utils.wheelhouse_lock "$tmp/resolution.json" --requirements $REQUIREMENTS --out "$DIR/install.lock.txt" \
  "${lock_args[@]}"
echo "[wheelhouse] downloading $(wc -l < "$DIR/install.lock.txt") packages into $DIR"
"$PYTHON" -m pip download --disable-pip-version-check --progress-bar off --no-deps -d "$DIR" "${target[@]}" \
  -r "$DIR/install.lock.txt"
if [[ "$with_mmcv" == 1 ]]; then
  echo "[wheelhouse] mmcv $MMCV_VERSION source archive (built on the target machine)"
  # pip prepares the sdist's metadata, which needs the setuptools mmcv's setup.py works with (<81).
  PIP_CONSTRAINT=requirements/build.txt "$PYTHON" -m pip download --disable-pip-version-check \
    --progress-bar off -d "$DIR" --no-deps --no-binary :all: "mmcv==$MMCV_VERSION"
fi
# The requirement files it was made from, so a later mismatch can be spotted.
cat $REQUIREMENTS > "$DIR/requirements.in.txt"
n=$(find "$DIR" -maxdepth 1 \( -name '*.whl' -o -name '*.tar.gz' -o -name '*.zip' \) | wc -l)
echo "[wheelhouse] $n archives in $DIR ($(du -sh "$DIR" | cut -f1)); install offline with: make install WHEELHOUSE=$DIR"
