#!/usr/bin/env bash
# The 20 wheels of the corpus demonstration (bench/bench_corpus.py, bench/RESULTS-corpus.md), into DIR.
# pip's --platform takes tags literally: every manylinux tag a manylinux_2_28 system accepts (PEP 600)
# that these wheels use is listed.  PyPI's x86_64 torch is a CUDA build of several GB: the CPU wheel
# bench/fetch_wheels.sh fetched (bench/wheels/) is linked instead; tflite-runtime has no newer
# x86_64 or any aarch64 wheel for Python 3.11.
# Usage: bash bench/fetch_corpus_wheels.sh DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:?usage: fetch_corpus_wheels.sh DIR}"
mkdir -p "$dest"
plat() { echo "--platform manylinux_2_28_$1 --platform manylinux_2_27_$1 --platform manylinux_2_17_$1 --platform manylinux2014_$1"; }
get() {  # get ARCH SPEC
  # shellcheck disable=SC2046
  python3 -m pip download --quiet --no-deps --only-binary=:all: $(plat "$1") --python-version 3.11 -d "$dest" "$2"
}
for spec in onnxruntime==1.20.1 onnxruntime==1.23.2 onnxruntime==1.26.0 onnxruntime==1.29.0 onnxruntime==1.31.1 \
            ai-edge-litert==1.4.0 ai-edge-litert==2.1.6 ai-edge-litert==2.3.0; do
  get x86_64 "$spec"
  get aarch64 "$spec"
done
get x86_64 tflite-runtime==2.14.0
get aarch64 torch==2.9.1
get aarch64 torch==2.13.0
cpu=$(ls "$here"/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -1)
[ -n "$cpu" ] || { echo "no torch CPU wheel in $here/wheels: bash bench/fetch_wheels.sh torch" >&2; exit 1; }
ln -sf "$cpu" "$dest/"
ls "$dest"/*.whl | wc -l
