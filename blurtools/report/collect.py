"""Scores behind a report: each method's result folder run through blurtools' own scorer.

Every method (and the blurry inputs, when given) is matched to the ground truth and scored by
:mod:`blurtools.metrics.folder_scoring` exactly as ``blurtools score`` scores it, identical pairs' PSNR
capped at 100 dB as ``score`` caps it (:mod:`blurtools.metrics.score_notes`), so the page shows the
numbers a table built with ``score`` would show. A sample is a ground-truth name that at least one method
answered; a method that lacks a sample shows a gap there, never a made-up number.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from blurtools.errors import BlurtoolsError, UsageError
from blurtools.io.pairs import match
from blurtools.metrics.folder_scoring import score_image_pairs, score_sequence_pairs
from blurtools.metrics.score_notes import finish_rows
from blurtools.metrics.score_options import ScoreOptions

log = logging.getLogger(__name__)

METRICS = ("psnr", "ssim", "lpips")


@dataclass
class Method:
    """One column of the report: a label, its folder, and its scored rows keyed by sample name.

    ``rows[name]`` is the scorer's row (psnr in dB, ssim in [-1, 1], lpips >= 0 when asked, width,
    height; video rows add order, frames and frame_psnr); ``files[name]`` the prediction's path (image,
    frame folder or video file); ``gt_files[name]`` the ground truth it was matched to. ``notes``: what
    the scorer did to the rows, as ``score`` counts it (``psnr_capped``, ``converted_to_gray``).
    """

    label: str
    path: Path
    rows: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    files: Dict[str, Path] = field(default_factory=dict)
    gt_files: Dict[str, Any] = field(default_factory=dict)
    notes: Dict[str, int] = field(default_factory=dict)


@dataclass
class Results:
    """Everything a results page shows: methods in the order given, the optional inputs, the sample names."""

    methods: List[Method]
    inputs: Optional[Method]
    samples: List[str]
    gt: Path
    video: bool
    metrics: List[str]


def unique_labels(paths: Sequence[Path], labels: Sequence[str]) -> List[str]:
    """Labels for the methods: the given ones, else the folder names (made unique with their parents)."""
    if labels and len(labels) != len(paths):
        raise UsageError(f"--label given {len(labels)} time(s) for {len(paths)} result folder(s); give one per folder or none")
    if labels:
        out = list(labels)
    else:
        out = [p.resolve().name or str(p) for p in paths]
        if len(set(out)) != len(out):
            out = [f"{p.resolve().parent.name}/{p.resolve().name}" for p in paths]
    if len(set(out)) != len(out):
        raise UsageError(f"two result folders share the label {sorted(out, key=out.count)[-1]!r}; name them with --label")
    return out


def score_method(label: str, path: Path, gt: Path, opts: ScoreOptions, device: torch.device, video: bool,
                 lpips: Any = None, on_done: Optional[Callable[[int], None]] = None) -> Method:
    """Match one result folder to the ground truth and score it with the scorer of ``blurtools score``."""
    matching = match(path, gt, video=video)
    if not matching.pairs:
        raise BlurtoolsError(f"{path}: nothing matches the ground truth in {gt}")
    if matching.unmatched_pred:
        log.warning("%s: %d result(s) without ground truth left out (e.g. %s)", path, len(matching.unmatched_pred),
                    matching.unmatched_pred[0])
    scorer = score_sequence_pairs if video else score_image_pairs
    rows = scorer(matching.pairs, opts, device, lpips=lpips, on_done=on_done)
    method = Method(label, path, notes=finish_rows(rows))
    for pair, row in zip(matching.pairs, rows):
        method.rows[pair.key] = row
        method.files[pair.key] = pair.pred
        method.gt_files[pair.key] = pair.gt
    return method


def collect(paths: Sequence[Path], labels: Sequence[str], gt: Path, inputs: Optional[Path], opts: ScoreOptions,
            device: torch.device, video: bool = False, lpips: Any = None,
            on_done: Optional[Callable[[int], None]] = None) -> Results:
    """Score every method (and the inputs) against ``gt``; samples in the ground truth's order.

    Raises:
        UsageError: no result folder, or labels that do not fit.
        BlurtoolsError: a folder that matches nothing (naming it), as ``score`` would.
    """
    if not paths:
        raise UsageError("give at least one result folder")
    names = unique_labels(paths, labels)
    methods = [score_method(n, Path(p), gt, opts, device, video, lpips, on_done) for n, p in zip(names, paths)]
    given = score_method("input", Path(inputs), gt, opts, device, video, lpips, on_done) if inputs else None
    order: Dict[str, int] = {}
    for m in methods:
        for key in m.rows:
            order.setdefault(key, len(order))
    metrics = [k for k in METRICS if any(k in r for m in methods for r in m.rows.values())]
    return Results(methods, given, list(order), Path(gt), video, metrics)


def method_stats(method: Method, metrics: Sequence[str]) -> Dict[str, Any]:
    """Count, and mean and median of each metric over the method's samples (finite values only)."""
    import numpy as np

    out: Dict[str, Any] = {"count": len(method.rows)}
    for key in metrics:
        vals = [r[key] for r in method.rows.values() if isinstance(r.get(key), (int, float)) and np.isfinite(r[key])]
        out[key] = {"mean": float(np.mean(vals)) if vals else None, "median": float(np.median(vals)) if vals else None,
                    "values": vals}
    return out
