"""Several metrics of a batch in one call, all on the same prepared images."""

from __future__ import annotations

import torch

from blurtools.errors import UsageError
from blurtools.metrics._common import check_pair, crop, prepare, quantized_float32, resolve_quantize, to_scale
from blurtools.metrics.bands import psnr_ssim_bands
from blurtools.metrics.lpips_metric import LpipsMetric
from blurtools.metrics.psnr import psnr_prepared
from blurtools.metrics.ssim import SSIM_MODES, ssim_prepared


def compute_image_metrics(
    pred: torch.Tensor,
    gt: torch.Tensor,
    data_range: float = 1.0,
    ssim_mode: str = "skimage",
    y_channel: bool = False,
    crop_border: int = 0,
    lpips: LpipsMetric | None = None,
    quantize: bool | None = None,
) -> dict[str, torch.Tensor]:
    """PSNR, SSIM and (when ``lpips`` is given) LPIPS per image.

    Args:
        pred, gt: float (B, C, H, W) in [0, 1], same shape and device.
        data_range, y_channel, crop_border, quantize: as in :func:`psnr` / :func:`ssim`.
        ssim_mode: "skimage" or "matlab3d".
        lpips: a built :class:`LpipsMetric`, or None to skip LPIPS. LPIPS always sees RGB (never the
            Y channel), after the same crop and, when quantizing, the same rounding as PSNR/SSIM, so
            all three score the same pixels.

    Returns:
        {"psnr": (B,), "ssim": (B,)[, "lpips": (B,)]}, float64 tensors on the inputs' device.

    Example:
        >>> x = torch.rand(2, 3, 32, 32)
        >>> sorted(compute_image_metrics(x, x, data_range=255))
        ['psnr', 'ssim']
    """
    if ssim_mode not in SSIM_MODES:
        raise UsageError(f"ssim: unknown mode {ssim_mode!r}; choose one of {', '.join(SSIM_MODES)}")
    if ssim_mode == "skimage" and not y_channel and resolve_quantize(data_range, quantize):
        # Integer images (the common case): float32 holds them exactly, PSNR sums their squared error in
        # float64 and SSIM's moments are float32 anyway, so no float64 copy of the images is needed.
        check_pair(pred, gt, "psnr/ssim")
        p = crop(quantized_float32(pred, data_range), crop_border)
        g = crop(quantized_float32(gt, data_range), crop_border)
        ps, ss = psnr_ssim_bands(p, g, data_range)
        out = {"psnr": ps, "ssim": ss}
    else:
        # Scale, quantize, crop (and take luma) once for both metrics.
        p, g = prepare(pred, gt, data_range=data_range, quantize=quantize, crop_border=crop_border,
                       y_channel=y_channel, what="psnr/ssim")
        if ssim_mode == "skimage":
            ps, ss = psnr_ssim_bands(p, g, data_range)
            out = {"psnr": ps, "ssim": ss}
        else:
            out = {"psnr": psnr_prepared(p, g, data_range), "ssim": ssim_prepared(p, g, data_range, ssim_mode)}
    if lpips is not None:
        check_pair(pred, gt, "lpips")
        q = resolve_quantize(data_range, quantize)
        if q:
            # Score the stored image: same rounding as PSNR/SSIM, back on [0, 1].
            pred = to_scale(pred, data_range, True) / float(data_range)
            gt = to_scale(gt, data_range, True) / float(data_range)
        pred, gt = crop(pred, crop_border), crop(gt, crop_border)
        out["lpips"] = lpips(pred, gt)
    return out
