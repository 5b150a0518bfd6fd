"""Scoring many pairs: parallel decoding, batched metrics on the device, bounded memory.

``score_image_pairs`` and ``score_sequence_pairs`` turn :class:`blurtools.io.pairs.Pair` lists into rows (one
dict per image or sequence) for the CLI's table, CSV or JSON. At most ``batch * (workers + 2)`` decoded images are
held at any time, however many files there are.

With ``ScoreOptions.align`` each prediction is first aligned to its ground truth
(:mod:`blurtools.ops.registration`) and scored over the valid region (:mod:`blurtools.metrics.masked`);
rows then carry ``status`` ("ok" | "unaligned"), the alignment found and, for an unaligned pair, null metrics and
the ``reason``. ``score_best_of_gt`` keeps a prediction's best frame by PSNR among a ground-truth sequence's.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from blurtools.errors import BlurtoolsError
from blurtools.io.arrays import read_array
from blurtools.io.images import array_to_tensor
from blurtools.io.pair_decoding import DecodedPair, decode_pairs
from blurtools.io.pairs import Pair
from blurtools.io.prefetch import prefetch
from blurtools.io.video import iter_frames, list_frame_files
from blurtools.metrics._common import luma_scaled, resolve_quantize, to_scale
from blurtools.metrics.image import compute_image_metrics
from blurtools.metrics.integer_pairs import plain_integer_row, takes_plain_path
from blurtools.metrics.lpips_metric import LpipsMetric
from blurtools.metrics.masked import inner_rectangle, masked_psnr, masked_ssim
from blurtools.metrics.score_options import ScoreOptions
from blurtools.metrics.video import score_video
from blurtools.ops.color import to_gray
from blurtools.ops.registration import align

log = logging.getLogger(__name__)


def _peak(a: np.ndarray) -> int:
    return 65535 if a.dtype == np.uint16 else 255


def _tensors(decoded: DecodedPair) -> Tuple[Pair, torch.Tensor, torch.Tensor, int, bool]:
    """(pair, prediction (C, H, W), ground truth (C, H, W), peak, whether an RGB prediction was converted to
    gray to meet a gray ground truth (Rec.601 luminance, as an RGB-to-gray save computes it))."""
    a, b = decoded.pred, decoded.gt
    peak = max(_peak(a), _peak(b))
    pa, pb = array_to_tensor(a, keep_gray=True), array_to_tensor(b, keep_gray=True)
    to_gray_now = pa.shape[0] == 3 and pb.shape[0] == 1
    if to_gray_now:
        pa = to_gray(pa[None])[0]
    elif pa.shape[0] != pb.shape[0]:  # a gray prediction of a colour picture: scored as the gray RGB it shows
        pa, pb = pa.expand(3, -1, -1), pb.expand(3, -1, -1)
    return decoded.pair, pa, pb, peak, to_gray_now


def _stored(x: torch.Tensor, peak: int) -> torch.Tensor:
    """[0, 1] float -> float64 [0, 1] holding exactly the integers a file of that depth stores."""
    return to_scale(x, peak, resolve_quantize(peak, None)) / float(peak)


def aligned_metrics(pred: torch.Tensor, gt: torch.Tensor, peak: int, opts: ScoreOptions,
                    lpips: Optional[LpipsMetric] = None) -> List[Dict[str, Any]]:
    """Align each prediction (B, C, H, W) to its ground truth, then score the valid region.

    Returns B dicts: status, psnr, ssim[, lpips], dx, dy, alpha[, homography], reason. Metrics are None
    where the pair could not be aligned. The aligned image is scored as it is (not rounded or clamped);
    ``opts.y`` takes luma after the alignment, ``opts.crop_border`` shrinks the valid region. LPIPS, which
    takes no mask, sees the largest all-valid rectangle (clamped to [0, 1]).
    """
    p, g = _stored(pred, peak), _stored(gt, peak)
    res = align(p, g, model=opts.align or "translation", max_shift=opts.max_shift, min_corr=opts.min_corr)
    mask = res.mask.clone()
    b = opts.crop_border
    if b:
        if 2 * b >= min(mask.shape[-2:]):
            raise BlurtoolsError(f"--crop-border {b} leaves nothing of a {mask.shape[-2]}x{mask.shape[-1]} image")
        mask[..., :b, :] = False
        mask[..., -b:, :] = False
        mask[..., :, :b] = False
        mask[..., :, -b:] = False
    a, gg = res.aligned, g
    if opts.y:
        a, gg = luma_scaled(a, 1.0), luma_scaled(gg, 1.0)
    values = {"psnr": masked_psnr(a, gg, mask).tolist(), "ssim": masked_ssim(a, gg, mask, window=opts.ssim_window).tolist()}
    rows: List[Dict[str, Any]] = []
    for i in range(p.shape[0]):
        ok = bool(res.ok[i])
        row: Dict[str, Any] = {"status": "ok" if ok else "unaligned",
                               "psnr": values["psnr"][i] if ok else None, "ssim": values["ssim"][i] if ok else None}
        if lpips is not None:
            row["lpips"] = None
            rect = inner_rectangle(mask[i, 0]) if ok else None
            if rect is not None and min(rect[1] - rect[0], rect[3] - rect[2]) >= 16:
                t, bt, l, r = rect
                crop_a = res.aligned[i:i + 1, :, t:bt, l:r].clamp(0, 1)
                row["lpips"] = float(lpips(crop_a, g[i:i + 1, :, t:bt, l:r])[0])
        row.update(dx=float(res.shift[i, 0]), dy=float(res.shift[i, 1]), alpha=float(res.alpha[i]))
        if opts.align == "homography":
            row["homography"] = res.homography[i].tolist()
        row["reason"] = res.reasons[i] or None
        rows.append(row)
    return rows


def _metrics_rows(pred: torch.Tensor, gt: torch.Tensor, peak: int, opts: ScoreOptions,
                  lpips: Optional[LpipsMetric]) -> List[Dict[str, Any]]:
    """Per-image metric dicts of a batch, aligned or not."""
    if opts.align:
        return aligned_metrics(pred, gt, peak, opts, lpips)
    out = compute_image_metrics(pred, gt, data_range=peak, ssim_mode=opts.ssim_mode, y_channel=opts.y,
                                crop_border=opts.crop_border, lpips=lpips)
    values = {k: v.cpu().tolist() for k, v in out.items()}
    return [{k: values[k][i] for k in values} for i in range(pred.shape[0])]


def score_image_pairs(pairs: Sequence[Pair], opts: ScoreOptions, device: torch.device,
                      lpips: Optional[LpipsMetric] = None,
                      on_done: Optional[Callable[[int], None]] = None,
                      decoded: Optional[Iterable[DecodedPair]] = None) -> List[Dict[str, Any]]:
    """Score image pairs; returns rows ``{"name", "psnr", "ssim"[, "lpips"], "width", "height"}`` in pair order.

    Pairs of the same size and depth are scored together in batches of ``opts.batch`` on ``device``.
    With ``opts.align`` the rows hold the fields of :func:`aligned_metrics` as well. ``decoded``: the
    pairs already being decoded (:func:`blurtools.io.pair_decoding.decode_pairs`, started before torch
    loaded); by default they are decoded here, ``opts.workers`` threads ahead.
    """
    stream = decoded if decoded is not None else decode_pairs(pairs, opts.workers)
    if device.type == "cpu":
        return _score_pairs_in_threads(stream, opts, lpips, on_done)
    return score_pairs_in_batches(stream, opts, device, lpips, on_done)


def score_pairs_in_batches(stream: Iterable[DecodedPair], opts: ScoreOptions, device: torch.device,
                           lpips: Optional[LpipsMetric] = None,
                           on_done: Optional[Callable[[int], None]] = None) -> List[Dict[str, Any]]:
    """The accelerator path of :func:`score_image_pairs`: consecutive decoded pairs of one size and depth go
    to ``device`` together, ``opts.batch`` at a time (any device works; on the CPU threads are faster)."""
    rows: List[Dict[str, Any]] = []
    batch: List[Tuple[Pair, torch.Tensor, torch.Tensor, int, bool]] = []

    def flush() -> None:
        if not batch:
            return
        pred = torch.stack([b[1] for b in batch]).to(device)
        gt = torch.stack([b[2] for b in batch]).to(device)
        metrics = _metrics_rows(pred, gt, batch[0][3], opts, lpips)
        for i, (pair, p, _, _, gray) in enumerate(batch):
            row: Dict[str, Any] = {"name": pair.key}
            row.update(metrics[i])
            row.update(width=int(p.shape[-1]), height=int(p.shape[-2]))
            if gray:
                row["_converted_to_gray"] = True
            rows.append(row)
        if on_done:
            on_done(len(batch))
        batch.clear()

    for item in map(_tensors, stream):
        if batch and (item[1].shape != batch[0][1].shape or item[3] != batch[0][3] or len(batch) >= opts.batch):
            flush()
        batch.append(item)
    flush()
    return rows


def _score_pairs_in_threads(stream: Iterable[DecodedPair], opts: ScoreOptions, lpips: Optional[LpipsMetric],
                            on_done: Optional[Callable[[int], None]]) -> List[Dict[str, Any]]:
    """CPU path: each worker thread (or the caller alone, with one worker) scores whole decoded pairs,
    one image at a time, single-threaded, while the decoding threads keep ahead.

    On the CPU the metrics are memory-bound element-wise passes: one image per core (torch intra-op
    threads = 1; torch releases the GIL) keeps each core's working set small and beats batching several
    images through multi-threaded ops by 2-3x. Memory: the decoding's bound plus ``workers + 2`` pairs.
    """

    plain = lpips is None and takes_plain_path(opts)

    def one(decoded: DecodedPair) -> Dict[str, Any]:
        if plain:
            fast = plain_integer_row(decoded, opts.crop_border)
            if fast is not None:
                return fast
        pair, p, g, peak, gray = _tensors(decoded)
        row: Dict[str, Any] = {"name": pair.key}
        row.update(_metrics_rows(p[None], g[None], peak, opts, lpips)[0])
        row.update(width=int(p.shape[-1]), height=int(p.shape[-2]))
        if gray:
            row["_converted_to_gray"] = True
        return row

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows: List[Dict[str, Any]] = []
    try:
        for row in prefetch(one, stream, opts.workers, ahead=opts.workers + 2):
            rows.append(row)
            if on_done:
                on_done(1)
    finally:
        torch.set_num_threads(threads)
    return rows


def _gt_chunks(pair: Pair, chunk: int, workers: int) -> Iterator[Tuple[int, List[np.ndarray]]]:
    """The frames of a ground-truth sequence as decoded arrays, ``chunk`` at a time: (first index, arrays)."""
    ref = pair.gt
    if isinstance(ref, list) or ref.is_dir():
        paths = ref if isinstance(ref, list) else list_frame_files(ref)
        arrays: Iterable[np.ndarray] = prefetch(read_array, paths, workers, ahead=max(2, 2 * chunk))
    else:
        arrays = iter_frames(ref)
    start, buf = 0, []
    for a in arrays:
        buf.append(a)
        if len(buf) == chunk:
            yield start, buf
            start, buf = start + len(buf), []
    if buf:
        yield start, buf


def _best_row(pair: Pair, found: List[Tuple[int, Dict[str, Any]]], count: int) -> Dict[str, Any]:
    """The row of the best frame by PSNR among the aligned (or plainly scored) ones."""
    good = [(i, m) for i, m in found if m.get("status", "ok") == "ok"]
    if good:
        # max keeps the first of equal scores; an identical frame (inf) wins.
        index, metrics = max(good, key=lambda im: (im[1]["psnr"], -im[0]))
    else:
        index, metrics = found[0]
        metrics = dict(metrics, reason=f"none of the {count} ground-truth frames could be aligned "
                                       f"(frame {index}: {metrics['reason']})")
    head = {k: v for k, v in metrics.items() if k in ("status", "psnr", "ssim", "lpips")}
    tail = {k: v for k, v in metrics.items() if k not in head}
    return {"name": pair.key, **head, "gt_frame": index if good else None, "gt_frames": count, **tail}


def score_best_of_gt(pairs: Sequence[Pair], opts: ScoreOptions, device: torch.device,
                     lpips: Optional[LpipsMetric] = None,
                     on_done: Optional[Callable[[int], None]] = None) -> List[Dict[str, Any]]:
    """Score each prediction image against every frame of its ground-truth sequence; keep the best by PSNR.

    The Köhler benchmark's rule: its ground truth is the sequence of sharp frames recorded along the
    camera trajectory, and a result scores as well as its best-matching frame. ``pair.gt`` is a list of
    frame paths, a frame folder or a video file; frames are decoded and scored ``opts.batch`` at a time.
    With ``opts.align`` every frame is aligned first and only aligned frames compete.

    Returns rows: name, [status,] psnr, ssim, [lpips,] gt_frame (0-based index of the winner, None when no
    frame could be aligned), gt_frames (how many were tried), [alignment fields,] width, height.
    """
    rows: List[Dict[str, Any]] = []
    for pair in pairs:
        array = read_array(pair.pred)
        pred = array_to_tensor(array, keep_gray=True)
        found: List[Tuple[int, Dict[str, Any]]] = []
        count = 0
        for start, arrays in _gt_chunks(pair, opts.batch, opts.workers):
            frames = [array_to_tensor(a, keep_gray=True) for a in arrays]
            for k, f in enumerate(frames):
                if f.shape[-2:] != pred.shape[-2:]:
                    raise BlurtoolsError(f"{pair.pred}: size {pred.shape[-1]}x{pred.shape[-2]} differs from ground-truth "
                                         f"frame {start + k} of {pair.gt} ({f.shape[-1]}x{f.shape[-2]})")
            gt = torch.stack([f.expand(3, -1, -1) if f.shape[0] != pred.shape[0] else f for f in frames])
            p = pred.expand(3, -1, -1) if pred.shape[0] != gt.shape[1] else pred
            peak = max(_peak(array), *(_peak(a) for a in arrays))
            p = p.unsqueeze(0).expand(gt.shape[0], -1, -1, -1).contiguous()
            metrics = _metrics_rows(p.to(device), gt.to(device), peak, opts, lpips)
            found.extend((start + k, m) for k, m in enumerate(metrics))
            count += len(frames)
        if not count:
            raise BlurtoolsError(f"{pair.gt}: no ground-truth frames")
        row = _best_row(pair, found, count)
        row.update(width=int(pred.shape[-1]), height=int(pred.shape[-2]))
        rows.append(row)
        if on_done:
            on_done(1)
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
    for pair, pred, gt, peak in prefetch(_decode_sequences, pairs, opts.workers, ahead=2):
        s = score_video(pred.to(device), gt.to(device), data_range=peak, ssim_mode=opts.ssim_mode, y_channel=opts.y,
                        crop_border=opts.crop_border, lpips=lpips)
        row: Dict[str, Any] = {"name": pair.key, "order": s.order, "frames": s.frames, "psnr": s.psnr, "ssim": s.ssim}
        if lpips is not None:
            row["lpips"] = s.lpips
        row.update(middle_psnr=s.middle_psnr, middle_ssim=s.middle_ssim)
        if lpips is not None:
            row["middle_lpips"] = s.middle_lpips
        row.update(width=int(pred.shape[-1]), height=int(pred.shape[-2]), frame_psnr=list(s.frame_psnr))
        rows.append(row)
        if on_done:
            on_done(1)
    return rows
