"""``blurtools report``: the command-line adapter of :mod:`blurtools.report`."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from blurtools.cli.common import DebugOption, DeviceOption, QuietOption, handle_errors, progress, setup_logging
from blurtools.cli.metric_options import CropBorderOption, LpipsNet, LpipsOption, SsimMode, SsimOption, YOption
from blurtools.errors import UsageError

COMMAND_NAME = "report"


class ImageMode(str, Enum):
    copy = "copy"
    link = "link"
    none = "none"


@handle_errors
def command(
    paths: List[Path] = typer.Argument(..., metavar="RESULTS... | RUN...", help="Result folders, one per method "
                                       "(with --gt), or training run folders (RUN/metrics.jsonl, without --gt)."),
    gt: Optional[Path] = typer.Option(None, "--gt", help="Ground truth: a folder matched by relative path without "
                                      "extension, or a sample set (as blurtools score matches)."),
    inputs: Optional[Path] = typer.Option(None, "--input", help="The blurry inputs, shown (and scored) beside the methods."),
    output: Path = typer.Option(Path("report.html"), "--output", "-o", help="The page to write; full-size pictures "
                                "go to NAME_files/ beside it."),
    labels: Optional[List[str]] = typer.Option(None, "--label", help="A method's name on the page, once per "
                                               "folder in order (default: the folder names)."),
    video: bool = typer.Option(False, "--video", help="The results are sequences (extract-video frame folders, "
                               "GIF, MP4), scored order-invariantly and played side by side."),
    images: ImageMode = typer.Option(ImageMode.copy, "--images", help="Full-size pictures for the viewer: copy "
                                     "them into NAME_files/ (the page and that folder can be moved together), link "
                                     "to the originals by relative path, or none (the viewer zooms the embedded "
                                     "thumbnails; the page is then a single file)."),
    title: Optional[str] = typer.Option(None, "--title", help="The page's title."),
    ssim_mode: SsimMode = SsimOption,
    y: bool = YOption,
    crop_border: int = CropBorderOption,
    lpips: Optional[LpipsNet] = LpipsOption,
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Threads decoding and scoring (default: "
                                          "the CPU count, at most 8)."),
    device: str = DeviceOption,
    quiet: bool = QuietOption,
    debug: bool = DebugOption,
) -> None:
    """Make one HTML page to look at results: methods side by side against the ground truth, or training curves.

    With --gt, each RESULTS folder is a method, scored by the scorer of blurtools score. The page gives per method the count, mean and median PSNR / SSIM (LPIPS with --lpips), the convention and a histogram; the best and worst samples of each method; a table of every sample that sorts by any column and by the PSNR gap between methods; and a viewer (click a row) showing input | method A | method B | ... | ground truth with synchronised zoom and pan and an error-map toggle. With --video the results are sequences, played side by side in the frame order the scorer chose, with per-frame PSNR. Without --gt, the paths are training runs: loss and validation curves of all of them on shared axes, stages marked, with their configurations. The page works offline: its style, script, charts (SVG) and thumbnails are inside it, and it refers to no URL.
    """
    from blurtools.metrics.folder_scoring import ScoreOptions
    from blurtools.ops.device import resolve_device
    from blurtools.report import collect, is_run_folder, read_run, results_report, training_report

    setup_logging(quiet)
    if output.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"-o {output}: the report is an HTML file; give a name ending in .html")
    if gt is None:
        not_runs = [p for p in paths if not is_run_folder(p)]
        if not_runs:
            raise UsageError(f"{not_runs[0]}: not a training run (no metrics.jsonl); to compare result folders, "
                             "give the ground truth with --gt")
        names = labels or [p.resolve().name for p in paths]
        if len(names) != len(paths):
            raise UsageError(f"--label given {len(names)} time(s) for {len(paths)} run(s)")
        runs = [read_run(p, n) for p, n in zip(paths, names)]
        training_report(runs, output, {"runs": [str(p) for p in paths], "labels": names}, _argv(), title)
        _done(output, quiet)
        return
    opts = ScoreOptions(ssim_mode=ssim_mode.value, y=y, crop_border=crop_border,
                        workers=workers or min(8, os.cpu_count() or 1))
    metric = None
    dev = resolve_device(device)
    if lpips is not None:
        from blurtools.metrics.lpips_metric import LpipsMetric

        metric = LpipsMetric(net=lpips.value, device=dev)
    options = {"results": [str(p) for p in paths], "labels": labels or None, "gt": str(gt),
               "input": str(inputs) if inputs else None, "video": video, "images": "none" if video else images.value,
               "ssim": ssim_mode.value, "y": y, "crop_border": crop_border, "lpips": lpips.value if lpips else None}
    with progress(None, "scoring", quiet) as bar:
        results = collect(paths, labels or [], gt, inputs, opts, dev, video=video, lpips=metric, on_done=bar.advance)
    with progress(len(results.samples), "pictures", quiet) as bar:
        results_report(results, output, images.value, options, _argv(), title, opts.workers, bar.advance)
    _done(output, quiet)


def _argv() -> List[str]:
    """The command line as a user types it (``blurtools report ...``, whatever started the process)."""
    return ["blurtools", *sys.argv[sys.argv.index("report"):]] if "report" in sys.argv else list(sys.argv)


def _done(output: Path, quiet: bool) -> None:
    if not quiet:
        size = output.stat().st_size / 1e6
        print(f"wrote {output} ({size:.1f} MB)", file=sys.stderr)


MAN_EXAMPLES = [
    ("Compare two methods with the blurry inputs against the ground truth; open report.html in any browser.",
     "blurtools report out/nafnet out/deblurgan --gt GoPro/test/sharp --input GoPro/test/blur -o report.html"),
    ("Name the methods, add LPIPS, keep the page a single file (the viewer zooms the thumbnails).",
     "blurtools report a/ b/ --label ours --label baseline --gt gt/ --lpips alex --images none -o cmp.html"),
    ("Videos extracted from blurry images (frame folders, GIF or MP4) against a sample set's sharp frames.",
     "blurtools report videos/jin videos/ours --gt sets/test --video -o videos.html"),
    ("Training curves of two runs on shared axes, stages marked, with their configurations.",
     "blurtools report runs/dm-small runs/dm-large -o training.html"),
]
MAN_FILES = [
    ("NAME.html", "The page: style, script, SVG charts, thumbnails and the scores inline; no external URL."),
    ("NAME_files/", "Full-size pictures (with --images copy) and error maps the viewer loads on demand."),
]
