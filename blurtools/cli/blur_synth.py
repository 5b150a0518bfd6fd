"""``blur-synth``: blurry/sharp training pairs from sharp video, frame folders, dataset trees and photos."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from blurtools.cli.common import handle_errors, progress, run_standalone, setup_logging, with_requests
from blurtools.synth.request import SynthRequest, run_blur_synth, summary_text

COMMAND_NAME = "blur-synth"

MAN_EXAMPLES = [
    ("GoPro-style pairs: 7-frame windows of every sequence of a GoPro_Large_all tree, gamma 2.2.",
     "blur-synth GOPRO_Large_all -o sets/gopro7 --frames 7 --crf gamma:2.2"),
    ("REDS-style: 8x flow interpolation before averaging, sRGB response, RSBlur noise and saturation.",
     "blur-synth train_orig -o sets/reds --interp 8 --crf srgb --noise rsblur --saturation"),
    ("Split a big job over two machines writing into one set (re-run to resume).",
     "blur-synth clips/ -o sets/big --shard 0/2    # and --shard 1/2 on the other"),
    ("Still photos moved along camera-shake trajectories, 4 samples each.",
     "blur-synth photos/ --stills --per-still 4 -o sets/shake"),
]
MAN_FILES = [
    ("SET/meta.json", "Tool, version and every option that determines the samples."),
    ("SET/samples.jsonl", "One line per finished sample (samples.shard-I-of-N.jsonl for --shard runs)."),
    ("SET/blurry/ID.png, SET/sharp/ID/K.png", "The blurry image and its N sharp frames (K = 0000..N-1)."),
    ("SET/kernel/ID.npy", "For still photos: the whole-exposure blur kernel (float32, sums to 1)."),
]

@handle_errors
@with_requests({"request": SynthRequest}, shared=("json_out", "quiet", "debug"))
def command(
    sources: List[Path] = typer.Argument(..., help="Video files, frame folders, dataset trees (GoPro_Large_all, REDS train_orig) or still photos."),
    output: Path = typer.Option(..., "--output", "-o", help="Sample-set folder to write (an existing set made with the same options is resumed)."),
    *, request: SynthRequest, json_out: bool, quiet: bool, debug: bool,
) -> None:
    """Make blurry/sharp pairs by averaging N consecutive sharp frames in linear light.

    Each window of N frames (every --stride frames) becomes one sample: the blurry image g(mean g^-1(S_i)) and all N sharp frames; the middle one, N//2, is the single-image ground truth. Windows crossing a scene cut are rejected, and trailing frames that fill no window are skipped; both are counted in the summary. Still photos are moved along random camera-shake trajectories (their kernels are saved as kernel/ID.npy). Re-running over an existing set skips finished samples; --shard I/N writes only that shard, and shards may share one output folder.
    """
    setup_logging(quiet)
    with progress(None, COMMAND_NAME, quiet) as bar:
        stats = run_blur_synth(sources, output, request, on_window=lambda s: bar.advance(), tool=COMMAND_NAME)
    print(summary_text(COMMAND_NAME, output, stats, json_out), flush=True)


def main() -> None:
    run_standalone(command, COMMAND_NAME)
