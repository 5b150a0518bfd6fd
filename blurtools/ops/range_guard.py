"""Keep a deconvolved image inside the range its blurry input shows nearby: ringing and new clipping removed.

A blurry image is a local average of the sharp one, so near every pixel the sharp scene holds values at
least as dark as the darkest and at least as bright as the brightest the blurry image shows within the
blur's reach. A deconvolution that went wrong at a strong edge (a kernel slightly off, a saturated light,
an edge the convolution model does not fit) rings: it overshoots beyond that range by a halo, or drives
pixels to pure black or white, and in colour the three channels ring differently (fringes).
:func:`limit_to_local_range` clips every pixel, per channel, to the blurry input's minimum and maximum over a
window around it, widened by a small margin and by whatever a second opinion (the deblur network's own
output) stands by. Real detail rarely lies outside (only features thinner than the blur, whose contrast
the blur spread out, and the network restores those); halos and fringes usually do.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from blurtools.errors import UsageError


def _max_filter(x: torch.Tensor, window: int) -> torch.Tensor:
    """Running maximum over a ``window`` x ``window`` square (separable; borders replicate)."""
    r = window // 2
    x = F.max_pool2d(F.pad(x, (r, r, 0, 0), mode="replicate"), (1, window), 1)
    return F.max_pool2d(F.pad(x, (0, 0, r, r), mode="replicate"), (window, 1), 1)


def local_range(x: torch.Tensor, window: int) -> "tuple[torch.Tensor, torch.Tensor]":
    """Per-pixel, per-channel minimum and maximum of (B, C, H, W) ``x`` over a ``window`` (odd) square."""
    if window < 1 or window % 2 == 0:
        raise UsageError(f"local_range: window must be a positive odd integer, got {window}")
    return -_max_filter(-x, window), _max_filter(x, window)


def allowed_range(blurry: torch.Tensor, window: int = 15, margin: float = 0.02,
                  keep: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """The per-pixel, per-channel ``(low, high)`` a deblurred image may span: ``blurry``'s local range over a
    ``window`` square, widened to hold ``keep`` (when given: values another method stands by, e.g. the
    network's own output), then by ``margin``. All (B, C, H, W) in blurry's dtype."""
    lo, hi = local_range(blurry, window)
    if keep is not None:
        if keep.shape != blurry.shape:
            raise UsageError(f"allowed_range: keep has shape {tuple(keep.shape)}, blurry {tuple(blurry.shape)}")
        torch.minimum(lo, keep.to(lo.dtype), out=lo)
        torch.maximum(hi, keep.to(hi.dtype), out=hi)
    return lo.sub_(margin), hi.add_(margin)


def limit_to_local_range(image: torch.Tensor, blurry: torch.Tensor, window: int = 15, margin: float = 0.02,
                         keep: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``image`` clipped, per pixel and channel, to :func:`allowed_range` (then to [0, 1]).

    Args:
        image: (B, C, H, W) float in [0, 1], the deblurred result; changed in place and returned.
        blurry: (B, C, H, W) in [0, 1], its input (same shape).
        window: side (px, odd) of the square the range is read over.
        margin: how far (in [0, 1] units) beyond the range a value may go.
        keep: optional (B, C, H, W) values always allowed (see :func:`allowed_range`).

    Example::

        >>> out = limit_to_local_range(deblurred, blurry, window=15, keep=network_output)
    """
    if image.shape != blurry.shape or image.dim() != 4:
        raise UsageError(f"limit_to_local_range: expected two (B, C, H, W) tensors of one shape, got "
                         f"{tuple(image.shape)} and {tuple(blurry.shape)}")
    lo, hi = allowed_range(blurry.to(image.dtype), window, margin, keep)
    return torch.maximum(torch.minimum(image, hi, out=image), lo, out=image).clamp_(0, 1)
