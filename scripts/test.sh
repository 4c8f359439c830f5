#!/usr/bin/env bash
# Set up a virtual environment with the project and its test extras, then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e '.[test,tablegen]'
python -m pytest -q "$@"
