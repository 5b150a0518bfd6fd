"""Pixel losses: L1, L2 (MSE), Charbonnier and the PSNR loss.

Each takes a prediction and a target of the same shape (any shape, usually (B, C, H, W) in [0, 1]) and
returns the mean over every element as a 0-dim tensor, so weights mean the same thing whatever the image
size.

Example::

    >>> import torch
    >>> p, t = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    >>> float(l1(p, t)), float(mse(p, t))
    (0.5, 0.25)
"""

from __future__ import annotations

from typing import Callable, Dict

import torch

from blurtools.errors import BlurtoolsError


def _check_pair(pred: torch.Tensor, target: torch.Tensor, name: str) -> None:
    if pred.shape != target.shape:
        raise BlurtoolsError(f"{name}: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error."""
    _check_pair(pred, target, "l1")
    return (pred - target).abs().mean()


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error (the L2 loss of the papers, averaged rather than summed)."""
    _check_pair(pred, target, "mse")
    return (pred - target).pow(2).mean()


l2 = mse


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Charbonnier loss mean(sqrt((pred - target)^2 + eps^2)), a differentiable L1.

    Args:
        eps: the smoothing width; 1e-3 (as in LapSRN/MPRNet) for images in [0, 1].
    """
    _check_pair(pred, target, "charbonnier")
    return torch.sqrt((pred - target).pow(2) + eps * eps).mean()


def psnr_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Minus the PSNR (peak 1) of each sample, averaged: mean_i 10 log10(mean((pred_i - target_i)^2) + eps).

    NAFNet's training loss (Chen et al. 2022); in dB, so a weight of 1 trades one dB per unit. Needs the
    batch as the first dimension, (B, ...).
    """
    _check_pair(pred, target, "psnr")
    per_sample = (pred - target).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(per_sample + eps).mean()


PIXEL_LOSSES: Dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": l1,
    "l2": mse,
    "mse": mse,
    "charbonnier": charbonnier,
    "psnr": psnr_loss,
}
