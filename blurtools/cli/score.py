"""``blurtools score``: PSNR, SSIM, LPIPS (and order-invariant video scores) over result folders."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import typer

from blurtools import __version__
from blurtools.cli.common import (DebugOption, DeviceOption, JsonOption, QuietOption, handle_errors, parse_shard, progress,
                                  setup_logging)
from blurtools.cli.metric_options import CropBorderOption, LpipsNet, LpipsOption, SsimMode, SsimOption, YOption
from blurtools.errors import BlurtoolsError, UsageError

COMMAND_NAME = "score"


class AlignModel(str, Enum):
    translation = "translation"
    homography = "homography"


class SsimWindow(str, Enum):
    window = "window"
    centre = "centre"


# Wide or free-text columns stay out of the table (they are in the CSV and JSON).
_TABLE_SKIP = ("width", "height", "homography", "reason", "frame_psnr")


def _fmt(v: Any, key: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v == float("inf"):
            return "inf"
        return f"{v:.4f}" if "ssim" in key or "lpips" in key or key == "alpha" else f"{v:.2f}"
    return str(v)


def _footer(key: str, summary: Dict[str, Any]) -> str:
    if key == "name":
        return "mean"
    if key in ("order", "frames"):
        return f"n={summary['count']}"
    if key == "status":
        return f"{summary.get('unaligned', 0)} unaligned"
    if key in ("gt_frame", "gt_frames", "dx", "dy", "alpha"):
        return ""
    return _fmt(summary.get(key), key)


def _print_table(rows: List[Dict[str, Any]], summary: Dict[str, Any], title: str, notes: List[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    keys = [k for k in rows[0] if k not in _TABLE_SKIP]
    table = Table(show_footer=True)
    for k in keys:
        table.add_column(k, footer=_footer(k, summary), justify="left" if k in ("name", "order", "status") else "right")
    for r in rows:
        table.add_row(*[_fmt(r.get(k), k) for k in keys])
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160)
    console.print(title, highlight=False, soft_wrap=True)
    console.print(table)
    for note in notes:
        console.print(note, highlight=False, soft_wrap=True, markup=False)


def _coverage_notes(summary: Dict[str, Any], missing: List[str]) -> List[str]:
    """Lines saying what the means cover: missing predictions first, then capped PSNRs, gray conversions."""
    from blurtools.metrics.score_notes import IDENTICAL_PSNR_DB

    notes = []
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        notes.append(f"mean over {summary['count']}: {len(missing)} of {summary['count'] + len(missing)} "
                     f"ground-truth item(s) have no prediction ({shown})")
    if summary.get("psnr_capped"):
        notes.append(f"{summary['psnr_capped']} identical pair(s): PSNR capped at {IDENTICAL_PSNR_DB:g} dB (MSE = 0)")
    if summary.get("converted_to_gray"):
        notes.append(f"{summary['converted_to_gray']} RGB prediction(s) converted to gray (L = 0.299 R + 0.587 G + "
                     "0.114 B) to meet their gray ground truth")
    return notes


def _csv_value(v: Any) -> Any:
    if isinstance(v, list):  # a homography: its 9 numbers, row-major, space-separated
        flat = [x for row in v for x in (row if isinstance(row, list) else [row])]
        return " ".join(f"{x:.9g}" for x in flat)
    return "inf" if v == float("inf") else v


def _write_csv(path: Path, rows: List[Dict[str, Any]], summary: Dict[str, Any], provenance: str) -> None:
    from blurtools.io.atomic import atomic_write_text

    keys = list(rows[0].keys())
    buf = io.StringIO()
    buf.write(f"# {provenance}\n")
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _csv_value(v) for k, v in r.items()})
    w.writerow({k: ("mean" if k == "name" else summary.get(k, "")) for k in keys})
    atomic_write_text(path, buf.getvalue())


@handle_errors
def command(
    paths: List[Path] = typer.Argument(
        ..., metavar="PRED GT | PIECE...", help="PRED: an image, a folder of images, or (with --video) sequences; "
        "GT: an image, a folder matched by relative path without extension, or a sample set. With --merge: the "
        "JSON pieces of a sharded run."),
    ssim_mode: SsimMode = SsimOption,
    y: bool = YOption,
    crop_border: int = CropBorderOption,
    lpips: Optional[LpipsNet] = LpipsOption,
    video: bool = typer.Option(False, "--video", help="Each prediction is a frame folder or GIF/MP4 scored order-invariantly against a sharp sequence."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write per-image rows and the mean to this CSV file."),
    as_json: bool = JsonOption,
    ignore_unmatched: bool = typer.Option(False, "--ignore-unmatched", help="Score the matched pairs even when some predictions have no ground truth."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Exit 0 even when some ground-truth items have no prediction (the table and JSON always say how many; the means cover the others)."),
    align: Optional[AlignModel] = typer.Option(
        None, "--align", help="Align each prediction to its ground truth first and score the valid region only "
        "(rows gain status, dx, dy, alpha: the prediction's offset in px and the intensity scale applied to it). "
        "translation: the scale alpha and sub-pixel shift minimising ||gt - shift(alpha pred)||^2 (phase correlation, "
        "then Gauss-Newton), the procedure of the Köhler et al. 2012 benchmark tables (use with --best-of-gt). "
        "homography: the RealBlur procedure (Rim et al. 2020 tables): intensity scale, ECC homography (coarse to "
        "fine), PSNR and SSIM over the valid overlap; rows also give the 3x3 homography (ground-truth pixel -> "
        "prediction pixel). Needs skimage-convention SSIM."),
    best_of_gt: bool = typer.Option(
        False, "--best-of-gt", help="The ground truth is a sequence per prediction (a sample set's sharp frames, or "
        "GT/NAME/ frame folders or videos for PRED/NAME.png, like the sharp frames Köhler et al. recorded along the "
        "camera trajectory): score against every frame, keep the best by PSNR and report its index (gt_frame, "
        "0-based). With --align translation this reproduces the Köhler benchmark's scoring."),
    max_shift: float = typer.Option(64.0, "--max-shift", min=0, help="With --align: a pair whose best alignment moves "
                                    "a corner or the centre by more than this many pixels is reported as unaligned."),
    min_corr: float = typer.Option(0.5, "--min-corr", min=-1.0, max=1.0, help="With --align: a pair whose zero-mean "
                                   "correlation after alignment is below this is reported as unaligned."),
    ssim_mask: SsimWindow = typer.Option(
        SsimWindow.window, "--ssim-mask", help="With --align, which pixels the SSIM map is averaged over. window: "
        "those whose whole 11x11 window lies in the valid region, so the empty warp border never counts; centre: "
        "those whose centre does, the images zeroed outside, as RealBlur's evaluate_RealBlur.py does."),
    shard: Optional[str] = typer.Option(
        None, "--shard", metavar="I/N", help="Score only piece I of N (from 0; contiguous slices of the matched "
        "pairs, in one run's order), for a cluster's array job; use with --json and join the pieces with --merge."),
    merge: bool = typer.Option(False, "--merge", help="Join the JSON pieces of a --shard run (given as the "
                               "arguments) into the table, --csv or --json one run would give."),
    batch: int = typer.Option(8, "--batch", min=1, help="Images scored together on the device."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Threads decoding and, on the CPU, scoring images, one image per thread (default: the CPU count, at most 8)."),
    device: str = DeviceOption,
    quiet: bool = QuietOption,
    debug: bool = DebugOption,
) -> None:
    """Score predictions against ground truth: PSNR, SSIM, optionally LPIPS; tables, CSV, JSON.

    For real-blur benchmarks, where a result cannot be pixel-aligned with its ground truth, --align scores after the best alignment: --align translation --best-of-gt as the Köhler et al. 2012 benchmark does, --align homography as RealBlur (Rim et al. 2020) does. The aligned image is scored as it is (alpha times the warped prediction, neither rounded nor clamped) over the pixels the warp fills. A pair that cannot be aligned (too different, a shift beyond --max-shift, a correlation below --min-corr) is not scored: its row has status "unaligned", null metrics and the reason, the means cover the other rows, and a warning on standard error lists it.
    """
    from blurtools.metrics.score_notes import IDENTICAL_PSNR_DB, finish_rows, summarize
    from blurtools.metrics.score_options import ScoreOptions
    from blurtools.metrics.shards import Shard, shard_record

    setup_logging(quiet)
    if merge:
        return _merge(paths, shard, csv_path, as_json, quiet, allow_missing)
    if len(paths) != 2:
        raise UsageError(f"expected PRED GT (2 paths), got {len(paths)}; to join shard pieces, add --merge")
    pred, gt = paths
    _check_modes(video, align, best_of_gt, ssim_mode)
    piece = None if shard is None else Shard(*parse_shard(shard))  # type: ignore[misc]
    if piece is not None and not as_json:
        raise UsageError("--shard writes a piece for --merge: add --json (and redirect it to a file)")
    opts = ScoreOptions(ssim_mode=ssim_mode.value, y=y, crop_border=crop_border, batch=batch, workers=workers or min(8, os.cpu_count() or 1),
                        align=align.value if align else None, max_shift=max_shift, min_corr=min_corr,
                        ssim_window=ssim_mask.value)
    rows, matching, start = _score(pred, gt, opts, video, best_of_gt, ignore_unmatched, lpips, device, quiet, piece)
    said = {k: v for k, v in finish_rows(rows).items() if v}  # what was capped or converted, when anything was
    options = _record_options(pred, gt, ssim_mode, y, crop_border, lpips, video, align, best_of_gt, max_shift, min_corr,
                              ssim_mask)
    options["identical_psnr_db"] = IDENTICAL_PSNR_DB
    _warn_unaligned(rows)
    head = {"tool": "blurtools score", "version": __version__, "options": options,
            "unmatched_gt": matching.unmatched_gt, "unmatched_pred": matching.unmatched_pred}
    if piece is not None:
        head["shard"] = shard_record(piece, start, rows, len(matching.pairs))
    # a piece's missing predictions are the whole run's: --merge says so once and decides the exit status
    _emit(rows, dict(summarize(rows), **said), head, csv_path, as_json, quiet, allow_missing or piece is not None)


def _merge(pieces: List[Path], shard: Optional[str], csv_path: Optional[Path], as_json: bool, quiet: bool,
           allow_missing: bool) -> None:
    """`score --merge PIECE...`: the table, CSV or JSON one run would give, from a sharded run's JSON pieces."""
    if shard is not None:
        raise UsageError("--merge joins pieces; it does not combine with --shard")
    from blurtools.metrics.score_notes import summarize
    from blurtools.metrics.shards import merge_pieces

    rows, head, notes = merge_pieces(pieces)
    _emit(rows, dict(summarize(rows), **{k: v for k, v in notes.items() if v}), head, csv_path, as_json, quiet,
          allow_missing)


def _check_modes(video: bool, align: Optional[AlignModel], best_of_gt: bool, ssim_mode: SsimMode) -> None:
    if video and (align is not None or best_of_gt):
        raise UsageError("--align and --best-of-gt score images; they do not combine with --video")
    if align is not None and ssim_mode != SsimMode.skimage:
        raise UsageError("--align scores SSIM over the valid region in the skimage convention; drop --ssim matlab3d")


def _record_options(pred: Path, gt: Path, ssim_mode: SsimMode, y: bool, crop_border: int, lpips: Optional[LpipsNet],
                    video: bool, align: Optional[AlignModel], best_of_gt: bool, max_shift: float, min_corr: float,
                    ssim_mask: SsimWindow) -> Dict[str, Any]:
    """The options the JSON and CSV record (alignment options only when alignment is used)."""
    options = {"pred": str(pred), "gt": str(gt), "ssim": ssim_mode.value, "y": y, "crop_border": crop_border,
               "lpips": lpips.value if lpips else None, "video": video}
    if align is not None or best_of_gt:
        options.update(align=align.value if align else None, best_of_gt=best_of_gt)
    if align is not None:
        options.update(max_shift=max_shift, min_corr=min_corr, ssim_mask=ssim_mask.value)
    return options


def _warn_unaligned(rows: List[Dict[str, Any]]) -> None:
    """One warning on stderr listing the pairs that could not be aligned (they have null metrics)."""
    failed = [r for r in rows if r.get("status") == "unaligned"]
    if failed:
        listed = "; ".join(f"{r['name']} ({r['reason']})" for r in failed[:5]) + (" ..." if len(failed) > 5 else "")
        print(f"warning: {len(failed)} of {len(rows)} pair(s) could not be aligned and are not scored (null metrics; "
              f"the means cover the other {len(rows) - len(failed)}): {listed}", file=sys.stderr)


def _score(pred: Path, gt: Path, opts: Any, video: bool, best_of_gt: bool, ignore_unmatched: bool,
           lpips: Optional[LpipsNet], device: str, quiet: bool, piece: Any) -> Tuple[List[Dict[str, Any]], Any, int]:
    """Match, select the shard, score: (rows, the matching, position of the first scored pair).

    Image pairs start decoding as soon as they are matched, before torch loads (about 2 s on a small CPU).
    """
    from blurtools.io.pair_decoding import decode_pairs
    from blurtools.io.pairs import match

    matching = match(pred, gt, video=video, gt_sequences=best_of_gt)
    if matching.unmatched_pred and not ignore_unmatched:
        shown = ", ".join(matching.unmatched_pred[:5]) + (" ..." if len(matching.unmatched_pred) > 5 else "")
        raise BlurtoolsError(f"{pred}: {len(matching.unmatched_pred)} prediction(s) have no ground truth in {gt}: {shown} "
                             "(--ignore-unmatched scores the rest)")
    if not matching.pairs:
        raise BlurtoolsError(f"{pred}: nothing matches the ground truth in {gt}")
    pairs, start = piece.select(matching.pairs) if piece is not None else (matching.pairs, 0)
    decoded = None if video or best_of_gt else decode_pairs(pairs, opts.workers)
    try:
        from blurtools.metrics.folder_scoring import score_best_of_gt, score_image_pairs, score_sequence_pairs
        from blurtools.ops.device import resolve_device

        dev = resolve_device(device)
        metric = None
        if lpips is not None:
            from blurtools.metrics.lpips_metric import LpipsMetric

            metric = LpipsMetric(net=lpips.value, device=dev)
        with progress(len(pairs), "score", quiet, unit="pairs") as bar:
            if decoded is not None:
                return score_image_pairs(pairs, opts, dev, lpips=metric, on_done=bar.advance, decoded=decoded), matching, start
            scorer = score_sequence_pairs if video else score_best_of_gt
            return scorer(pairs, opts, dev, lpips=metric, on_done=bar.advance), matching, start
    finally:
        if decoded is not None:
            decoded.close()


def _emit(rows: List[Dict[str, Any]], summary: Dict[str, Any], head: Dict[str, Any], csv_path: Optional[Path],
          as_json: bool, quiet: bool = False, allow_missing: bool = False) -> None:
    """Write the CSV, then print JSON (``head`` + summary + items) or the table with notes on what the means
    cover; ground-truth items without a prediction then fail the run unless ``allow_missing``."""
    from blurtools.metrics.score_notes import json_safe

    missing = list(head.get("unmatched_gt") or [])
    summary = dict(summary, missing=len(missing))
    notes = _coverage_notes(summary, missing)
    options = dict(head["options"], allow_missing=allow_missing)
    head = dict(head, options=options)
    if csv_path is not None:
        if csv_path.is_dir():
            raise UsageError(f"--csv {csv_path}: is a folder")
        provenance = f"blurtools {__version__} score " + json.dumps(options, sort_keys=True)
        if rows:
            _write_csv(csv_path, rows, summary, provenance)
    if as_json:
        doc = dict(head, summary=summary, items=rows)
        json.dump(json_safe(doc), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    elif rows:
        _print_table(rows, summary, f"{options['pred']} vs {options['gt']}", notes)
    if as_json and not quiet:
        for note in notes[1 if missing else 0:]:
            print(f"note: {note}", file=sys.stderr)
    if missing and not allow_missing:
        sys.stdout.flush()
        raise BlurtoolsError(f"{options['gt']}: {notes[0].split(': ', 1)[1]}; --allow-missing accepts scores over the others")


MAN_EXAMPLES = [
    ("Score a result folder against ground truth, as the deblurring papers do (RGB, 8-bit, no crop).",
     "blurtools score results/ GoPro/test/sharp/ --csv scores.csv"),
    ("SSIM as MATLAB computes it on RGB (the GoPro tables), with LPIPS-alex, as JSON.",
     "blurtools score results/ gt/ --ssim matlab3d --lpips alex --json > scores.json"),
    ("Score extracted videos against a sample set's sharp sequences, order-invariantly.",
     "blurtools score videos/ sets/test --video"),
    ("Köhler et al. 2012 benchmark tables: each result is aligned (intensity scale, sub-pixel shift) to every "
     "sharp frame recorded along the trajectory (gt/Blurry1_1/*.png for results/Blurry1_1.png), and the best "
     "frame counts.",
     "blurtools score results/ koehler_gt/ --align translation --best-of-gt --csv koehler.csv"),
    ("A large benchmark in 8 pieces on a cluster (an array job runs I = 0 ... 7), then one table from the pieces.",
     "blurtools score results/ gt/ --shard $I/8 --json > piece-$I.json; blurtools score --merge piece-*.json --csv all.csv"),
    ("RealBlur (Rim et al. 2020) tables: intensity match, ECC homography, PSNR and SSIM over the valid overlap, "
     "averaging SSIM over window centres as evaluate_RealBlur.py does.",
     "blurtools score results/ realblur_gt/ --align homography --ssim-mask centre --json > realblur.json"),
]
MAN_FILES = [
    ("$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth", "AlexNet trunk for --lpips alex (supplied by the user)."),
    ("$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth", "VGG16 trunk for --lpips vgg (supplied by the user)."),
]
