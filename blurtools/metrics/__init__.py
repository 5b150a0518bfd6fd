"""blurtools.metrics: PSNR, SSIM (skimage and MATLAB-3D conventions), LPIPS, order-invariant video scoring.

Inputs are float tensors (B, C, H, W) with values in [0, 1]; ``data_range`` names the integer peak those
values stand for (1.0 plain floats, 255 8-bit, 65535 16-bit) and, by default, values are rounded to that
depth's integers first, so images read from 8/16-bit files score exactly as skimage does on the arrays.
All computation is float64 on the inputs' device; results are (B,) float64 tensors.
"""

from blurtools.metrics.image import compute_image_metrics
from blurtools.metrics.lpips_metric import (
    LPIPS_NETS,
    TRUNK_FILES,
    LpipsMetric,
    trunk_checkpoint_dir,
    trunk_path,
)
from blurtools.metrics.psnr import psnr
from blurtools.metrics.ssim import SSIM_MODES, ssim
from blurtools.metrics.video import ORDERS, VideoScore, score_video

__all__ = [
    "LPIPS_NETS",
    "ORDERS",
    "SSIM_MODES",
    "TRUNK_FILES",
    "LpipsMetric",
    "VideoScore",
    "compute_image_metrics",
    "psnr",
    "score_video",
    "ssim",
    "trunk_checkpoint_dir",
    "trunk_path",
]
