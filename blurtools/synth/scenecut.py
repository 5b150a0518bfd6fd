"""Scene-cut detection with PySceneDetect's ContentDetector score, computed in torch.

A window that contains a cut averages two unrelated shots into a ghost image and must be rejected. The content score between consecutive frames is the mean absolute difference of their
H, S and V channels, averaged over the three channels, in OpenCV's 8-bit HSV convention that
PySceneDetect uses (H in 0..180, S and V in 0..255); a cut is a score above 27 (its default threshold).
Frames are first subsampled by ``width // 256`` in each direction, like PySceneDetect's automatic
downscaling, which makes the score cheap and insensitive to noise.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from blurtools.errors import BlurtoolsError

DEFAULT_THRESHOLD = 27.0


def rgb_to_hsv_cv(x: torch.Tensor) -> torch.Tensor:
    """RGB (..., 3, H, W) in [0, 1] -> HSV (..., 3, H, W) on OpenCV's 8-bit scales (H 0..180, S, V 0..255)."""
    if x.dim() < 3 or x.shape[-3] != 3:
        raise BlurtoolsError(f"rgb_to_hsv_cv: expected (..., 3, H, W), got {tuple(x.shape)}")
    r, g, b = x.unbind(-3)
    v, _ = x.max(dim=-3)
    mn, _ = x.min(dim=-3)
    d = v - mn
    s = torch.where(v > 0, d / v.clamp_min(1e-12), torch.zeros_like(v))
    dd = d.clamp_min(1e-12)
    h = torch.where(v == r, 60.0 * (g - b) / dd,
                    torch.where(v == g, 120.0 + 60.0 * (b - r) / dd, 240.0 + 60.0 * (r - g) / dd))
    h = torch.where(d > 0, h, torch.zeros_like(h))
    h = torch.where(h < 0, h + 360.0, h)
    return torch.stack([h / 2.0, s * 255.0, v * 255.0], dim=-3)


def downscale_factor(width: int, effective_width: int = 256) -> int:
    """PySceneDetect's automatic downscale: ``width // effective_width`` (at least 1)."""
    return max(1, width // effective_width)


def content_scores(frames: "torch.Tensor | Sequence[np.ndarray]", downscale: Optional[int] = None) -> torch.Tensor:
    """Content scores between consecutive frames.

    Args:
        frames: (N, 3, H, W) float in [0, 1], or a sequence of uint8/uint16 (H, W, 3) arrays.
        downscale: subsampling step; None = automatic (``W // 256``), 1 = full resolution.
    Returns:
        (N - 1,) float32 scores; element i compares frame i and frame i + 1.

    Example:
        >>> content_scores(torch.zeros(3, 3, 8, 8))
        tensor([0., 0.])
    """
    if not isinstance(frames, torch.Tensor):
        if len(frames) == 0:
            raise BlurtoolsError("content_scores: no frames")
        step = downscale or downscale_factor(frames[0].shape[1])
        peak = 255.0 if frames[0].dtype == np.uint8 else 65535.0
        small = np.stack([np.asarray(f)[::step, ::step] for f in frames])
        x = torch.from_numpy(small).permute(0, 3, 1, 2).float().div_(peak)
    else:
        if frames.dim() != 4 or frames.shape[1] != 3:
            raise BlurtoolsError(f"content_scores: expected (N, 3, H, W), got {tuple(frames.shape)}")
        step = downscale or downscale_factor(frames.shape[-1])
        x = frames[..., ::step, ::step].float()
    if x.shape[0] < 2:
        return torch.zeros(0)
    hsv = rgb_to_hsv_cv(x)
    return (hsv[1:] - hsv[:-1]).abs().mean(dim=(-2, -1)).mean(dim=-1).cpu()
