"""``extract-video``: the short sharp video hidden in a motion-blurred image, as GIF, MP4, WebP or PNG frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from blurtools.cli.common import (DebugOption, DeviceOption, QuietOption, ShardOption, handle_errors, parse_shard,
                                  progress, run_standalone, setup_logging)
from blurtools.cli.deblur import (AmpOption, BatchOption, CrfOption, DeconvOption, JsonOption, KeepGoingOption, KernelMethodOption,
                                  KernelOption, KernelSizeOption, ModelOption, OverlapOption, SkipOption, TileOption,
                                  build_predictor, check_tile, finish, resolve_runtime)

COMMAND_NAME = "extract-video"


@handle_errors
def command(
    inputs: List[str] = typer.Argument(..., help="Blurry images: files, folders (searched recursively) or quoted globs such as 'shots/*.png'."),
    output: Path = typer.Option(..., "--output", "-o", help="out.gif, out.mp4, out.webp, or a folder of numbered PNGs (one input); a folder (many inputs)."),
    frames: Optional[int] = typer.Option(None, "--frames", "-n", help="Frames to make (default: the model's own count, 7 for classical); other counts go through frame multiplication."),
    fps: float = typer.Option(10.0, "--fps", help="Frames per second of GIF, MP4 and WebP outputs."),
    loop: Optional[int] = typer.Option(None, "--loop", help="Times the animation plays, 0 = forever (default: forever for GIF and WebP; MP4 has no loop flag: N writes the frames N times)."),
    boomerang: bool = typer.Option(False, "--boomerang", help="Play forward then back (hides which way time runs, which one blurry image cannot tell)."),
    sheet: Optional[Path] = typer.Option(None, "--sheet", help="Also write a contact sheet: each blurry input beside its frames (PNG)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="gif, mp4, webp or png (a frame folder) for each input in the folder -o (default: from -o's extension; gif for many inputs)."),
    model: str = ModelOption,
    weights: Optional[List[Path]] = typer.Option(None, "--weights", help="A checkpoint written by `blurtools train`, or an authors' published checkpoint (detected from its contents); Jin et al.'s released cascade as the folder holding its four files, or the four files (--weights A --weights B ...)."),
    kernel: Optional[Path] = KernelOption,
    kernel_size: int = KernelSizeOption,
    kernel_method: str = KernelMethodOption,
    deconv: str = DeconvOption,
    crf: str = CrfOption,
    refine: Optional[str] = typer.Option(None, "--refine", help="Networks: classical (with the shipped weights: the default deblur, network and classical, moved along the estimated blur path, each frame as sharp as deblur's output; with a checkpoint of yours: its frames sharpened by that deblur; a still video where the deblur finds no evidence of blur) or none (the video network alone). Default: classical with blurtools' weights, none with an authors' published checkpoint."),
    tile: Optional[int] = TileOption,
    overlap: int = OverlapOption,
    batch: Optional[int] = BatchOption,
    amp: bool = AmpOption,
    skip_existing: bool = SkipOption,
    keep_going: bool = KeepGoingOption,
    shard: Optional[str] = ShardOption,
    device: str = DeviceOption,
    json_out: bool = JsonOption,
    quiet: bool = QuietOption,
    debug: bool = DebugOption,
) -> None:
    """Turn each blurry image into the short sharp video it hides: GIF, MP4, WebP or numbered PNG frames.

    The output's extension picks the format; a name without one is a folder of frames 0000.png ... Many inputs go into the folder -o, one output per input (--format). Images of any size run in bounded memory through overlapping windows (--tile), kept playing in one direction across windows. Without --weights the shipped default weights are used; --model classical needs no weights (the deblurred image moved along the estimated blur path). Every output records the tool, version, options and model (PNG text, GIF comment, MP4 metadata, WebP XMP; meta.json in output folders).
    """
    from blurtools import __version__
    from blurtools.errors import UsageError
    from blurtools.infer.deblur import shard_jobs, write_meta
    from blurtools.infer.extract import ExtractOptions, extract_files, plan_extract, write_sheet
    from blurtools.io.images import IMAGE_EXTENSIONS

    setup_logging(quiet)
    if frames is not None and frames < 1:
        raise UsageError(f"--frames {frames}: must be >= 1")
    if fps <= 0:
        raise UsageError(f"--fps {fps}: must be > 0")
    if loop is not None and loop < 0:
        raise UsageError(f"--loop {loop}: must be >= 0")
    if sheet is not None:
        if sheet.suffix.lower() not in IMAGE_EXTENSIONS:
            raise UsageError(f"--sheet {sheet}: give an image file name, e.g. sheet.png")
        if sheet.is_dir():
            raise UsageError(f"--sheet {sheet}: is an existing folder; give an image file name")
    dev, tile, overlap, batch = resolve_runtime(device, tile, overlap, batch)
    part = parse_shard(shard)
    jobs, folder_mode = plan_extract(inputs, output, fmt.lower() if fmt else None)
    jobs = shard_jobs(jobs, part)
    predictor = build_predictor("video", model, weights or None, kernel, kernel_size, kernel_method, deconv, dev, amp,
                                crf, refine if model != "classical" and kernel is None else "none")
    tile = check_tile(predictor.default_tile() if tile is None else tile, overlap)
    options: Dict[str, Any] = {"inputs": [str(i) for i in inputs], "output": str(output), "format": fmt,
                               "frames": frames, "fps": fps, "loop": loop, "boomerang": boomerang,
                               "sheet": str(sheet) if sheet else None, "model": predictor.provenance["model"],
                               "weights": [str(w) for w in weights] if weights else None, "kernel": str(kernel) if kernel else None,
                               "tile": tile, "overlap": overlap, "batch": batch, "device": str(dev), "amp": amp,
                               "shard": shard, "refine": "classical" if "refine" in predictor.provenance else "none", "crf": crf}
    record = {"tool": "blurtools extract-video", "version": __version__, "options": options, "model": predictor.provenance}
    opts = ExtractOptions(tile=tile, overlap=overlap, batch=batch, skip_existing=skip_existing, keep_going=keep_going,
                          frames=frames, fps=fps, loop=loop, boomerang=boomerang, sheet_height=192 if sheet else 0)
    single = len(jobs) == 1          # one image: the bar counts its windows instead
    with progress(None if single else len(jobs), "extract-video", quiet) as bar:
        outcome, thumbs = extract_files(predictor, jobs, opts, record,
                                        on_done=None if single else (lambda job: bar.advance()),
                                        on_window=(lambda done, total: bar.update(total=total, completed=done)) if single else None)
    if sheet is not None and thumbs:
        write_sheet(sheet, thumbs, record)
    meta_dir = output if folder_mode else (output if jobs and jobs[0].fmt == "png" and output.is_dir() else None)
    if meta_dir is not None:
        write_meta(meta_dir, "extract-video", options, predictor.provenance, outcome.items, part,
                   extra={"skipped": outcome.skipped, "failed": [{"input": s, "error": m} for s, m in outcome.failed]})
    finish("extract-video", output, outcome, len(jobs), json_out, "video(s)")


def main() -> None:
    run_standalone(command, "extract-video")


MAN_EXAMPLES = [
    ("A GIF from one blurry photo with the shipped weights.", "extract-video blurry.png -o out.gif"),
    ("28 frames (frame multiplication), forward and back, at 15 fps, with a contact sheet.",
     "extract-video blurry.png -o out.mp4 --frames 28 --boomerang --fps 15 --sheet sheet.png"),
    ("Numbered PNG frames, ready for `blurtools score --video`.", "extract-video blurry.png -o frames/"),
    ("A folder of blurry images into a folder of GIFs, with a checkpoint from `blurtools train`.",
     "extract-video shots/ -o videos/ --weights runs/niu/weights.pt"),
    ("No weights: the classical method (deblur, then move along the estimated blur path).",
     "extract-video blurry.png -o out.gif --model classical"),
]
MAN_FILES = [
    ("blurtools/weights/extract_video.pt", "The shipped default weights (see blurtools/weights/MODEL_CARD.md)."),
    ("OUT/meta.json", "Tool, version, options, model and the list of inputs and outputs (meta.shard-I-of-N.json for a shard)."),
]
