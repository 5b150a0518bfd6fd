"""PSNR and SSIM over a valid region only: scoring aligned images whose warp left an empty border.

After a prediction is warped onto the ground truth (:mod:`blurtools.ops.registration`), part of the frame
has no data. These metrics take a mask of the pixels that do and score only those:

- ``masked_psnr``: 10 log10(1 / MSE), the MSE over the masked pixels of every channel.
- ``masked_ssim``: the skimage-convention SSIM map (11x11 Gaussian window, sigma 1.5, K1 = 0.01,
  K2 = 0.03, population covariance; :mod:`blurtools.metrics.ssim`), averaged per channel over the
  pixels selected by ``window``, then over channels:

  - ``"window"`` (default): pixels whose whole 11x11 window lies inside the mask, so the empty border
    never enters a window. On a rectangular mask this equals skimage's SSIM of the cropped rectangle.
  - ``"centre"``: pixels whose centre lies in the mask, with both images set to 0 outside it, which is
    what RealBlur's evaluation script (Rim et al. 2020, ``evaluate_RealBlur.py``) does.

Values are scored as given, on the scale [0, 1] (MAX = 1): an aligned prediction is ``alpha *
warp(pred)``, neither rounded nor clamped, as the Köhler and RealBlur scripts score it. Both metrics
are scale-invariant, so this equals scoring the same values times 255 with ``data_range=255``.
Computation is float64 on the inputs' device; results are (B,) tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from blurtools.errors import UsageError
from blurtools.metrics.ssim import gaussian_window
from blurtools.ops.filters import separable_conv2d

SSIM_WINDOWS = ("window", "centre")

_K1, _K2 = 0.01, 0.03
_RADIUS = 5  # the 11-tap window of blurtools.metrics.ssim


def _check(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor, what: str) -> torch.Tensor:
    """Validate shapes; return the mask as float64 (B, 1 or C, H, W) on the images' device."""
    for name, t in (("pred", pred), ("gt", gt)):
        if not isinstance(t, torch.Tensor) or t.dim() != 4 or not t.is_floating_point():
            raise UsageError(f"{what}: {name} must be a float tensor (B, C, H, W), got "
                             f"{getattr(t, 'shape', type(t).__name__)}")
    if pred.shape != gt.shape:
        raise UsageError(f"{what}: pred shape {tuple(pred.shape)} differs from gt shape {tuple(gt.shape)}")
    b, c, h, w = pred.shape
    if not isinstance(mask, torch.Tensor) or mask.dim() != 4 or mask.shape[0] != b or mask.shape[1] not in (1, c) \
            or mask.shape[-2:] != pred.shape[-2:]:
        raise UsageError(f"{what}: mask must be (B, 1, H, W) or (B, C, H, W) matching {tuple(pred.shape)}, "
                         f"got {tuple(getattr(mask, 'shape', ()))}")
    return (mask.to(device=pred.device) > 0).to(torch.float64)


def masked_psnr(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB over the masked pixels (MAX = 1).

    Args:
        pred, gt: float (B, C, H, W), values on the scale [0, 1] (not clamped or rounded).
        mask: (B, 1, H, W) or (B, C, H, W), bool or float; nonzero = scored.

    Returns:
        (B,) float64; ``inf`` where pred equals gt on the mask, ``nan`` where the mask is empty.

    Example:
        >>> x = torch.rand(1, 3, 32, 32); y = x.clone(); y[..., :4] = 0
        >>> m = torch.ones(1, 1, 32, 32, dtype=torch.bool); m[..., :4] = False
        >>> masked_psnr(y, x, m)
        tensor([inf], dtype=torch.float64)
    """
    m = _check(pred, gt, mask, "masked_psnr")
    err = (pred.to(torch.float64) - gt.to(torch.float64)).square() * m
    count = m.expand_as(err).flatten(1).sum(dim=1)
    return 10.0 * torch.log10(count / err.flatten(1).sum(dim=1))


def _ssim_map(p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """skimage-convention SSIM map (B, C, H-10, W-10) of float64 images on [0, 1]."""
    k = gaussian_window(p.dtype, p.device)
    b, c = p.shape[:2]
    stack = torch.cat((p, g, p * p, g * g, p * g), dim=1)
    ux, uy, uxx, uyy, uxy = separable_conv2d(stack, k, k, padding="valid").split(c, dim=1)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = _K1 ** 2, _K2 ** 2
    return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))


def window_mask(mask: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) mask -> (B, K, H-10, W-10) float64: 1 where the 11x11 window centred there is all inside."""
    m = (mask > 0).to(torch.float64)
    size = 2 * _RADIUS + 1
    counts = F.avg_pool2d(m, size, stride=1) * (size * size)
    return (counts > size * size - 0.5).to(torch.float64)


def masked_ssim(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor, window: str = "window") -> torch.Tensor:
    """Per-image SSIM (skimage convention) over the masked region.

    Args:
        pred, gt: float (B, C, H, W), values on the scale [0, 1]; H, W >= 11.
        mask: (B, 1, H, W) or (B, C, H, W), bool or float; nonzero = valid.
        window: ``"window"`` averages the SSIM map over pixels whose whole 11x11 window is valid (the
            border a warp leaves empty never counts); ``"centre"`` over pixels whose centre is valid,
            the images zeroed outside the mask, as RealBlur's evaluation script does.

    Returns:
        (B,) float64; ``nan`` where no pixel qualifies (a mask thinner than the window).

    Example:
        >>> x = torch.rand(1, 3, 40, 40); m = torch.ones(1, 1, 40, 40); m[..., :6] = 0
        >>> y = x.clone(); y[..., :6] = 0                  # the empty border of a warp
        >>> masked_ssim(y, x, m)
        tensor([1.], dtype=torch.float64)
    """
    if window not in SSIM_WINDOWS:
        raise UsageError(f"masked_ssim: window must be one of {', '.join(SSIM_WINDOWS)}, got {window!r}")
    m = _check(pred, gt, mask, "masked_ssim")
    h, w = pred.shape[-2:]
    if min(h, w) < 2 * _RADIUS + 1:
        raise UsageError(f"masked_ssim: a {h}x{w} image is smaller than the 11x11 window")
    p, g = pred.to(torch.float64), gt.to(torch.float64)
    if window == "centre":
        p, g = p * m, g * m
        weight = m[..., _RADIUS:h - _RADIUS, _RADIUS:w - _RADIUS]
    else:
        weight = window_mask(m)
    smap = _ssim_map(p, g)
    weight = weight.expand_as(smap)
    per_channel = (smap * weight).sum(dim=(-2, -1)) / weight.sum(dim=(-2, -1))
    return per_channel.mean(dim=1)


def inner_rectangle(mask: torch.Tensor) -> "tuple[int, int, int, int] | None":
    """A large axis-aligned rectangle inside a 2-D mask: (top, bottom, left, right), ends exclusive.

    Greedy: drop the border row or column with the largest invalid fraction until none is left. Exact for
    the rectangle a translation leaves; for the near-rectangle of a small homography it keeps all but a
    sliver. Used to give metrics that cannot take a mask (LPIPS) an all-valid crop. None if nothing is left.
    """
    m = (mask.detach().to("cpu") > 0).numpy()
    if m.ndim != 2:
        raise UsageError(f"inner_rectangle: expected an (H, W) mask, got shape {tuple(m.shape)}")
    top, bottom, left, right = 0, m.shape[0], 0, m.shape[1]
    while top < bottom and left < right:
        sub = m[top:bottom, left:right]
        if sub.all():
            return top, bottom, left, right
        bad = {
            "top": 1 - sub[0].mean(), "bottom": 1 - sub[-1].mean(),
            "left": 1 - sub[:, 0].mean(), "right": 1 - sub[:, -1].mean(),
        }
        side = max(bad, key=bad.get)
        if side == "top":
            top += 1
        elif side == "bottom":
            bottom -= 1
        elif side == "left":
            left += 1
        else:
            right -= 1
    return None
