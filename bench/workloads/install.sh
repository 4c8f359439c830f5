#!/usr/bin/env bash
# Install each target runtime into its own virtual environment under bench/out/venvs/<name> (git-ignored),
# from wheels downloaded by pip into bench/out/wheels so their sha256 can be recorded in the dev set.
# Usage: bash bench/workloads/install.sh [ort] [torch] [tflite] [litert]    (default: all; idempotent)
# Why separate venvs: tflite-runtime 2.14 is built against the NumPy 1.x ABI (needs numpy<2), while
# onnxruntime 1.31 and ai-edge-litert 2.3 are used with a current NumPy; torch brings its own stack.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${BENCH_OUT:-$here/../out}"
mkdir -p "$out/venvs" "$out/wheels"
py="${PYTHON:-python3}"
declare -A MAIN=(
  [ort]="onnxruntime==1.31.1"
  [torch]="torch==2.13.0"
  [tflite]="tflite-runtime==2.14.0"
  [litert]="ai-edge-litert==2.3.0"
)
# Helpers a workload needs beside the runtime: onnx builds the ONNX models (make_onnx_models.py); tflite's
# venv pins numpy<2 (NumPy 1.x ABI); the TFLite models are built in the litert venv with the flatbuffers
# schema module ai-edge-litert ships (make_tflite_models.py).
declare -A EXTRA=(
  [ort]="onnx numpy"
  [torch]="numpy"
  [tflite]="numpy<2"
  [litert]="numpy"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(ort torch tflite litert)
for name in "${names[@]}"; do
  spec="${MAIN[$name]:?unknown runtime $name}"
  venv="$out/venvs/$name"
  if [ -f "$venv/.installed" ]; then echo "have $name ($venv)"; continue; fi
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip download -q --no-deps --only-binary=:all: -d "$out/wheels" "$spec"
  dist="${spec%%==*}"; ver="${spec##*==}"
  whl=$(ls "$out/wheels/" | grep -i "^$(echo "$dist" | tr - _)-$ver[-+]" | head -1)
  [ -n "$whl" ] || { echo "no wheel for $spec in $out/wheels" >&2; exit 1; }
  # shellcheck disable=SC2086
  "$venv/bin/python" -m pip install -q "$out/wheels/$whl" ${EXTRA[$name]}
  "$venv/bin/python" -m pip freeze > "$venv/freeze.txt"
  echo "$whl" > "$venv/.installed"
  echo "installed $name: $whl"
done
