"""Peak signal-to-noise ratio, per image, in float64.

PSNR = 10 log10(MAX^2 / MSE) with the MSE taken over every pixel and channel of one image; a set's
score is the mean of the per-image values (the convention of the deblurring papers: RGB, no crop, on
the saved 8-bit images, i.e. ``data_range=255``).
"""

from __future__ import annotations

import torch

from blurtools.metrics._common import prepare


def psnr(
    pred: torch.Tensor,
    gt: torch.Tensor,
    data_range: float = 1.0,
    crop_border: int = 0,
    y_channel: bool = False,
    quantize: bool | None = None,
) -> torch.Tensor:
    """Per-image PSNR in dB.

    Args:
        pred, gt: float tensors (B, C, H, W), same shape and device, values in [0, 1].
        data_range: the integer peak the [0, 1] values stand for and the MAX of the formula, on the
            scale [0, data_range]: 1.0 scores the floats as they are; 255 / 65535 score 8-bit /
            16-bit images. Two images read from 8-bit files with ``data_range=255`` give exactly
            ``skimage.metrics.peak_signal_noise_ratio(a_uint8, b_uint8, data_range=255)``.
        crop_border: pixels dropped on every side before scoring.
        y_channel: score BT.601 luma (Y = 16 + (65.481 R + 128.553 G + 24.966 B)/255 on the 8-bit
            scale) instead of RGB; gray input (C = 1) is taken as luma.
        quantize: round clamp(x, 0, 1) * data_range to integers first (what saving at that depth
            stores). None (default) = quantize exactly when data_range > 1.

    Returns:
        (B,) float64 tensor on the input's device. ``inf`` where an image equals its reference
        (MSE = 0); the mean over a set that contains one is then ``inf`` too.

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> psnr(x, (x + 0.01).clamp(0, 1), data_range=255).shape
        torch.Size([2])
    """
    p, g = prepare(
        pred, gt, data_range=data_range, quantize=quantize, crop_border=crop_border,
        y_channel=y_channel, what="psnr",
    )
    return psnr_prepared(p, g, data_range)


def psnr_prepared(p: torch.Tensor, g: torch.Tensor, data_range: float) -> torch.Tensor:
    """PSNR of images already scaled by :func:`blurtools.metrics._common.prepare` (float64 on [0, peak])."""
    mse = (p - g).square().flatten(1).mean(dim=1)
    peak = float(data_range)
    # MSE = 0 gives peak^2/0 = inf and log10(inf) = inf: identical images score inf, no warning.
    return 10.0 * torch.log10((peak * peak) / mse)
