"""Structural similarity (Wang et al. 2004), batched in float64, in two conventions that differ.

- ``"skimage"`` (default): ``skimage.metrics.structural_similarity(a, b, channel_axis=-1,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=L)``. Each channel is
  filtered with an 11-tap Gaussian (sigma 1.5, truncate 3.5), the SSIM map is cropped by the filter
  radius (5 px) and averaged, then the channels are averaged. Inside the cropped region the filter only
  reads real pixels, so a 'valid' convolution reproduces skimage's reflect-then-crop exactly.
- ``"matlab3d"``: MATLAB ``ssim`` on an RGB array, the number MPRNet / Restormer / NAFNet report on
  GoPro. The image is one volume (H, W, channel) filtered by an 11x11x11 Gaussian (sigma 1.5) with
  replicate padding on all three axes; the full map (no crop) is averaged. On a gray image this is
  MATLAB's 2-D ``ssim`` (imgaussfilt, replicate padding).

Both use K1 = 0.01, K2 = 0.03, population covariance, C1 = (K1 L)^2 and C2 = (K2 L)^2 with
L = ``data_range``, and compute on values scaled to [0, L], exactly as the reference tools do on
integer arrays.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from blurtools.errors import UsageError
from blurtools.metrics._common import prepare

SSIM_MODES = ("skimage", "matlab3d")

_K1 = 0.01
_K2 = 0.03
_SIGMA = 1.5
# skimage: r = int(truncate * sigma + 0.5) with truncate 3.5; MATLAB: ceil(3 * sigma). Both give 5.
RADIUS = 5


def gaussian_window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The normalised 11-tap Gaussian (sigma 1.5), computed as scipy.ndimage does."""
    x = torch.arange(-RADIUS, RADIUS + 1, dtype=torch.float64)
    phi = torch.exp(-0.5 / (_SIGMA * _SIGMA) * x * x)
    return (phi / phi.sum()).to(dtype=dtype, device=device)


def filter_hw(x: torch.Tensor, k: torch.Tensor, acc: Optional[torch.Tensor] = None,
              out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Separable 'valid' correlation of every (H, W) plane of x (..., H, W) with k (n,) -> (..., H-n+1, W-n+1).

    Written as n shifted multiply-adds per axis: on the CPU, conv2d (float32 or float64) is several times
    slower for a single-channel 11-tap filter, while these element-wise passes give identical results
    (to rounding, ~1e-16 relative). ``acc`` (..., H-n+1, W) and ``out`` are optional preallocated
    buffers of x's dtype for the intermediate and the result.
    """
    n = k.numel()
    h, w = x.shape[-2:]
    taps = [float(v) for v in k]
    hv, wv = h - n + 1, w - n + 1
    acc = torch.mul(x[..., 0:hv, :], taps[0], out=acc)
    for i in range(1, n):
        acc.add_(x[..., i:i + hv, :], alpha=taps[i])
    out = torch.mul(acc[..., 0:wv], taps[0], out=out)
    for i in range(1, n):
        out.add_(acc[..., i:i + wv], alpha=taps[i])
    return out


def ssim_constants(data_range: float) -> tuple[float, float]:
    """(C1, C2) = ((0.01 L)^2, (0.03 L)^2) for the peak L = data_range."""
    return (_K1 * float(data_range)) ** 2, (_K2 * float(data_range)) ** 2


def _channel_matrix(c: int, k: torch.Tensor) -> torch.Tensor:
    """(C, C) matrix M with M @ v = the 11-tap filter along the channel axis under replicate padding."""
    m = torch.zeros(c, c, dtype=k.dtype, device=k.device)
    for i in range(c):
        for t in range(-RADIUS, RADIUS + 1):
            j = min(max(i + t, 0), c - 1)
            m[i, j] += k[t + RADIUS]
    return m


def _ssim_map_3d(p: torch.Tensor, g: torch.Tensor, data_range: float) -> torch.Tensor:
    """SSIM map (B, C, H, W) of float64 p, g on [0, data_range] in the matlab3d convention.

    The moments are filtered in float32 on images centred on data_range / 2 (variances and covariance are
    shift-invariant, and centring keeps the squares small, so float32 loses nothing that matters: the mean
    SSIM stays within ~1e-8 of float64): several times faster on the CPU than float64.
    """
    k = gaussian_window(torch.float32, p.device)
    offset = 0.5 * float(data_range)
    c1, c2 = ssim_constants(data_range)
    return combine_moments(_moments_3d(p, g, k, offset), offset, c1, c2).double()


def _moment_stack(p: torch.Tensor, g: torch.Tensor, offset: float) -> torch.Tensor:
    pc, gc = (p - offset).float(), (g - offset).float()
    return torch.stack((pc, gc, pc * pc, gc * gc, pc * gc))


def _moments_3d(p: torch.Tensor, g: torch.Tensor, k: torch.Tensor, offset: float) -> torch.Tensor:
    stack = _moment_stack(p, g, offset)
    n, b, c, h, w = stack.shape
    stack = F.pad(stack.reshape(n * b * c, 1, h, w), (RADIUS,) * 4, mode="replicate")
    stack = filter_hw(stack, k).reshape(n, b, c, h, w)
    return torch.einsum("ij,nbjhw->nbihw", _channel_matrix(c, k), stack)


def combine_moments(stack: torch.Tensor, offset: float, c1: float, c2: float) -> torch.Tensor:
    mx, my, uxx, uyy, uxy = stack.unbind(0)
    vx = uxx - mx * mx
    vy = uyy - my * my
    vxy = uxy - mx * my
    ux, uy = mx + offset, my + offset
    num = (2 * ux * uy + c1) * (2 * vxy + c2)
    den = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    return num / den


def ssim(
    pred: torch.Tensor,
    gt: torch.Tensor,
    data_range: float = 1.0,
    mode: str = "skimage",
    crop_border: int = 0,
    y_channel: bool = False,
    quantize: bool | None = None,
) -> torch.Tensor:
    """Per-image SSIM.

    Args:
        pred, gt: float tensors (B, C, H, W), same shape and device, values in [0, 1]. C is 1 (gray)
            or 3 (RGB); any C works. Both sides must be >= 11 px in "skimage" mode.
        data_range: the integer peak the [0, 1] values stand for, used as L in C1 = (0.01 L)^2 and
            C2 = (0.03 L)^2: 255 for 8-bit images, 65535 for 16-bit, 1.0 for plain floats. Images
            read from 8-bit files scored with ``data_range=255`` equal skimage on the uint8 arrays
            with ``data_range=255`` (to ~1e-12).
        mode: "skimage" (default) or "matlab3d"; see the module docstring. Not comparable.
        crop_border: pixels dropped on every side before scoring (before the 5 px skimage crop).
        y_channel: score BT.601 luma instead of RGB (gray input is taken as luma).
        quantize: round clamp(x, 0, 1) * data_range to integers first. None (default) = quantize
            exactly when data_range > 1.

    Returns:
        (B,) float64 tensor on the input's device.

    Example:
        >>> x = torch.rand(2, 3, 37, 53)
        >>> ssim(x, x, data_range=255)
        tensor([1., 1.], dtype=torch.float64)
    """
    if mode not in SSIM_MODES:
        raise UsageError(f"ssim: unknown mode {mode!r}; choose one of {', '.join(SSIM_MODES)}")
    p, g = prepare(
        pred, gt, data_range=data_range, quantize=quantize, crop_border=crop_border,
        y_channel=y_channel, what="ssim",
    )
    return ssim_prepared(p, g, data_range, mode)


def ssim_prepared(p: torch.Tensor, g: torch.Tensor, data_range: float, mode: str) -> torch.Tensor:
    """SSIM of images already scaled by :func:`blurtools.metrics._common.prepare`; (B,) float64.

    The skimage convention runs band by band (:mod:`blurtools.metrics.bands`, the same numbers, faster).
    """
    if mode == "skimage":
        from blurtools.metrics.bands import psnr_ssim_bands  # bands builds on this module's filter

        return psnr_ssim_bands(p, g, data_range, want_psnr=False)[1]
    return _ssim_map_3d(p, g, data_range).flatten(1).mean(dim=1)
