"""PSNR and skimage-convention SSIM of image pairs in one pass over horizontal bands that fit in cache.

SSIM filters moment images with an 11-tap Gaussian, once down and once across: here four of them (x, y,
x² + y², xy; the formula needs the two variances only as their sum). Done on whole 720p images, every one
of those ~30 element-wise passes streams tens of megabytes through main memory; done on bands of ``band``
output rows (plus the 10 rows the filter reads beyond them), one plane at a time, the same passes stay in
the CPU's cache and run several times faster. The numbers are those of
:func:`blurtools.metrics.ssim.ssim_prepared` (moments in float32 on values centred on data_range / 2, the
map averaged in float64; ~1e-8 from skimage's float64) and :func:`blurtools.metrics.psnr.psnr_prepared`
(squared error summed in float64, exact on integers), up to rounding."""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch

from blurtools.errors import UsageError
from blurtools.metrics.ssim import RADIUS, filter_hw, gaussian_window, ssim_constants

#: Bytes of one band's moment stack (4 float32 planes of band + 10 rows): about 2 MB, 90 rows of 1280 px.
BAND_BYTES = 2 << 20


def band_rows(width: int) -> int:
    """Output rows per band for images ``width`` px wide (16 to 256)."""
    return max(16, min(256, BAND_BYTES // (16 * max(width, 1)) - 2 * RADIUS))


def _moments_into(out: torch.Tensor, p: torch.Tensor, g: torch.Tensor, offset: float) -> None:
    """Fill ``out`` (4, *p.shape) float32 with centred x, y, x² + y², xy of p, g (any real dtype).

    SSIM needs the variances only as their sum (sigma_x² + sigma_y² in the denominator), so four filtered
    images suffice, not five.
    """
    torch.sub(p, offset, out=out[0])
    torch.sub(g, offset, out=out[1])
    torch.mul(out[0], out[0], out=out[2]).addcmul_(out[1], out[1])
    torch.mul(out[0], out[1], out=out[3])


def _ssim_in_place(stack: torch.Tensor, offset: float, c1: float, c2: float) -> torch.Tensor:
    """The SSIM map from the filtered centred moments (4, ...) of :func:`_moments_into`, in their memory.

    The formula of :func:`blurtools.metrics.ssim.combine_moments`, with vx + vy taken together, in
    in-place passes (no temporaries but one).
    """
    mx, my, sum_sq, sxy = stack.unbind(0)
    var_sum = sum_sq.addcmul_(mx, mx, value=-1.0).addcmul_(my, my, value=-1.0)
    cov = sxy.addcmul_(mx, my, value=-1.0)
    ux, uy = mx.add_(offset), my.add_(offset)
    num = cov.mul_(2.0).add_(c2).mul_(torch.mul(ux, uy).mul_(2.0).add_(c1))
    den = var_sum.add_(c2).mul_(ux.square_().addcmul_(uy, uy).add_(c1))
    return num.div_(den)


def _squared_error(stack: torch.Tensor, pb: torch.Tensor, gb: torch.Tensor, stop: int, small_integers: bool) -> torch.Tensor:
    """Sum of squared differences over the first ``stop`` rows of a band, float64, exact on integers.

    For 8-bit integers the centred float32 moments (``stack[0]``, ``stack[1]``) already hold x and y
    exactly, and their squared differences (at most 255²) too: no float64 copy of the band is needed.
    """
    if small_integers:
        d = torch.sub(stack[0, :stop], stack[1, :stop])
        return d.mul_(d).sum(dtype=torch.float64)
    return (pb[:stop].double() - gb[:stop].double()).square_().sum()


def psnr_ssim_bands(p: torch.Tensor, g: torch.Tensor, data_range: float,
                    band: Optional[int] = None, want_psnr: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-image PSNR (dB) and SSIM (skimage convention) of images on the scale [0, data_range].

    Args:
        p, g: (B, C, H, W) real tensors (float64, float32 or an integer dtype) holding values on
            [0, data_range]; H, W >= 11. Integer-valued float32 input (decoded 8/16-bit files) scores
            exactly like the float64 integers.
        data_range: the peak L (255, 65535, 1.0), used in PSNR and in C1 = (0.01 L)², C2 = (0.03 L)².
        band: output rows per band (default :func:`band_rows`; memory ~ 32 * (band + 10) * W bytes).
        want_psnr: False skips the squared error (the PSNR tensor is then all NaN).

    Returns:
        (psnr, ssim): two (B,) float64 tensors on the inputs' device; PSNR is inf for identical images.
    """
    if p.shape != g.shape or p.dim() != 4:
        raise UsageError(f"psnr/ssim: expected two (B, C, H, W) tensors of one shape, got {tuple(p.shape)}, {tuple(g.shape)}")
    b, c, h, w = p.shape
    n = 2 * RADIUS + 1
    if min(h, w) < n:
        raise UsageError(f"ssim: a {h}x{w} image (after crop_border) is smaller than the 11x11 window of "
                         "skimage mode; use mode='matlab3d' or larger images")
    k = gaussian_window(torch.float32, p.device)
    offset = 0.5 * float(data_range)
    c1, c2 = ssim_constants(data_range)
    out_h = h - n + 1
    band = band or band_rows(w)
    ssim_sum = torch.zeros(b * c, dtype=torch.float64, device=p.device)
    sse = torch.zeros(b * c, dtype=torch.float64, device=p.device)
    planes_p, planes_g = p.reshape(b * c, h, w), g.reshape(b * c, h, w)
    buffers: Dict[int, Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    small_integers = not p.is_floating_point() and not g.is_floating_point() and data_range <= 255
    for plane in range(b * c):  # one plane at a time: a band of 4 moments then fits in the cache
        for top in range(0, out_h, band):
            rows = min(band, out_h - top)
            if rows not in buffers:  # one set for the full bands, one for the last
                buffers[rows] = (torch.empty((4, rows + n - 1, w), dtype=torch.float32, device=p.device),
                                 torch.empty((4, rows, w), dtype=torch.float32, device=p.device),
                                 torch.empty((4, rows, w - n + 1), dtype=torch.float32, device=p.device))
            stack, acc, filtered = buffers[rows]
            pb, gb = planes_p[plane, top:top + rows + n - 1], planes_g[plane, top:top + rows + n - 1]
            _moments_into(stack, pb, gb, offset)
            smap = _ssim_in_place(filter_hw(stack, k, acc, filtered), offset, c1, c2)
            ssim_sum[plane] += smap.sum(dtype=torch.float64)
            if want_psnr:
                # each image row counted once: the band's own rows, plus the last 10 rows at the last band
                stop = rows + (n - 1 if top + rows >= out_h else 0)
                sse[plane] += _squared_error(stack, pb, gb, stop, small_integers)
    ssim_sum, sse = ssim_sum.view(b, c).sum(dim=1), sse.view(b, c).sum(dim=1)
    ssim = ssim_sum / float(c * out_h * (w - n + 1))
    if not want_psnr:
        return torch.full_like(ssim, float("nan")), ssim
    peak = float(data_range)
    psnr = 10.0 * torch.log10((peak * peak) / (sse / float(c * h * w)))
    return psnr, ssim
