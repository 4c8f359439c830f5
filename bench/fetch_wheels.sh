#!/usr/bin/env bash
# Fetch the real ML wheels with pip and extract them under bench/wheels/x/<name>/.
# Usage: bash bench/fetch_wheels.sh [onnxruntime] [torch] [tflite] [litert]   (default: all)
# The extracted tree is what the realwheel tests and the benchmarks read (UK_DEPSCAN_WHEELS).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${UK_DEPSCAN_WHEEL_DIR:-$here/wheels}"
mkdir -p "$dest/x"
declare -A SPEC=(
  [onnxruntime]="onnxruntime==1.31.1"
  [torch]="torch==2.13.0"
  [tflite]="tflite-runtime==2.14.0"
  [litert]="ai-edge-litert==2.3.0"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(onnxruntime torch tflite litert)
for name in "${names[@]}"; do
  spec="${SPEC[$name]:?unknown wheel $name}"
  if [ -d "$dest/x/$name" ]; then echo "have $name"; continue; fi
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dest" "$spec"
  whl=$(ls -t "$dest"/"$(echo "${spec%%==*}" | tr - _)"-"${spec##*==}"*.whl 2>/dev/null | head -1)
  [ -n "$whl" ] || whl=$(ls -t "$dest"/*"${spec##*==}"*.whl | grep -i "${spec%%==*}" | head -1)
  python3 - "$whl" "$dest/x/$name" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])  # trusted: wheels we just fetched by name
PY
  echo "extracted $whl -> $dest/x/$name"
done
