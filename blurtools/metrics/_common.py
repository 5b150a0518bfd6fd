"""Input handling shared by the metrics: shape checks, the integer scale, border crop, BT.601 luma.

Every metric takes float tensors (B, C, H, W) with values in [0, 1] plus a ``data_range`` that names the
integer peak those values stand for (1.0: score the floats as they are; 255: 8-bit; 65535: 16-bit).
Internally everything runs in float64 on the input's device, on the scale [0, data_range], so that images
decoded from 8/16-bit files score exactly like skimage on the integer arrays.
"""

from __future__ import annotations

import torch

from blurtools.errors import UsageError
from blurtools.ops.color import rgb_to_y


def check_pair(pred: torch.Tensor, gt: torch.Tensor, what: str) -> None:
    """Raise UsageError unless pred and gt are float tensors (B, C, H, W) of one shape on one device."""
    for name, t in (("pred", pred), ("gt", gt)):
        if not isinstance(t, torch.Tensor):
            raise UsageError(f"{what}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise UsageError(f"{what}: {name} must be (B, C, H, W), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise UsageError(
                f"{what}: {name} must be a float tensor in [0, 1], got {t.dtype} "
                "(divide integer images by their peak and pass data_range=peak)"
            )
    if pred.shape != gt.shape:
        raise UsageError(f"{what}: pred shape {tuple(pred.shape)} differs from gt shape {tuple(gt.shape)}")
    if pred.device != gt.device:
        raise UsageError(f"{what}: pred is on {pred.device} but gt is on {gt.device}")


def resolve_quantize(data_range: float, quantize: bool | None) -> bool:
    """``None`` means: quantize exactly when data_range > 1 (an integer bit depth)."""
    if not data_range > 0:
        raise UsageError(f"data_range must be > 0, got {data_range}")
    if quantize is None:
        quantize = data_range > 1
    if quantize and float(data_range) != round(float(data_range)):
        raise UsageError(f"quantize needs an integer data_range (255, 65535, ...), got {data_range}")
    return bool(quantize)


def to_scale(x: torch.Tensor, data_range: float, quantize: bool) -> torch.Tensor:
    """[0, 1] float -> float64 on [0, data_range]; quantized to the integers a file of that depth stores.

    Quantizing (clamp to [0, 1], times data_range, round half to even like numpy) recovers the exact
    integers of an image read from an 8/16-bit file despite the float32 rounding of k/255, and turns a
    network's float output into what saving it would store, which is what published tables score.
    """
    x = x.to(torch.float64)
    if quantize:
        return torch.round(x.clamp(0.0, 1.0) * float(data_range))
    return x * float(data_range)


def quantized_float32(x: torch.Tensor, data_range: float) -> torch.Tensor:
    """[0, 1] float -> float32 holding the integers round(clamp(x, 0, 1) * data_range) exactly.

    The same integers as :func:`to_scale` with quantize (for data_range <= 2^24, which every bit depth
    up to 16 is: a float32 k/255 or k/65535 times the peak lands within 1e-2 of k), in half the memory
    and passes of float64. For metrics whose arithmetic is exact on integers or done in float32 anyway.
    """
    return x.to(torch.float32).clamp(0.0, 1.0).mul_(float(data_range)).round_()


def crop(x: torch.Tensor, border: int) -> torch.Tensor:
    """Drop ``border`` pixels on every side of (…, H, W)."""
    if border < 0:
        raise UsageError(f"crop_border must be >= 0, got {border}")
    if border == 0:
        return x
    h, w = x.shape[-2:]
    if 2 * border >= min(h, w):
        raise UsageError(f"crop_border {border} leaves nothing of a {h}x{w} image")
    return x[..., border : h - border, border : w - border]


def luma_scaled(x: torch.Tensor, data_range: float) -> torch.Tensor:
    """BT.601 studio-range luma of (B, 3, H, W) values on [0, data_range] -> (B, 1, H, W), same scale.

    Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 on the 8-bit scale (blurtools.ops.color.rgb_to_y);
    a gray image (C = 1) is taken to be luma already, as rgb_to_y does.
    """
    if x.shape[1] not in (1, 3):
        raise UsageError(f"y_channel needs RGB (C=3) or gray (C=1) input, got C={x.shape[1]}")
    peak = float(data_range)
    return rgb_to_y(x / peak) * peak


def prepare(
    pred: torch.Tensor,
    gt: torch.Tensor,
    *,
    data_range: float,
    quantize: bool | None,
    crop_border: int,
    y_channel: bool,
    what: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check, scale to [0, data_range] in float64, crop and optionally take luma; returns (pred, gt)."""
    check_pair(pred, gt, what)
    q = resolve_quantize(data_range, quantize)
    p, g = to_scale(pred, data_range, q), to_scale(gt, data_range, q)
    p, g = crop(p, crop_border), crop(g, crop_border)
    if y_channel:
        p, g = luma_scaled(p, data_range), luma_scaled(g, data_range)
    return p, g
