"""Tiled inference: run a model over an image of any size in overlapping windows, blended without seams.

A network's memory grows with the pixels it sees, so a 24-megapixel photo goes through in windows of at
most ``tile`` x ``tile``. Windows overlap by at least ``overlap`` pixels; in every overlap the two windows
are cross-faded with a raised-cosine ramp of width ``overlap / 2`` centred in the overlap, so each window
keeps ``overlap / 4`` pixels of margin that receive no weight: a model whose receptive field reaches less
than ``overlap / 4`` pixels gives exactly the untiled result, and a deeper one gives a smooth transition
instead of a seam. The weights of all windows sum to one everywhere (the ramps are complementary); the
output is still divided by the accumulated weight, so the blend is exact whatever the layout.

Memory: the input stays where it is (CPU), at most ``batch`` windows go to the device at a time, and the
blend is accumulated one band of window rows at a time (float32, ``tile`` rows high, on the device, so a
GPU does the blending too); rows no later window touches are finalised into the output on the CPU, which
can be uint8 (a 7-frame 6000x4000 video then needs 0.5 GB instead of 2 GB).

Video outputs (B, N, C, H, W): a blurry image does not tell the direction of time, so two windows of a
learned video model may play in opposite directions. With ``align_time`` every window is flipped in time
when its reverse matches the already blended overlap better, so the whole frame moves one way.

Example::

    sharp = run_tiled(model, blurry, tile=512, overlap=32)          # (1, 3, H, W) -> (1, 3, H, W)
    video = run_tiled(video_model, blurry, out_dtype=torch.uint8)   # -> (1, N, 3, H, W) uint8
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from blurtools.errors import UsageError

log = logging.getLogger(__name__)

__all__ = ["run_tiled", "window_layout", "axis_weights", "pad_to", "TileFn"]

TileFn = Callable[[torch.Tensor], torch.Tensor]


def window_layout(length: int, tile: int, overlap: int, multiple: int = 1) -> Tuple[List[int], int]:
    """Start positions and the common size of the windows that cover ``[0, length)`` along one axis.

    The fewest windows of at most ``tile`` pixels that overlap by at least ``overlap`` (up to rounding of
    one pixel), all of one size (a multiple of ``multiple`` when that fits), spread evenly from 0 to the
    end. ``tile <= 0`` or ``length <= tile`` gives one window of the whole length.

    Example: ``window_layout(1280, 512, 32, 8)`` -> ``([0, 416, 832], 448)``.
    """
    if length < 1:
        raise UsageError(f"window_layout: length must be >= 1, got {length}")
    if tile <= 0 or length <= tile:
        return [0], length
    if overlap < 0 or overlap >= tile:
        raise UsageError(f"--overlap {overlap}: must be >= 0 and smaller than the tile ({tile})")
    n = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length + (n - 1) * overlap) / n)
    size = min(-(-size // multiple) * multiple, tile, length)
    if n == 1:
        return [0], length
    starts = [round(i * (length - size) / (n - 1)) for i in range(n)]
    return starts, size


def axis_weights(starts: Sequence[int], size: int, overlap: int) -> torch.Tensor:
    """(len(starts), size) blend weights of the windows along one axis (float64; columns sum to one).

    Between neighbouring windows a raised-cosine ramp of width ``max(1, overlap - 2 * (overlap // 4))``
    (at most the real overlap) is centred in their overlap; the left window fades out as the right one
    fades in. Outside ramps a window has weight 1 where it alone covers, 0 where a neighbour has taken over.
    """
    n = len(starts)
    w = torch.ones(n, size, dtype=torch.float64)
    margin = overlap // 4
    for i in range(1, n):
        lo, hi = starts[i], starts[i - 1] + size          # the overlap [lo, hi) of windows i-1 and i
        width = hi - lo
        if width <= 0:
            continue                                       # abutting windows: a hard edge (overlap 0)
        ramp = max(1, min(width, overlap - 2 * margin))
        a = (lo + hi - ramp) / 2                           # ramp over [a, a + ramp), centred in the overlap
        pos = torch.arange(size, dtype=torch.float64)
        t = ((starts[i] + pos + 0.5 - a) / ramp).clamp(0, 1)
        up = 0.5 - 0.5 * torch.cos(math.pi * t)            # weight of window i at its own positions
        t_prev = ((starts[i - 1] + pos + 0.5 - a) / ramp).clamp(0, 1)
        w[i] *= up
        w[i - 1] *= 1 - (0.5 - 0.5 * torch.cos(math.pi * t_prev))
    return w


def pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad (..., H, W) at the bottom/right to (height, width): reflect where possible, else replicate."""
    ph, pw = height - x.shape[-2], width - x.shape[-1]
    if ph == 0 and pw == 0:
        return x
    lead = x.shape[:-3]
    y = x.reshape(-1, *x.shape[-3:])
    if ph < y.shape[-2] and pw < y.shape[-1]:
        y = F.pad(y, (0, pw, 0, ph), mode="reflect")
    else:  # a window smaller than the pad cannot be reflected: repeat its edge
        y = F.pad(y, (0, pw, 0, ph), mode="replicate")
    return y.reshape(*lead, *y.shape[-3:])


def _quantise(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if dtype == torch.uint8:
        return (x.clamp(0, 1) * 255).round_().to(torch.uint8)
    return x.to(dtype)


def _align_in_time(out: torch.Tensor, w: torch.Tensor, acc: torch.Tensor, wacc: torch.Tensor) -> torch.Tensor:
    """Flip each sample of ``out`` (b, N, C, h, w) in time where that matches the blended ``acc`` better."""
    both = w * wacc                                        # (h, w): where the new window and the blend overlap
    if float(both.max()) <= 0:
        return out
    est = acc / wacc.clamp(min=1e-12)
    flipped = out.flip(1)
    e_fwd = ((out - est) ** 2 * both).flatten(1).sum(1)
    e_rev = ((flipped - est) ** 2 * both).flatten(1).sum(1)
    flip = e_rev < e_fwd
    if bool(flip.any()):
        log.debug("tiling: %d window(s) flipped in time to match their neighbours", int(flip.sum()))
        out = torch.where(flip.view(-1, *[1] * (out.dim() - 1)), flipped, out)
    return out


def _checked_layout(image: Any, out_dtype: torch.dtype, tile: int, overlap: int, multiple: int) -> Tuple[int, int]:
    """(tile rounded down to the multiple, multiple >= 1) after checking run_tiled's arguments (UsageError)."""
    if not isinstance(image, torch.Tensor) or image.dim() != 4:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise UsageError(f"run_tiled: expected an image batch (B, C, H, W), got {shape}")
    if out_dtype not in (torch.float32, torch.uint8):
        raise UsageError(f"run_tiled: out_dtype must be torch.float32 or torch.uint8, got {out_dtype}")
    H, W = image.shape[-2:]
    if H < 1 or W < 1:
        raise UsageError(f"run_tiled: zero-size image {H}x{W}")
    multiple = max(1, int(multiple))
    if tile > 0:
        tile = max(multiple, tile // multiple * multiple)
        if overlap >= tile:
            raise UsageError(f"--overlap {overlap}: must be smaller than --tile ({tile})")
    if overlap < 0:
        raise UsageError(f"--overlap {overlap}: must be >= 0")
    return tile, multiple


def _blend(res: torch.Tensor, cols: Sequence[int], wy_row: torch.Tensor, wx_cols: torch.Tensor, acc: torch.Tensor,
           wacc: torch.Tensor, B: int, tw: int, align_time: bool) -> None:
    """Add the windows ``res`` (k*B, ..., th, tw) of one call, at columns ``cols``, weighted into the band
    accumulators ``acc`` (B, ..., th, W) and ``wacc`` (th, W), in place."""
    for k, x0 in enumerate(cols):
        w = wy_row[:, None] * wx_cols[k][None, :]
        piece = res[k * B:(k + 1) * B]
        a = acc[..., x0:x0 + tw]
        if piece.dim() == 5 and align_time:
            piece = _align_in_time(piece, w, a, wacc[:, x0:x0 + tw])
        a += piece * w
        wacc[:, x0:x0 + tw] += w


@torch.no_grad()
def run_tiled(fn: TileFn, image: torch.Tensor, tile: int = 512, overlap: int = 32, multiple: int = 8,
              batch: int = 1, device: "torch.device | str | None" = None, out_dtype: torch.dtype = torch.float32,
              min_size: int = 0, align_time: bool = True,
              on_window: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """Apply ``fn`` to ``image`` window by window and blend the windows into one output.

    Args:
        fn: maps (b, C, h, w) on ``device`` to (b, C', h, w) (images) or (b, N, C', h, w) (videos); called
            with h, w multiples of ``multiple`` (windows are reflect-padded, outputs cropped back). Runs
            under ``torch.no_grad()``.
        image: (B, C, H, W) float, any device (it stays there; windows are copied to ``device``).
        tile: largest window side in pixels (rounded down to ``multiple``); 0 = the whole image at once.
        overlap: smallest overlap of neighbouring windows (0 = abutting windows, visible seams).
        multiple: window sizes handed to ``fn`` are multiples of this (the model's size multiple).
        batch: windows per call of ``fn`` (all images of the batch count: B images x k windows, k >= 1).
        device: where ``fn`` runs (default: the image's device).
        out_dtype: torch.float32 (raw blended values, not clamped) or torch.uint8 (clamped to [0, 1] and
            scaled to 0..255, rounded).
        min_size: windows are also padded to at least this many pixels per side (models that reflect-pad
            internally need some room).
        align_time: for video outputs, flip windows in time to agree with their neighbours.
        on_window: called as ``on_window(done, total)`` after each call of ``fn``.

    Returns:
        (B, C', H, W) or (B, N, C', H, W) on the CPU, ``out_dtype``.

    Example::

        with torch.inference_mode():
            sharp = run_tiled(model, blurry[None], tile=512, overlap=32, device="cuda")[0]
    """
    tile, multiple = _checked_layout(image, out_dtype, tile, overlap, multiple)
    B, C, H, W = image.shape
    device = torch.device(device) if device is not None else image.device
    ys, th = window_layout(H, tile, overlap, multiple)
    xs, tw = window_layout(W, tile, overlap, multiple)
    wy = axis_weights(ys, th, overlap).float()
    wx = axis_weights(xs, tw, overlap).float()
    ph = max(-(-th // multiple) * multiple, -(-min_size // multiple) * multiple)
    pw = max(-(-tw // multiple) * multiple, -(-min_size // multiple) * multiple)
    per_call = max(1, batch // B)
    total = -(-len(ys) * len(xs) // per_call)
    log.debug("tiling %dx%d: %d x %d windows of %dx%d (padded %dx%d), %d per call", W, H, len(xs), len(ys),
              tw, th, pw, ph, per_call)

    out: Optional[torch.Tensor] = None
    acc = wacc = None
    band0 = 0                              # image row of the band's first row
    done = 0
    for r, y0 in enumerate(ys):
        if acc is not None:
            # rows above this window row are final: write them out and slide the band down
            keep = y0 - band0
            out[..., band0:y0, :] = _quantise(acc[..., :keep, :] / wacc[:keep], out_dtype).cpu()
            acc = torch.cat([acc[..., keep:, :], acc.new_zeros(*acc.shape[:-2], keep, W)], dim=-2)
            wacc = torch.cat([wacc[keep:], wacc.new_zeros(keep, W)], dim=0)
            band0 = y0
        for c0 in range(0, len(xs), per_call):
            cols = xs[c0:c0 + per_call]
            tiles = torch.cat([image[:, :, y0:y0 + th, x0:x0 + tw] for x0 in cols], dim=0).to(device)
            res = fn(pad_to(tiles, ph, pw))
            if res.dim() not in (4, 5) or res.shape[0] != tiles.shape[0] or tuple(res.shape[-2:]) != (ph, pw):
                raise UsageError(f"run_tiled: fn must map (b, C, h, w) to (b, C', h, w) or (b, N, C', h, w); "
                                 f"it gave {tuple(res.shape)} for {(tiles.shape[0], C, ph, pw)}")
            res = res[..., :th, :tw].float()
            if out is None:
                lead = tuple(res.shape[1:-2])
                out = torch.empty(B, *lead, H, W, dtype=out_dtype)
                acc = torch.zeros(B, *lead, th, W, device=res.device)
                wacc = torch.zeros(th, W, device=res.device)
                wy, wx = wy.to(res.device), wx.to(res.device)
            _blend(res, cols, wy[r], wx[c0:c0 + len(cols)], acc, wacc, B, tw, align_time)
            done += 1
            if on_window is not None:
                on_window(done, total)
    out[..., band0:H, :] = _quantise(acc[..., :H - band0, :] / wacc[:H - band0], out_dtype).cpu()
    return out
