#!/usr/bin/env bash
# What `make demo` runs: the main jobs on the shipped default weights and the bundled examples.
#   examples/clock.png         a real motion-blurred photo (scikit-image's `clock`, public domain)
#   examples/pair/{blurry,sharp}/coffee.png   a blurred photo and its sharp original
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-demo-out}
BT=".venv/bin/python -m blurtools"
mkdir -p "$OUT"

echo "== extract-video: the short sharp video hidden in a real blurry photo"
.venv/bin/extract-video examples/clock.png -o "$OUT/clock.gif" --boomerang --sheet "$OUT/clock-sheet.png"

echo "== deblur: the bundled blurry photos, with the shipped weights and with the classical method"
$BT deblur examples/pair/blurry/coffee.png examples/clock.png -o "$OUT/deblurred/"
$BT deblur examples/pair/blurry/coffee.png -o "$OUT/classical/coffee.png" --model classical

echo "== extract-video on the synthetic example, as a contact sheet"
.venv/bin/extract-video examples/pair/blurry/coffee.png -o "$OUT/coffee.gif" --sheet "$OUT/coffee-sheet.png"

echo "== score: blurry input, default deblur and classical against the sharp original"
$BT score examples/pair/blurry examples/pair/sharp
$BT score "$OUT/deblurred/coffee.png" examples/pair/sharp/coffee.png
$BT score "$OUT/classical" examples/pair/sharp --csv "$OUT/classical-scores.csv"

echo "demo outputs in $OUT/: clock.gif, clock-sheet.png, coffee.gif, coffee-sheet.png, deblurred/, classical/"
