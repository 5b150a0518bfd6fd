"""Frame multiplication: more frames from a video model than it was trained to make.

Niu, Xia, Pan (Symmetry 2021, section 4.6.2) multiply the 7 frames of their network to 28: neighbouring
output frames are averaged into new, shorter blurry images of the in-between moments, the network runs
again on each, and the results are put together in time order. Our reading, for any video model that
makes N frames from one blurry image and any target count M:

1. The first pass gives N frames; frame k stands for the moment span [k, k+1) of the exposure [0, N).
2. The exposure is cut into K = ceil(M / N) equal spans. The blurry image of span j is the average of
   the first-pass frames over it (each frame weighted by how much of the span it covers, so with
   N = 7, K = 4 each span averages 1.75 frames' worth of neighbouring frames).
3. The model runs on the K new blurry images; each gives N frames inside its span.
4. A blurry image does not tell the direction of time, so each span's frames are put in the direction
   (forward or reversed) that best matches the first pass interpolated at their moments.
5. The K*N frames are concatenated in time order; if K*N > M, M of them are taken at evenly spaced
   positions. N = 7, M = 28 gives K = 4 and exactly 28 frames, as in the paper.

The model runs under ``torch.no_grad()`` in whatever mode it is in (call ``model.eval()`` first).

Example::

    frames = multiply_frames(model, blurry, 28)      # blurry (B, 3, H, W) -> (B, 28, 3, H, W)
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from blurtools.errors import BlurtoolsError, UsageError

VideoModel = Callable[[torch.Tensor], torch.Tensor]


def span_weights(frames: int, spans: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """(spans, frames) weights: row j averages the frames over span j of [0, frames); rows sum to 1."""
    if frames < 1 or spans < 1:
        raise UsageError(f"span_weights: frames and spans must be >= 1, got {frames} and {spans}")
    width = frames / spans
    w = torch.zeros(spans, frames, dtype=torch.float64)
    for j in range(spans):
        a, b = j * width, (j + 1) * width
        for k in range(int(math.floor(a)), min(frames, int(math.ceil(b)))):
            w[j, k] = max(0.0, min(b, k + 1) - max(a, k)) / width
    return w.to(dtype=dtype, device=device)


def _interpolate(seq: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    # seq (B, N, C, H, W) sampled at frame centres k + 0.5; linear in time, clamped at the ends.
    n = seq.shape[1]
    pos = (times - 0.5).clamp(0, n - 1)
    lo = pos.floor().long().clamp(max=n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    frac = (pos - lo.to(pos.dtype)).view(1, -1, 1, 1, 1).to(seq.dtype)
    return seq[:, lo] * (1 - frac) + seq[:, hi] * frac


def _run(model: VideoModel, blurry: torch.Tensor) -> torch.Tensor:
    out = model(blurry)
    if out.dim() != 5 or out.shape[0] != blurry.shape[0] or out.shape[-3:] != blurry.shape[-3:]:
        raise BlurtoolsError(f"multiply_frames: the model must map (B, 3, H, W) to (B, N, 3, H, W); it gave "
                             f"{tuple(out.shape)} for {tuple(blurry.shape)}")
    return out


def multiply_frames(model: VideoModel, blurry: torch.Tensor, target_frames: int) -> torch.Tensor:
    """``target_frames`` frames in time order from a video model that makes N per blurry image.

    Args:
        model: callable (B, 3, H, W) -> (B, N, 3, H, W), e.g. any ``kind == "video"`` model.
        blurry: (B, 3, H, W) float in [0, 1].
        target_frames: M >= 1. M <= N takes M evenly spaced frames of the first pass.
    Returns:
        (B, M, 3, H, W) on blurry's device.
    Raises:
        UsageError: M < 1 or blurry not (B, 3, H, W).
    """
    if blurry.dim() != 4 or blurry.shape[1] != 3:
        raise UsageError(f"multiply_frames: expected blurry (B, 3, H, W), got {tuple(blurry.shape)}")
    if target_frames < 1:
        raise UsageError(f"multiply_frames: target_frames must be >= 1, got {target_frames}")
    with torch.no_grad():
        first = _run(model, blurry)
        b, n = first.shape[:2]
        spans = math.ceil(target_frames / n)
        if spans == 1:
            seq = first
        else:
            w = span_weights(n, spans, first.dtype, first.device)
            sub_blurry = torch.einsum("jk,bkchw->bjchw", w, first).flatten(0, 1)
            sub = _run(model, sub_blurry).view(b, spans, n, *first.shape[2:])
            width = n / spans
            parts = []
            for j in range(spans):
                times = j * width + (torch.arange(n, device=first.device, dtype=torch.float64) + 0.5) * width / n
                ref = _interpolate(first, times)
                fwd, rev = sub[:, j], sub[:, j].flip(1)
                e_fwd = (fwd - ref).pow(2).flatten(1).mean(1)
                e_rev = (rev - ref).pow(2).flatten(1).mean(1)
                parts.append(torch.where((e_fwd <= e_rev).view(-1, 1, 1, 1, 1), fwd, rev))
            seq = torch.cat(parts, dim=1)
        if seq.shape[1] == target_frames:
            return seq
        idx = torch.linspace(0, seq.shape[1] - 1, target_frames).round().long().to(seq.device)
        return seq[:, idx]
