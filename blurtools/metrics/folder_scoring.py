"""Scoring many pairs: parallel decoding, batched metrics on the device, bounded memory.

``score_image_pairs`` and ``score_sequence_pairs`` turn :class:`blurtools.io.pairs.Pair` lists into rows
(one dict per image or sequence) that the CLI prints as a table, CSV or JSON. At most
``batch * (workers + 2)`` decoded images are held at any time, however many files there are.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from blurtools.errors import BlurtoolsError
from blurtools.io.images import array_to_tensor, read_array
from blurtools.io.pairs import Pair
from blurtools.io.video import iter_frames
from blurtools.metrics.image import compute_image_metrics
from blurtools.metrics.lpips_metric import LpipsMetric
from blurtools.metrics.video import score_video

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreOptions:
    """How to score. ``ssim_mode``: skimage|matlab3d; ``y``: BT.601 luma; ``crop_border``: pixels per side."""

    ssim_mode: str = "skimage"
    y: bool = False
    crop_border: int = 0
    batch: int = 8
    workers: int = 2


def _peak(a: np.ndarray) -> int:
    return 65535 if a.dtype == np.uint16 else 255


def _decode_pair(pair: Pair) -> Tuple[Pair, torch.Tensor, torch.Tensor, int]:
    a, b = read_array(pair.pred), read_array(pair.gt)  # type: ignore[arg-type]
    if a.shape[:2] != b.shape[:2]:
        raise BlurtoolsError(f"{pair.pred}: size {a.shape[1]}x{a.shape[0]} differs from its ground truth "
                             f"{pair.gt} ({b.shape[1]}x{b.shape[0]})")
    peak = max(_peak(a), _peak(b))
    pa, pb = array_to_tensor(a, keep_gray=True), array_to_tensor(b, keep_gray=True)
    if pa.shape[0] != pb.shape[0]:
        pa, pb = pa.expand(3, -1, -1), pb.expand(3, -1, -1)
    return pair, pa, pb, peak


def _prefetch(fn: Callable[[Any], Any], items: Sequence[Any], workers: int, ahead: int) -> Iterator[Any]:
    """``map(fn, items)`` in a thread pool, in order, with at most ``ahead`` results pending."""
    if workers <= 1:
        for it in items:
            yield fn(it)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: List[Any] = []
        index = 0
        while index < len(items) or pending:
            while index < len(items) and len(pending) < ahead:
                pending.append(pool.submit(fn, items[index]))
                index += 1
            yield pending.pop(0).result()


def _finite(v: float) -> Optional[float]:
    return None if v is None or math.isinf(v) or math.isnan(v) else float(v)


def score_image_pairs(pairs: Sequence[Pair], opts: ScoreOptions, device: torch.device,
                      lpips: Optional[LpipsMetric] = None,
                      on_done: Optional[Callable[[int], None]] = None) -> List[Dict[str, Any]]:
    """Score image pairs; returns rows ``{"name", "psnr", "ssim"[, "lpips"], "width", "height"}`` in pair order.

    Pairs of the same size and depth are scored together in batches of ``opts.batch`` on ``device``.
    """
    rows: List[Dict[str, Any]] = []
    batch: List[Tuple[Pair, torch.Tensor, torch.Tensor, int]] = []

    def flush() -> None:
        if not batch:
            return
        pred = torch.stack([b[1] for b in batch]).to(device)
        gt = torch.stack([b[2] for b in batch]).to(device)
        out = compute_image_metrics(pred, gt, data_range=batch[0][3], ssim_mode=opts.ssim_mode, y_channel=opts.y,
                                    crop_border=opts.crop_border, lpips=lpips)
        values = {k: v.cpu().tolist() for k, v in out.items()}
        for i, (pair, p, _, _) in enumerate(batch):
            row: Dict[str, Any] = {"name": pair.key}
            row.update({k: values[k][i] for k in values})
            row.update(width=int(p.shape[-1]), height=int(p.shape[-2]))
            rows.append(row)
        if on_done:
            on_done(len(batch))
        batch.clear()

    for item in _prefetch(_decode_pair, list(pairs), opts.workers, ahead=max(2, opts.batch * 2)):
        if batch and (item[1].shape != batch[0][1].shape or item[3] != batch[0][3] or len(batch) >= opts.batch):
            flush()
        batch.append(item)
    flush()
    return rows


def _read_sequence(ref: Any) -> Tuple[torch.Tensor, int]:
    """A frame list, frame folder or video file -> (N, C, H, W) float in [0, 1] and its integer peak."""
    if isinstance(ref, list):
        arrays = [read_array(p) for p in ref]
    else:
        arrays = list(iter_frames(ref))
    if not arrays:
        raise BlurtoolsError(f"{ref}: no frames")
    peak = max(_peak(a) for a in arrays)
    frames = [array_to_tensor(a) for a in arrays]
    shape = frames[0].shape
    for i, f in enumerate(frames):
        if f.shape != shape:
            raise BlurtoolsError(f"{ref}: frame {i} has size {tuple(f.shape[-2:])}, the first {tuple(shape[-2:])}")
    return torch.stack(frames), peak


def _decode_sequences(pair: Pair) -> Tuple[Pair, torch.Tensor, torch.Tensor, int]:
    pred, p1 = _read_sequence(pair.pred)
    gt, p2 = _read_sequence(pair.gt)
    if pred.shape[0] != gt.shape[0]:
        raise BlurtoolsError(f"{pair.pred}: {pred.shape[0]} frames, but its ground truth has {gt.shape[0]}")
    if pred.shape[-2:] != gt.shape[-2:]:
        raise BlurtoolsError(f"{pair.pred}: frames of size {tuple(pred.shape[-2:])} but ground truth {tuple(gt.shape[-2:])}")
    return pair, pred, gt, max(p1, p2)


def score_sequence_pairs(pairs: Sequence[Pair], opts: ScoreOptions, device: torch.device,
                         lpips: Optional[LpipsMetric] = None,
                         on_done: Optional[Callable[[int], None]] = None) -> List[Dict[str, Any]]:
    """Order-invariant video scores, one row per sequence.

    Row keys: name, order (forward|reversed, chosen once per sequence by mean PSNR), frames, psnr, ssim,
    [lpips], middle_psnr, middle_ssim, [middle_lpips], width, height.
    """
    rows: List[Dict[str, Any]] = []
    for pair, pred, gt, peak in _prefetch(_decode_sequences, list(pairs), opts.workers, ahead=2):
        s = score_video(pred.to(device), gt.to(device), data_range=peak, ssim_mode=opts.ssim_mode, y_channel=opts.y,
                        crop_border=opts.crop_border, lpips=lpips)
        row: Dict[str, Any] = {"name": pair.key, "order": s.order, "frames": s.frames, "psnr": s.psnr, "ssim": s.ssim}
        if lpips is not None:
            row["lpips"] = s.lpips
        row.update(middle_psnr=s.middle_psnr, middle_ssim=s.middle_ssim)
        if lpips is not None:
            row["middle_lpips"] = s.middle_lpips
        row.update(width=int(pred.shape[-1]), height=int(pred.shape[-2]))
        rows.append(row)
        if on_done:
            on_done(1)
    return rows


NUMERIC_SKIP = ("width", "height", "frames")


def summarize(rows: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Mean of every numeric metric column over the rows (PSNR's mean is inf when any image is identical)."""
    summary: Dict[str, Any] = {"count": len(rows)}
    if not rows:
        return summary
    for key, value in rows[0].items():
        if key in NUMERIC_SKIP or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        vals = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
        summary[key] = float(np.mean(vals)) if vals else None
    if "order" in rows[0]:
        summary["reversed"] = sum(1 for r in rows if r["order"] == "reversed")
    return summary


def json_safe(value: Any) -> Any:
    """Replace inf/nan (not valid JSON) by None, recursively."""
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
