"""The reblur loss of the kernel-basis estimator (Carbajal, Vitoria, Delbracio, Musé, Lezama 2021):
||reblur(sharp, k, m) - blurry||^2, with the blur model of :mod:`blurtools.ops.kernel_basis`."""

from __future__ import annotations

import torch

from blurtools.errors import BlurtoolsError
from blurtools.ops.kernel_basis import reblur

__all__ = ["reblur_loss"]


def reblur_loss(sharp: torch.Tensor, blurry: torch.Tensor, kernels: torch.Tensor, mixing: torch.Tensor,
                border: str = "valid") -> torch.Tensor:
    """Reblur loss mean((reblur(sharp, kernels, mixing) - blurry)^2).

    Args:
        sharp, blurry: (B, C, H, W) in [0, 1].
        kernels: (B, K, ks, ks); mixing: (B, K, H, W) (the estimator's output for ``blurry``).
        border: "valid" compares only pixels at least ks//2 from the border, where the blurry image holds
            light from outside the sharp frame that no kernel can explain (Carbajal et al. train this way);
            "same" compares every pixel.
    Returns:
        0-dim tensor.
    """
    if sharp.shape != blurry.shape:
        raise BlurtoolsError(f"reblur_loss: sharp {tuple(sharp.shape)} and blurry {tuple(blurry.shape)} differ")
    pred = reblur(sharp, kernels, mixing)
    if border == "valid":
        p = kernels.shape[-1] // 2
        h, w = sharp.shape[-2:]
        if h <= 2 * p or w <= 2 * p:
            raise BlurtoolsError(f"reblur_loss: a {h}x{w} image has no valid region for {kernels.shape[-1]}x"
                                 f"{kernels.shape[-1]} kernels; use larger crops or border='same'")
        pred, blurry = pred[..., p:h - p, p:w - p], blurry[..., p:h - p, p:w - p]
    elif border != "same":
        raise BlurtoolsError(f"reblur_loss: border must be 'valid' or 'same', got {border!r}")
    return (pred - blurry).pow(2).mean()

