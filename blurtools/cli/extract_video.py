"""``extract-video``: the short sharp video hidden in a motion-blurred image, as GIF, MP4, WebP or PNG frames."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from blurtools.cli.common import file_progress, handle_errors, run_standalone, setup_logging, with_requests
from blurtools.infer.request import (ExtractRequest, VideoRequest, check_failures, plan_extract_run, run_extract,
                                     summary_text)

COMMAND_NAME = "extract-video"


@handle_errors
@with_requests({"video": VideoRequest, "request": ExtractRequest}, shared=("json_out", "quiet", "debug"))
def command(
    inputs: List[str] = typer.Argument(..., help="Blurry images: files, folders (searched recursively) or quoted globs such as 'shots/*.png'."),
    output: Path = typer.Option(..., "--output", "-o", help="out.gif, out.mp4, out.webp, or a folder of numbered PNGs (one input); a folder (many inputs)."),
    *, video: VideoRequest, request: ExtractRequest, json_out: bool, quiet: bool, debug: bool,
) -> None:
    """Turn each blurry image into the short sharp video it hides: GIF, MP4, WebP or numbered PNG frames.

    The output's extension picks the format; a name without one is a folder of frames 0000.png ... Many inputs go into the folder -o, one output per input (--format). Images of any size run in bounded memory through overlapping windows (--tile), kept playing in one direction across windows. Without --weights the shipped default weights are used; --model classical needs no weights (the deblurred image moved along the estimated blur path). Every output records the tool, version, options and model (PNG text, GIF comment, MP4 metadata, WebP XMP; meta.json in output folders).
    """
    setup_logging(quiet)
    plan = plan_extract_run(request, video, inputs, output)
    with file_progress(len(plan.jobs), COMMAND_NAME, quiet) as (on_done, on_window):
        outcome = run_extract(request, video, inputs, output, plan, on_done=on_done, on_window=on_window)
    print(summary_text(COMMAND_NAME, output, outcome, json_out, "video(s)"), flush=True)
    check_failures(outcome, len(plan.jobs))


def main() -> None:
    run_standalone(command, COMMAND_NAME)


MAN_EXAMPLES = [
    ("A GIF from one blurry photo with the shipped weights.", "extract-video blurry.png -o out.gif"),
    ("28 frames (frame multiplication), forward and back, at 15 fps, with a contact sheet.",
     "extract-video blurry.png -o out.mp4 --frames 28 --boomerang --fps 15 --sheet sheet.png"),
    ("Numbered PNG frames, ready for `blurtools score --video`.", "extract-video blurry.png -o frames/"),
    ("A folder of blurry images into a folder of GIFs, with a checkpoint from `blurtools train`.",
     "extract-video shots/ -o videos/ --weights runs/niu/weights.pt"),
    ("No weights: the classical method (deblur, then move along the estimated blur path).",
     "extract-video blurry.png -o out.gif --model classical"),
    ("Jin et al.'s released cascade (the folder holding center_v3.pth, F35_N8.pth, F26_N9_from_F35_N8.pth and "
     "F17_N9_from_F26_N9_from_F35_N8.pth): 16-bit frames in the authors' order, the network alone.",
     "extract-video blurry16.png -o frames/ --weights jin_models/"),
]
MAN_FILES = [
    ("blurtools/weights/extract_video.pt", "The shipped default weights (see blurtools/weights/MODEL_CARD.md)."),
    ("OUT/meta.json", "Tool, version, options, model and the list of inputs and outputs (meta.shard-I-of-N.json for a shard)."),
]
