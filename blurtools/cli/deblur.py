"""``blurtools deblur``: sharp images from motion-blurred ones (shipped weights, any checkpoint, or classical)."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from blurtools.cli.common import file_progress, handle_errors, setup_logging, with_requests
from blurtools.infer.request import DeblurRequest, check_failures, plan_deblur_run, run_deblur, summary_text

COMMAND_NAME = "deblur"

@handle_errors
@with_requests({"request": DeblurRequest}, shared=("json_out", "quiet", "debug"))
def command(
    inputs: List[str] = typer.Argument(..., help="Blurry images: files, folders (searched recursively) or quoted globs such as 'shots/**/*.jpg'."),
    output: Path = typer.Option(..., "--output", "-o", help="Output file (one input) or folder (mirrors the inputs' trees)."),
    *, request: DeblurRequest, json_out: bool, quiet: bool, debug: bool,
) -> None:
    """Deblur images: one file to -o FILE, or many (folders, globs) into the folder -o OUT.

    Any size runs in bounded memory through overlapping windows blended without seams (--tile). 16-bit inputs give 16-bit PNGs, gray stays gray. Folder outputs are PNGs mirroring the input tree, with a meta.json that records the tool, version, options and model; every PNG also carries that record in its text chunks. Without --weights the shipped default weights are used, with the classical deconvolution blended in where the network or the deconvolution finds evidence of blur (--refine); --model classical needs no weights, and --kernel K.png deconvolves with a known kernel.
    """
    setup_logging(quiet)
    plan = plan_deblur_run(request, inputs, output)
    with file_progress(len(plan.jobs), COMMAND_NAME, quiet) as (on_done, on_window):
        outcome = run_deblur(request, inputs, output, plan, on_done=on_done, on_window=on_window)
    print(summary_text(COMMAND_NAME, output, outcome, json_out, "image(s)"), flush=True)
    check_failures(outcome, len(plan.jobs))


MAN_EXAMPLES = [
    ("Deblur one photo with the shipped weights.", "blurtools deblur photo.jpg -o sharp.png"),
    ("A folder tree of photos on the GPU, into a mirrored tree of PNGs.", "blurtools deblur shots/ -o sharp/ --device cuda"),
    ("A checkpoint from `blurtools train`, big windows, split over two machines.",
     "blurtools deblur 'raw/**/*.png' -o out/ --weights runs/dm/weights.pt --tile 1024 --shard 0/2"),
    ("No weights: blind estimation of a general kernel and deconvolution.",
     "blurtools deblur blurry.png -o sharp.png --model classical"),
    ("Non-blind deconvolution with a measured kernel.", "blurtools deblur blurry.png -o sharp.png --kernel psf.png"),
    ("DeblurGAN's released generator (PyTorch 0.3 file, read safely), the network alone.",
     "blurtools deblur blurry.png -o sharp.png --weights latest_net_G.pth"),
    ("NAFNet as its authors publish it (the network alone), 16-bit in and out.",
     "blurtools deblur photo16.png -o sharp16.png --weights NAFNet-GoPro-width64.pth"),
    ("Carbajal et al.'s kernel basis and their Richardson-Lucy restoration, with the kernels written out.",
     "blurtools deblur shots/ -o sharp/ --weights TwoHeads.pkl --save-kernels kernels/"),
]
MAN_FILES = [
    ("blurtools/weights/deblur.pt", "The shipped default weights (see blurtools/weights/MODEL_CARD.md)."),
    ("OUT/meta.json", "Tool, version, options, model and the list of inputs and outputs (meta.shard-I-of-N.json for a shard)."),
]
