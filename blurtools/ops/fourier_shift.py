"""Exact sub-pixel translation through the Fourier shift theorem, so moved frames stay as sharp as the original.

Bilinear interpolation at a half-pixel shift averages two neighbours (a low-pass filter that halves the
finest detail), and bicubic interpolation still damps the top octave. A translation by ``(dx, dy)`` is a
multiplication of the spectrum by ``exp(-2 pi i (u dx + v dy))``, which changes no frequency's magnitude:
the image's gradient energy is kept (apart from the pixels that enter at the borders).

The transform has an odd size in both directions (no Nyquist frequency), so the shift is unitary. The
image is first extended by reflection by the shift's reach plus a margin, so that what enters at a
border is the mirrored image instead of the opposite edge (the FFT is periodic), then cropped back.

Convention as :func:`blurtools.ops.warp.shift`: positive ``dx`` moves content right, positive ``dy`` down,
``out(p) = x(p - (dx, dy))``.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import torch
import torch.nn.functional as F

from blurtools.errors import UsageError

_MARGIN = 8   # extra reflected pixels beyond the shift's reach: room for the sinc tails at the border

Shifts = Union[torch.Tensor, Sequence[Sequence[float]]]


def odd_fast_len(n: int) -> int:
    """Smallest odd integer >= n whose prime factors are 3, 5 and 7 (fast FFT sizes).

    An odd length has no Nyquist frequency, whose phase a real image cannot hold at a fractional shift
    (a half-pixel shift would erase it), so the shift is exact and invertible.
    """
    m = n | 1
    while True:
        r = m
        for p in (3, 5, 7):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 2


def fourier_shift(x: torch.Tensor, shifts: Shifts) -> torch.Tensor:
    """Move one image to several positions exactly (band-limited interpolation).

    Args:
        x: (1, C, H, W) or (C, H, W) float image (any range; the result is not clamped).
        shifts: (N, 2) offsets ``(dx, dy)`` in pixels (right, down).

    Returns:
        (N, C, H, W) in x's dtype: frame ``i`` is x moved by ``shifts[i]``.

    Example::

        >>> frames = fourier_shift(sharp, torch.tensor([[-3.5, 0.25], [0.0, 0.0], [3.5, -0.25]]))
    """
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[0] != 1 or not x.is_floating_point():
        raise UsageError(f"fourier_shift: expected one float (1, C, H, W) image, got {tuple(x.shape)} {x.dtype}")
    s = torch.as_tensor(shifts, dtype=torch.float64).reshape(-1, 2)
    if not torch.isfinite(s).all():
        raise UsageError("fourier_shift: shifts must be finite")
    _, c, h, w = x.shape
    reach = int(math.ceil(float(s.abs().max()) if s.numel() else 0.0)) + _MARGIN
    py, px = min(reach, h - 1), min(reach, w - 1)   # reflection needs a pad smaller than the side
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    xp = F.pad(x.to(work), (px, px, py, py), mode="reflect") if (px > 0 or py > 0) else x.to(work)
    fh, fw = odd_fast_len(xp.shape[-2]), odd_fast_len(xp.shape[-1])
    if (fh, fw) != tuple(xp.shape[-2:]):
        xp = F.pad(xp, (0, fw - xp.shape[-1], 0, fh - xp.shape[-2]), mode="replicate")
    spec = torch.fft.rfft2(xp)
    v = torch.fft.fftfreq(fh, dtype=torch.float64, device=x.device)
    u = torch.fft.rfftfreq(fw, dtype=torch.float64, device=x.device)
    out = torch.empty(s.shape[0], c, h, w, dtype=x.dtype, device=x.device)
    for i, (dx, dy) in enumerate(s.tolist()):
        phase = torch.polar(torch.ones((), dtype=torch.float64),
                            -2 * math.pi * (v[:, None] * dy + u[None, :] * dx))
        moved = torch.fft.irfft2(spec * phase.to(spec.dtype), s=(fh, fw))
        out[i] = moved[0, :, py:py + h, px:px + w].to(x.dtype)
    return out
