"""The measures behind issue 18's motion gates, on tensors (shared by benchmarks/motion_gates.py and its tests).

- :func:`video_psnr`: order-invariant mean PSNR of N frames against N true frames, both as 8-bit images
  (the better of forward and reversed order, as ``blurtools score --video``).
- :func:`frame_positions` / :func:`extent`: where each frame sits relative to the middle one, by
  registration (:func:`blurtools.ops.registration.align`, translation), and the largest distance between two
  of them: how far the video moves.
- :func:`gradient_ratio`: each frame's mean gradient magnitude (luma, central differences, 8 px in from the
  border) over a reference image's: how sharp each frame is against the default deblur's output.
"""

from __future__ import annotations

from typing import List

import torch

from blurtools.ops.color import to_gray as to_luma
from blurtools.ops.registration import phase_correlation, refine_translation


def quantised(x: torch.Tensor) -> torch.Tensor:
    """(..., C, H, W) in [0, 1] rounded to the 8-bit values a saved PNG holds."""
    return (x.float().clamp(0, 1) * 255).round() / 255


def video_psnr(frames: torch.Tensor, truth: torch.Tensor) -> float:
    """Order-invariant mean PSNR (dB) of (N, C, H, W) frames against (N, C, H, W) true frames, 8-bit."""
    p, g = quantised(frames), quantised(truth)

    def mean_psnr(a: torch.Tensor) -> float:
        mse = (a - g).square().mean(dim=(1, 2, 3)).clamp_min(1e-12)
        return float((-10 * torch.log10(mse)).mean())

    return max(mean_psnr(p), mean_psnr(p.flip(0)))


def frame_positions(frames: torch.Tensor, side: int = 256, max_shift: float = 48.0) -> torch.Tensor:
    """(N, 2) position (dx, dy) px of every frame's content relative to the middle frame, by registration.

    The translation of :func:`blurtools.ops.registration.align` (phase correlation, then Gauss-Newton), on
    the smoothed luma of a central crop at most ``side`` px (the frames of one video share their scene).
    """
    from blurtools.ops.geometry import centre_crop
    from blurtools.ops.filters import gaussian_blur

    y = gaussian_blur(to_luma(centre_crop(frames.float(), side)), 1.0)
    mid = y[y.shape[0] // 2: y.shape[0] // 2 + 1].expand(y.shape[0], -1, -1, -1)
    coarse, _ = phase_correlation(y, mid, max_shift)
    return refine_translation(y, mid, coarse, iters=15, border=4).float()


def extent(frames: torch.Tensor) -> float:
    """The largest distance (px) between two frames' registered positions."""
    pos = frame_positions(frames)
    return float((pos[:, None] - pos[None]).norm(dim=-1).max())


def mean_gradient(x: torch.Tensor, border: int = 8) -> torch.Tensor:
    """(N,) mean gradient magnitude of the luma of (N, C, H, W) images, ``border`` px in from the edges."""
    y = to_luma(x.float())[:, 0]
    gy, gx = torch.gradient(y, dim=(-2, -1))
    return torch.hypot(gx, gy)[:, border:-border, border:-border].mean(dim=(-2, -1))


def gradient_ratio(frames: torch.Tensor, reference: torch.Tensor) -> List[float]:
    """Each frame's :func:`mean_gradient` over the (1, C, H, W) reference's."""
    ref = float(mean_gradient(reference)[0])
    return [float(g) / max(ref, 1e-12) for g in mean_gradient(quantised(frames))]
