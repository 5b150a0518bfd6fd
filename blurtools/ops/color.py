"""Colour conversions on (B, C, H, W) tensors."""

from __future__ import annotations

import torch

from blurtools.errors import BlurtoolsError

_BT601 = (65.481, 128.553, 24.966)
_REC601 = (0.299, 0.587, 0.114)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma as the deblurring papers compute it.

    Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 for R, G, B in [0, 255]; returned divided by 255, so
    the result is in [16/255, 235/255].

    Args:
        x: (B, 3, H, W) RGB in [0, 1]; a (B, 1, H, W) input is taken to be luma already and returned.
    Returns:
        (B, 1, H, W) in [0, 1] scale.
    """
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise BlurtoolsError(f"rgb_to_y: expected (B, 3, H, W), got {tuple(x.shape)}")
    if x.shape[1] == 1:
        return x
    w = torch.tensor(_BT601, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (16.0 + (x * w).sum(1, keepdim=True)) / 255.0


def to_gray(x: torch.Tensor) -> torch.Tensor:
    """Rec.601 luminance of (B, C, H, W) -> (B, 1, H, W), values in the input's range.

    RGB (C = 3): 0.299 R + 0.587 G + 0.114 B (as OpenCV's RGB2GRAY); one channel: the input itself; any
    other channel count: the channels' mean.
    """
    if x.shape[1] == 1:
        return x
    if x.shape[1] == 3:
        w = torch.tensor(_REC601, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    return x.mean(dim=1, keepdim=True)
