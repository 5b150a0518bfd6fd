"""Gaussian windows, separable convolution and FFT convolution on (B, C, H, W) tensors.

Building a kernel (``gaussian_kernel1d``) is kept apart from applying one (``separable_conv2d``,
``fft_conv2d``), so any PSF, measured or computed, goes through the same convolution.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from blurtools.errors import BlurtoolsError

_PAD_MODES = {"reflect": "reflect", "replicate": "replicate", "zeros": "constant", "circular": "circular"}


def _check_bchw(x: torch.Tensor, name: str) -> None:
    if x.dim() != 4:
        raise BlurtoolsError(f"{name}: expected a (B, C, H, W) tensor, got shape {tuple(x.shape)}")


def gaussian_kernel1d(size: int, sigma: float, dtype: torch.dtype = torch.float32,
                      device: "torch.device | str | None" = None) -> torch.Tensor:
    """A normalised 1-D Gaussian of ``size`` taps (odd), centred, summing to 1.

    Example:
        >>> gaussian_kernel1d(11, 1.5).sum()
        tensor(1.)
    """
    if size < 1 or size % 2 == 0:
        raise BlurtoolsError(f"gaussian_kernel1d: size must be a positive odd integer, got {size}")
    r = (size - 1) / 2.0
    t = torch.arange(size, dtype=torch.float64, device=device) - r
    g = torch.exp(-(t * t) / (2.0 * sigma * sigma))
    return (g / g.sum()).to(dtype)


def _pad(x: torch.Tensor, pads: Tuple[int, int, int, int], mode: str) -> torch.Tensor:
    """F.pad that falls back from reflect to replicate when the image is smaller than the pad."""
    if not any(pads):
        return x
    mode = _PAD_MODES[mode]
    if mode == "reflect":
        left, right, top, bottom = pads
        if max(left, right) >= x.shape[-1] or max(top, bottom) >= x.shape[-2]:
            mode = "replicate"
    return F.pad(x, pads, mode=mode)


def separable_conv2d(x: torch.Tensor, k_row: torch.Tensor, k_col: Optional[torch.Tensor] = None,
                     padding: str = "valid") -> torch.Tensor:
    """Depthwise separable correlation of every channel with ``k_col`` (vertical) then ``k_row``.

    Args:
        x: (B, C, H, W).
        k_row: (kw,) horizontal taps. k_col: (kh,) vertical taps (defaults to ``k_row``).
        padding: ``valid`` (output shrinks by k-1), or ``reflect``/``replicate``/``zeros``/``circular``
            (output keeps H, W).
    Returns:
        (B, C, H', W') in x's dtype and device. Symmetric kernels make correlation equal convolution.
    """
    _check_bchw(x, "separable_conv2d")
    k_col = k_row if k_col is None else k_col
    c = x.shape[1]
    kw, kh = k_row.numel(), k_col.numel()
    if padding != "valid":
        if padding not in _PAD_MODES:
            raise BlurtoolsError(f"separable_conv2d: unknown padding {padding!r}")
        x = _pad(x, (kw // 2, (kw - 1) // 2, kh // 2, (kh - 1) // 2), padding)
    wr = k_row.to(x.dtype).to(x.device).view(1, 1, 1, kw).expand(c, 1, 1, kw)
    wc = k_col.to(x.dtype).to(x.device).view(1, 1, kh, 1).expand(c, 1, kh, 1)
    x = F.conv2d(x, wc, groups=c)
    return F.conv2d(x, wr, groups=c)


def gaussian_blur(x: torch.Tensor, sigma: float, truncate: float = 3.5, padding: str = "reflect") -> torch.Tensor:
    """Gaussian blur of (B, C, H, W); the window has 2*int(truncate*sigma + 0.5) + 1 taps, as scipy's."""
    size = 2 * int(truncate * sigma + 0.5) + 1
    k = gaussian_kernel1d(size, sigma, dtype=x.dtype, device=x.device)
    return separable_conv2d(x, k, k, padding=padding)


def next_fast_len(n: int) -> int:
    """Smallest integer >= n whose prime factors are 2, 3 and 5 (fast FFT sizes)."""
    m = n
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def _psf_as_bchw(psf: torch.Tensor, b: int, c: int) -> torch.Tensor:
    if psf.dim() == 2:
        return psf.view(1, 1, *psf.shape)
    if psf.dim() == 3:
        if psf.shape[0] not in (1, c):
            raise BlurtoolsError(f"fft_conv2d: psf of shape {tuple(psf.shape)} does not match {c} channels")
        return psf.unsqueeze(0)
    if psf.dim() == 4:
        if psf.shape[0] not in (1, b) or psf.shape[1] not in (1, c):
            raise BlurtoolsError(f"fft_conv2d: psf of shape {tuple(psf.shape)} does not match image batch ({b}, {c})")
        return psf
    raise BlurtoolsError(f"fft_conv2d: psf must be (kh, kw), (C, kh, kw) or (B, C, kh, kw), got {tuple(psf.shape)}")


def fft_conv2d(x: torch.Tensor, psf: torch.Tensor, mode: str = "same", pad: str = "reflect") -> torch.Tensor:
    """True 2-D convolution of every image and channel with a PSF, through the FFT.

    ``same`` output is aligned like ``scipy.signal.fftconvolve(..., mode="same")``: the PSF's centre is at
    index ``(kh - 1) // 2`` ... for odd sizes the middle tap. Border handling for ``same``: ``pad`` picks how
    the image is extended (``reflect``, ``replicate``, ``zeros``, ``circular``); ``zeros`` equals scipy.

    Args:
        x: (B, C, H, W) float.
        psf: (kh, kw) for all, (C, kh, kw) per channel, or (B, C, kh, kw) per image and channel
            (size-1 dimensions broadcast).
        mode: ``same`` (H, W), ``full`` (H+kh-1, W+kw-1) or ``valid`` (H-kh+1, W-kw+1).
    Returns:
        The convolved tensor in x's dtype, on x's device.

    Example:
        >>> y = fft_conv2d(torch.rand(2, 3, 64, 64), torch.ones(5, 5) / 25)
    """
    _check_bchw(x, "fft_conv2d")
    b, c, h, w = x.shape
    k = _psf_as_bchw(psf.to(device=x.device), b, c)
    kh, kw = k.shape[-2:]
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    xw = x.to(work)
    k = k.to(work)
    if mode == "same":
        xw = _pad(xw, (kw - 1 - (kw - 1) // 2, (kw - 1) // 2, kh - 1 - (kh - 1) // 2, (kh - 1) // 2), pad)
    elif mode == "full":
        xw = F.pad(xw, (kw - 1, kw - 1, kh - 1, kh - 1))
    elif mode != "valid":
        raise BlurtoolsError(f"fft_conv2d: mode must be same, full or valid, got {mode!r}")
    hp, wp = xw.shape[-2:]
    if hp < kh or wp < kw:
        raise BlurtoolsError(f"fft_conv2d: image {h}x{w} smaller than the PSF {kh}x{kw} for mode {mode}")
    fh, fw = next_fast_len(hp), next_fast_len(wp)
    # Circular convolution at size >= the padded image: outputs from index k-1 on are free of wrap-around.
    spec = torch.fft.rfft2(xw, s=(fh, fw)) * torch.fft.rfft2(k, s=(fh, fw))
    y = torch.fft.irfft2(spec, s=(fh, fw))[..., kh - 1:hp, kw - 1:wp]
    return y.to(x.dtype)
