#!/usr/bin/env bash
# Regenerate reports/: HTML, JSON and Markdown for each ML runtime and a combined report of all of
# them (with the greedy plan), against the newest shipped Unikraft table and the shipped glibc
# model, so the bytes do not depend on this machine's libc.  Fetches the wheels with pip.
# Usage: bash scripts/make_sample_reports.sh   (after: pip install .)
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/fetch_wheels.sh onnxruntime torch tflite litert
x=bench/wheels/x
declare -A LIBS=(
  [libonnxruntime.so.1.31.1]="$x/onnxruntime/onnxruntime/capi/libonnxruntime.so.1.31.1"
  [libtorch_cpu.so]="$x/torch/torch/lib/libtorch_cpu.so"
  [tflite_runtime-2.14.0]="$x/tflite/tflite_runtime/_pywrap_tensorflow_interpreter_wrapper.so"
  [ai_edge_litert-2.3.0-libLiteRt.so]="$x/litert/ai_edge_litert/libLiteRt.so"
)
mkdir -p reports
for name in "${!LIBS[@]}"; do
  for fmt in html json md; do
    # exit code 1 = gaps found, the expected answer
    uk-depscan "${LIBS[$name]}" --quiet --libc glibc --format "$fmt" -o "reports/$name.$fmt" || [ $? -eq 1 ]
  done
done
for fmt in html json md; do
  uk-depscan "${LIBS[libonnxruntime.so.1.31.1]}" "${LIBS[libtorch_cpu.so]}" "${LIBS[tflite_runtime-2.14.0]}" \
    "${LIBS[ai_edge_litert-2.3.0-libLiteRt.so]}" --quiet --libc glibc --format "$fmt" -o "reports/combined.$fmt" \
    || [ $? -eq 1 ]
done
ls -la reports
