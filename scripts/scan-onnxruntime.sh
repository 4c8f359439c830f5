#!/usr/bin/env bash
# Set up, fetch the onnxruntime 1.31.1 wheel with pip, and scan libonnxruntime.so into reports/.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet .
bash bench/fetch_wheels.sh onnxruntime
lib=bench/wheels/x/onnxruntime/onnxruntime/capi/libonnxruntime.so.1.31.1
uk-depscan deps "$lib"
uk-depscan "$lib" || true
uk-depscan "$lib" --format json -o reports/libonnxruntime.so.1.31.1.json || [ $? -eq 1 ]
echo "report: reports/libonnxruntime.so.1.31.1.json"
