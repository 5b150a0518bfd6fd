"""The common case of ``score`` without detours: two 8-bit (or two 16-bit) images with the same channels.

Their integers are scored where they lie, band by band (:mod:`blurtools.metrics.bands`): no float copy of
either image is made, which saves a third of the time per pair on the CPU. The numbers are those of the
general path (:func:`blurtools.metrics.image.compute_image_metrics` on the decoded tensors), which every
other case takes: alignment, luma, MATLAB SSIM, LPIPS, mixed bit depths, gray against RGB, sizes that
differ (whose error that path reports).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np
import torch

from blurtools.io.pair_decoding import DecodedPair
from blurtools.metrics._common import crop
from blurtools.metrics.bands import psnr_ssim_bands

PEAKS = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}


def takes_plain_path(opts: Any) -> bool:
    """Whether ScoreOptions ``opts`` score plain RGB/gray PSNR and skimage SSIM (no alignment, no luma)."""
    return not opts.align and not opts.y and opts.ssim_mode == "skimage"


def _planes(array: np.ndarray) -> torch.Tensor:
    """(H, W[, C]) integer array -> (1, C, H, W) tensor view of the same integers, alpha dropped."""
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.shape[2] in (2, 4):
        array = array[:, :, :-1]
    if array.dtype == np.uint16:  # torch's uint16 lacks arithmetic; int32 holds it exactly
        array = array.astype(np.int32)
    return torch.from_numpy(array).permute(2, 0, 1)[None]  # a view: the bands read the planes in place


def plain_integer_row(decoded: DecodedPair, crop_border: int) -> Optional[Dict[str, Any]]:
    """The score row of a decoded pair when both images hold integers of one depth and one channel count
    ({"name", "psnr", "ssim", "width", "height"}, as :func:`score_image_pairs` gives it); None otherwise
    (then the general path scores or reports it)."""
    a, b = decoded.pred, decoded.gt
    if a.dtype != b.dtype or a.dtype not in PEAKS or a.shape[:2] != b.shape[:2]:
        return None
    p, g = _planes(a), _planes(b)
    if p.shape != g.shape:
        return None
    peak = PEAKS[a.dtype]
    psnr, ssim = psnr_ssim_bands(crop(p, crop_border), crop(g, crop_border), peak)
    return {"name": decoded.pair.key, "psnr": float(psnr[0]), "ssim": float(ssim[0]),
            "width": int(p.shape[-1]), "height": int(p.shape[-2])}
