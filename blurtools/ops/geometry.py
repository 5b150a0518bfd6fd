"""Cropping and padding image tensors: the one centre crop and the one pad-to-a-multiple of blurtools."""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

__all__ = ["centre_crop", "pad_to_multiple"]


def centre_crop(x: torch.Tensor, side: int) -> torch.Tensor:
    """The central part of (..., H, W) ``x``, at most ``side`` x ``side``, as a view.

    Each dimension shorter than ``side`` is kept whole; ``side <= 0`` keeps the whole image.
    """
    h, w = x.shape[-2:]
    ch, cw = (h, w) if side <= 0 else (min(side, h), min(side, w))
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top:top + ch, left:left + cw]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Pad (..., C, H, W) at the bottom/right to multiples of ``multiple``; returns (padded, (H, W)).

    Reflect padding where the image is large enough, replicate otherwise (reflect needs pad < size);
    ``x`` itself when H and W are multiples already. Crop a result back with ``y[..., :H, :W]``.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)
