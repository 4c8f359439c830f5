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
# exit code 1 means "gaps found", which is the expected answer for an ML runtime on Unikraft
uk-depscan "$lib" || [ $? -eq 1 ]
for fmt in html json md; do
  # --libc glibc: shipped Debian 12 glibc summaries, so the sample does not depend on this host's libc
  uk-depscan "$lib" --quiet --libc glibc --format "$fmt" -o "reports/libonnxruntime.so.1.31.1.$fmt" || [ $? -eq 1 ]
done
echo "reports: reports/libonnxruntime.so.1.31.1.{html,json,md}"
