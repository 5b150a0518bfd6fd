"""How ``score`` scores: the options of one run, without torch (the CLI builds them while torch loads)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class ScoreOptions:
    """How to score. ``ssim_mode``: skimage|matlab3d; ``y``: BT.601 luma; ``crop_border``: pixels per side.

    ``align``: None, "translation" or "homography" (see :func:`blurtools.ops.registration.align`, with
    ``max_shift`` and ``min_corr``); ``ssim_window``: "window" or "centre" (:func:`masked_ssim`).
    """

    ssim_mode: str = "skimage"
    y: bool = False
    crop_border: int = 0
    batch: int = 8
    workers: int = 2
    align: Optional[str] = None
    max_shift: float = 64.0
    min_corr: float = 0.5
    ssim_window: str = "window"
