#!/usr/bin/env bash
# Reproduce the shipped default weights (`make weights`): development data from PyPI packages ->
# blur-synth -> pack-h5 -> train (dm for deblur, niu for extract-video) -> blurtools/weights/*.pt.
#   WORK=dir DEVICE=auto|cpu|cuda DEBLUR_STEPS=N VIDEO_STEPS=N BATCH=N bash scripts/train_default_weights.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORK=${WORK:-.weights-data}
DEVICE=${DEVICE:-auto}
DEBLUR_STEPS=${DEBLUR_STEPS:-6000}
VIDEO_STEPS=${VIDEO_STEPS:-6000}
BATCH=${BATCH:-16}
PATCH=${PATCH:-128}
BT="$PY -m blurtools"
Q="--quiet"

[ -d "$WORK/dev/photos/train" ] || $PY scripts/dev_data.py "$WORK/dev"
mkdir -p "$WORK/sets"
# Still photos moved along camera-shake trajectories (real ground truth), and windows of the clips.
$BT blur-synth "$WORK/dev/photos/train" --stills --per-still 24 --trajectory-length 40 -n 7 \
    --seed 1 --device "$DEVICE" -o "$WORK/sets/train-stills" $Q
$BT blur-synth "$WORK/dev/clips/train/bikes" "$WORK/dev/clips/train/bigbuckbunny" -n 7 --stride 3 \
    --seed 2 --device "$DEVICE" -o "$WORK/sets/train-clips" $Q
$BT blur-synth "$WORK/dev/photos/heldout" --stills --per-still 6 --trajectory-length 40 -n 7 \
    --seed 3 --device "$DEVICE" -o "$WORK/sets/heldout-stills" $Q
$BT blur-synth "$WORK/dev/clips/heldout/carphone" -n 7 --stride 7 --seed 4 --device "$DEVICE" \
    -o "$WORK/sets/heldout-clips" $Q
rm -f "$WORK/train.h5"
$BT pack-h5 "$WORK/sets/train-stills" "$WORK/sets/train-clips" --patch 160 --per-image 4 --seed 5 -o "$WORK/train.h5"

$BT train --model dm --model-arg width=32 --model-arg growth=16 --data "$WORK/train.h5" \
    --val "$WORK/sets/heldout-stills" --val-limit 8 --out "$WORK/runs/deblur" --steps "$DEBLUR_STEPS" \
    --batch "$BATCH" --patch "$PATCH" --lr 3e-4 --val-every 1000 --save-every 500 --workers "${WORKERS:-4}" --device "$DEVICE" --resume $Q
$BT train --model niu --model-arg width=32 --model-arg blocks=6 --loss-weight adversarial=0 \
    --loss-weight contiguous=0 --data "$WORK/train.h5" --val "$WORK/sets/heldout-stills" --val-limit 8 \
    --out "$WORK/runs/video" --steps "$VIDEO_STEPS" --batch "$BATCH" --patch "$PATCH" --lr 3e-4 \
    --val-every 1000 --save-every 500 --workers "${WORKERS:-4}" --device "$DEVICE" --resume $Q
cp "$WORK/runs/deblur/weights.pt" blurtools/weights/deblur.pt
cp "$WORK/runs/video/weights.pt" blurtools/weights/extract_video.pt
echo "weights written: blurtools/weights/deblur.pt blurtools/weights/extract_video.pt"
