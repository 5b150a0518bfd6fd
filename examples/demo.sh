#!/usr/bin/env bash
# The demo that `make demo` runs: the main jobs on the shipped weights and bundled examples.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-demo-out}
PY=.venv/bin/python
mkdir -p "$OUT"
echo "== score: the bundled blurry example against its sharp original"
$PY -m blurtools score examples/pair/blurry examples/pair/sharp --csv "$OUT/blurry-scores.csv"
