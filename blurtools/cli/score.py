"""``blurtools score``: PSNR, SSIM, LPIPS (and order-invariant video scores) over result folders."""

from __future__ import annotations

import csv
import io
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from blurtools import __version__
from blurtools.cli.common import DebugOption, DeviceOption, QuietOption, handle_errors, progress, setup_logging
from blurtools.errors import BlurtoolsError, UsageError

COMMAND_NAME = "score"


class SsimMode(str, Enum):
    skimage = "skimage"
    matlab3d = "matlab3d"


class LpipsNet(str, Enum):
    alex = "alex"
    vgg = "vgg"


def _fmt(v: Any, key: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v == float("inf"):
            return "inf"
        return f"{v:.4f}" if "ssim" in key or "lpips" in key else f"{v:.2f}"
    return str(v)


def _print_table(rows: List[Dict[str, Any]], summary: Dict[str, Any], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    keys = [k for k in rows[0] if k not in ("width", "height")]
    table = Table(title=title, show_footer=True)
    for k in keys:
        footer = "mean" if k == "name" else (f"n={summary['count']}" if k in ("order", "frames") else _fmt(summary.get(k), k))
        table.add_column(k, footer=footer, justify="left" if k in ("name", "order") else "right")
    for r in rows:
        table.add_row(*[_fmt(r.get(k), k) for k in keys])
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160).print(table)


def _write_csv(path: Path, rows: List[Dict[str, Any]], summary: Dict[str, Any], provenance: str) -> None:
    from blurtools.io.atomic import atomic_write_text

    keys = list(rows[0].keys())
    buf = io.StringIO()
    buf.write(f"# {provenance}\n")
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("inf" if v == float("inf") else v) for k, v in r.items()})
    w.writerow({k: ("mean" if k == "name" else summary.get(k, "")) for k in keys})
    atomic_write_text(path, buf.getvalue())


@handle_errors
def command(
    pred: Path = typer.Argument(..., help="Predictions: an image, a folder of images, or (with --video) sequences."),
    gt: Path = typer.Argument(..., help="Ground truth: an image, a folder matched by relative path without extension, or a sample set."),
    ssim_mode: SsimMode = typer.Option(SsimMode.skimage, "--ssim", help="skimage: Wang 2004 as skimage computes it (gaussian, sigma 1.5, population covariance); matlab3d: MATLAB ssim on RGB (the GoPro tables)."),
    y: bool = typer.Option(False, "--y", help="Score the BT.601 Y channel instead of RGB."),
    crop_border: int = typer.Option(0, "--crop-border", min=0, help="Pixels dropped on each side before scoring."),
    lpips: Optional[LpipsNet] = typer.Option(None, "--lpips", help="Add LPIPS with this trunk (needs its ImageNet weights in torchvision's cache)."),
    video: bool = typer.Option(False, "--video", help="Each prediction is a frame folder or GIF/MP4 scored order-invariantly against a sharp sequence."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write per-image rows and the mean to this CSV file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (stable keys) on stdout instead of a table."),
    ignore_unmatched: bool = typer.Option(False, "--ignore-unmatched", help="Score the matched pairs even when some predictions have no ground truth."),
    batch: int = typer.Option(8, "--batch", min=1, help="Images scored together on the device."),
    workers: int = typer.Option(2, "--workers", min=1, help="Threads decoding images."),
    device: str = DeviceOption,
    quiet: bool = QuietOption,
    debug: bool = DebugOption,
) -> None:
    """Score predictions against ground truth: PSNR, SSIM, optionally LPIPS; tables, CSV, JSON."""
    from blurtools.io.pairs import match
    from blurtools.metrics.folder_scoring import ScoreOptions, json_safe, score_image_pairs, score_sequence_pairs, summarize
    from blurtools.ops.device import resolve_device

    setup_logging(quiet)
    dev = resolve_device(device)
    matching = match(pred, gt, video=video)
    if matching.unmatched_pred and not ignore_unmatched:
        shown = ", ".join(matching.unmatched_pred[:5]) + (" ..." if len(matching.unmatched_pred) > 5 else "")
        raise BlurtoolsError(f"{pred}: {len(matching.unmatched_pred)} prediction(s) have no ground truth in {gt}: {shown} "
                             "(--ignore-unmatched scores the rest)")
    if not matching.pairs:
        raise BlurtoolsError(f"{pred}: nothing matches the ground truth in {gt}")
    if matching.unmatched_gt and not quiet:
        print(f"note: {len(matching.unmatched_gt)} ground-truth item(s) have no prediction "
              f"(e.g. {matching.unmatched_gt[0]})", file=sys.stderr)
    metric = None
    if lpips is not None:
        from blurtools.metrics.lpips_metric import LpipsMetric

        metric = LpipsMetric(net=lpips.value, device=dev)
    opts = ScoreOptions(ssim_mode=ssim_mode.value, y=y, crop_border=crop_border, batch=batch, workers=workers)
    with progress(len(matching.pairs), "scoring", quiet) as bar:
        scorer = score_sequence_pairs if video else score_image_pairs
        rows = scorer(matching.pairs, opts, dev, lpips=metric, on_done=bar.advance)
    summary = summarize(rows)
    options = {"pred": str(pred), "gt": str(gt), "ssim": ssim_mode.value, "y": y, "crop_border": crop_border,
               "lpips": lpips.value if lpips else None, "video": video}
    if csv_path is not None:
        if csv_path.is_dir():
            raise UsageError(f"--csv {csv_path}: is a folder")
        provenance = f"blurtools {__version__} score " + json.dumps(options, sort_keys=True)
        _write_csv(csv_path, rows, summary, provenance)
    if as_json:
        doc = {"tool": "blurtools score", "version": __version__, "options": options, "summary": summary,
               "items": rows, "unmatched_gt": matching.unmatched_gt, "unmatched_pred": matching.unmatched_pred}
        json.dump(json_safe(doc), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        _print_table(rows, summary, f"{pred} vs {gt}")


MAN_EXAMPLES = [
    ("Score a result folder against ground truth, as the deblurring papers do (RGB, 8-bit, no crop).",
     "blurtools score results/ GoPro/test/sharp/ --csv scores.csv"),
    ("SSIM as MATLAB computes it on RGB (the GoPro tables), with LPIPS-alex, as JSON.",
     "blurtools score results/ gt/ --ssim matlab3d --lpips alex --json > scores.json"),
    ("Score extracted videos against a sample set's sharp sequences, order-invariantly.",
     "blurtools score videos/ sets/test --video"),
]
MAN_FILES = [
    ("$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth", "AlexNet trunk for --lpips alex (supplied by the user)."),
    ("$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth", "VGG16 trunk for --lpips vgg (supplied by the user)."),
]
