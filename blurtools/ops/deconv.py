"""Non-blind deconvolution: Wiener, Richardson-Lucy (optionally TV-regularised) and half-quadratic splitting.

All three invert the model ``blurry = kernel (*) sharp`` (true convolution, the kernel's centre at index
``((kh - 1) // 2, (kw - 1) // 2)`` as in ``blurtools.ops.filters.fft_conv2d``) on (B, C, H, W) tensors in
[0, 1], on whatever device the input is on, and return a (B, C, H, W) tensor clamped to [0, 1]. The kernel
is normalised to sum 1 here.

Light: these functions invert a convolution of whatever values they are given. Physical motion blur is a
convolution in *linear* light, so for camera photos convert with ``blurtools.ops.crf.to_linear`` first and
back with ``from_linear`` after; a blur synthesised in display values (GoPro's plain ``blur`` variant) is
inverted best in display values. The caller decides; nothing here converts.

Borders: the circular model of an FFT wraps the right edge onto the left, which rings. Two fixes are used:

* :func:`wiener_deconv` pads the image by mirroring, tapers the padding toward a circularly blurred copy of
  itself (MATLAB's ``edgetaper``) so the wrapped seam is consistent with the blur model, then refills the
  padding a few times with the re-blurred estimate.
* :func:`richardson_lucy` and :func:`hqs_deconv` solve on an enlarged domain where only the observed pixels
  enter the data term (Bertero & Boccacci 2005 for RL; Almeida & Figueiredo 2013 for splitting), so the
  pixels beyond the frame are unknowns, not assumptions.

Example::

    >>> sharp = wiener_deconv(blurry, kernel, nsr=2e-3, prior="gradient")
    >>> sharp = richardson_lucy(blurry, kernel, iterations=30, tv=2e-3)
"""

from __future__ import annotations

import logging
import math
from typing import Tuple

import torch
import torch.nn.functional as F

from blurtools.errors import UsageError
from blurtools.ops.filters import next_fast_len

log = logging.getLogger(__name__)

__all__ = ["wiener_deconv", "richardson_lucy", "hqs_deconv", "prepare_kernel", "psf2otf", "fft_size",
           "mirror_pad"]


# ----------------------------------------------------------------------------------------------- helpers

def fft_size(n: int) -> int:
    """Smallest 5-smooth integer >= ``n`` (sizes the FFT is fast on)."""
    return next_fast_len(max(int(n), 1))


def _check_image(x: torch.Tensor, name: str = "blurry") -> torch.Tensor:
    """Validate a (B, C, H, W) float image; return it in a dtype the FFT handles (half -> float32)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise UsageError(f"{name}: expected a (B, C, H, W) tensor, got {shape}")
    if x.shape[-1] < 2 or x.shape[-2] < 2:
        raise UsageError(f"{name}: image too small ({x.shape[-2]}x{x.shape[-1]})")
    if not x.is_floating_point():
        raise UsageError(f"{name}: expected a float tensor in [0, 1], got {x.dtype}")
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def prepare_kernel(kernel: torch.Tensor, batch: int, like: torch.Tensor) -> torch.Tensor:
    """Kernel (kh, kw), (1|B, kh, kw) or (1|B, 1, kh, kw) -> (1|B, 1, kh, kw) on ``like``'s device, sum 1."""
    k = torch.as_tensor(kernel)
    if k.dim() == 2:
        k = k[None, None]
    elif k.dim() == 3:
        k = k[:, None]
    if k.dim() != 4 or k.shape[1] != 1 or k.shape[0] not in (1, batch):
        raise UsageError(f"kernel: expected (kh, kw) or ({batch}, 1, kh, kw), got {tuple(kernel.shape)}")
    k = k.to(device=like.device, dtype=like.dtype)
    s = k.sum(dim=(-2, -1), keepdim=True)
    if not torch.isfinite(k).all() or (s <= 0).any():
        raise UsageError("kernel: must be finite with a positive sum")
    return k / s


def psf2otf(k: torch.Tensor, shape: Tuple[int, int]) -> torch.Tensor:
    """(..., kh, kw) kernel -> (..., H, W//2+1) rfft2 transfer function, the centre ((kh-1)//2, (kw-1)//2) at 0."""
    kh, kw = k.shape[-2:]
    big = k.new_zeros(k.shape[:-2] + tuple(shape))
    big[..., :kh, :kw] = k
    big = torch.roll(big, shifts=(-((kh - 1) // 2), -((kw - 1) // 2)), dims=(-2, -1))
    return torch.fft.rfft2(big)


def _grad_otfs(shape: Tuple[int, int], like: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Transfer functions of forward differences x[i+1] - x[i] along W and along H."""
    # true convolution with [1, -1] centred on its first tap reads x[i] - x[i-1]; the sign and the
    # half-pixel position do not matter for |D|^2, and the adjoint uses the conjugate consistently
    dx = like.new_tensor([[1.0, -1.0]])
    return psf2otf(dx, shape), psf2otf(dx.t().contiguous(), shape)


def _reflect_index(n: int, before: int, after: int, device) -> torch.Tensor:
    """Indices of a mirror ('reflect', edge not repeated) extension of any length, with period 2n-2."""
    i = torch.arange(-before, n + after, device=device)
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * n - 2
    i = torch.remainder(i, period)
    return torch.where(i >= n, period - i, i)


def mirror_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Reflect-pad the last two dims by any amount (repeated mirroring when the pad exceeds the size)."""
    H, W = x.shape[-2:]
    iy = _reflect_index(H, top, bottom, x.device)
    ix = _reflect_index(W, left, right, x.device)
    return x.index_select(-2, iy).index_select(-1, ix)


def _domain(H: int, W: int, kh: int, kw: int, margin: int) -> Tuple[int, int, int, int]:
    """Padded FFT size and top/left offsets for an (H, W) image and a (kh, kw) kernel."""
    ph, pw = max(kh, margin), max(kw, margin)
    Hf, Wf = fft_size(H + 2 * ph), fft_size(W + 2 * pw)
    return Hf, Wf, (Hf - H) // 2, (Wf - W) // 2


def _taper(n: int, lo: int, hi: int, like: torch.Tensor) -> torch.Tensor:
    """1 on [lo, hi), raised-cosine down to 0 at both ends of [0, n) (the wrapped seam)."""
    i = torch.arange(n, device=like.device, dtype=like.dtype)
    t = torch.ones_like(i)
    if lo > 0:
        t = torch.where(i < lo, 0.5 - 0.5 * torch.cos(math.pi * (i + 0.5) / lo), t)
    if n - hi > 0:
        t = torch.where(i >= hi, 0.5 - 0.5 * torch.cos(math.pi * (n - i - 0.5) / (n - hi)), t)
    return t


# ------------------------------------------------------------------------------------------------ Wiener

def wiener_deconv(blurry: torch.Tensor, kernel: torch.Tensor, nsr: float = 5e-3, prior: str = "gradient",
                  refill: int = 5, margin: int = 16) -> torch.Tensor:
    """Wiener deconvolution with mirrored, edge-tapered and self-consistently refilled borders.

    The image is mirror-padded by at least the kernel size and the padding is tapered toward a circularly
    blurred copy of itself (``edgetaper``), so the wrapped seam agrees with the circular model. Then
    ``refill`` times the padding is replaced by the re-blurred current estimate (an EM step for the pixels
    beyond the frame), which removes the remaining inconsistency where the image meets its mirror.

    Args:
        blurry: (B, C, H, W) float in [0, 1].
        kernel: (kh, kw) shared by the batch, or (B, 1, kh, kw) one per sample; normalised to sum 1.
        nsr: noise-to-signal power ratio (a float, or a (B,) tensor). Larger is smoother, fewer artefacts.
        prior: ``"flat"`` divides by ``|K|^2 + nsr`` (classic Wiener); ``"gradient"`` by
            ``|K|^2 + nsr * (|Dx|^2 + |Dy|^2)`` (a Gaussian gradient prior: keeps low frequencies, damps
            high ones; typical nsr 1e-3..1e-2).
        refill: border refill iterations (0 = edgetaper only; each costs two FFTs).
        margin: minimum padding in pixels on each side (at least the kernel size is always used).

    Returns:
        (B, C, H, W) in [0, 1].

    Example::

        >>> x = wiener_deconv(torch.rand(2, 3, 64, 64), torch.ones(1, 9) / 9, nsr=1e-3)
    """
    dtype = blurry.dtype if isinstance(blurry, torch.Tensor) else None
    blurry = _check_image(blurry)
    if prior not in ("flat", "gradient"):
        raise UsageError(f"prior: expected 'flat' or 'gradient', got {prior!r}")
    B, C, H, W = blurry.shape
    k = prepare_kernel(kernel, B, blurry)
    kh, kw = k.shape[-2:]
    Hf, Wf, top, left = _domain(H, W, kh, kw, margin)
    z = mirror_pad(blurry, top, Hf - H - top, left, Wf - W - left)
    K = psf2otf(k, (Hf, Wf))
    Z = torch.fft.rfft2(z)
    # edgetaper: near the wrapped seam use the circularly blurred image, which the circular model explains
    zb = torch.fft.irfft2(Z * K, s=(Hf, Wf))
    w = _taper(Hf, top, top + H, z)[:, None] * _taper(Wf, left, left + W, z)[None, :]
    Z = torch.fft.rfft2(w * z + (1 - w) * zb)
    nsr_t = torch.as_tensor(nsr, dtype=blurry.dtype, device=blurry.device).reshape(-1, 1, 1, 1)
    if prior == "flat":
        reg = nsr_t
    else:
        Dx, Dy = _grad_otfs((Hf, Wf), blurry)
        reg = nsr_t * (Dx.abs() ** 2 + Dy.abs() ** 2)
    G = K.conj() / (K.abs() ** 2 + reg)
    mask = torch.zeros_like(w)
    mask[top:top + H, left:left + W] = 1
    for _ in range(max(int(refill), 0)):
        pred = torch.fft.irfft2(Z * G * K, s=(Hf, Wf))
        Z = torch.fft.rfft2(mask * z + (1 - mask) * pred)
    x = torch.fft.irfft2(Z * G, s=(Hf, Wf))[..., top:top + H, left:left + W]
    return x.clamp(0, 1).to(dtype)


# ---------------------------------------------------------------------------------------- Richardson-Lucy

def _tv_divergence(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """div(grad x / |grad x|) with forward differences, replicate borders (Dey et al. 2006)."""
    gx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1))
    gy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    mag = torch.sqrt(gx * gx + gy * gy + eps * eps)
    nx, ny = gx / mag, gy / mag
    return (nx - F.pad(nx[..., :, :-1], (1, 0))) + (ny - F.pad(ny[..., :-1, :], (0, 0, 1, 0)))


def richardson_lucy(blurry: torch.Tensor, kernel: torch.Tensor, iterations: int = 30, tv: float = 0.0,
                    eps: float = 1e-4) -> torch.Tensor:
    """Richardson-Lucy deconvolution with unknown boundaries and optional total-variation regularisation.

    The estimate lives on a domain larger than the image by the kernel size; only the observed pixels enter
    the likelihood (Bertero & Boccacci 2005), so there is no wrap-around and no ringing at the frame.

    Args:
        blurry: (B, C, H, W) float in [0, 1].
        kernel: (kh, kw) or (B, 1, kh, kw); normalised to sum 1.
        iterations: RL iterations (more = sharper and noisier).
        tv: weight of the TV term of Dey et al. 2006 (0 = plain RL; 1e-3..1e-2 suppresses noise).
        eps: floor of the predicted image, keeping the ratio finite in black areas.

    Returns:
        (B, C, H, W) in [0, 1].

    Example::

        >>> x = richardson_lucy(torch.rand(1, 3, 64, 64), torch.ones(1, 9) / 9, iterations=20, tv=2e-3)
    """
    dtype = blurry.dtype if isinstance(blurry, torch.Tensor) else None
    blurry = _check_image(blurry)
    if iterations < 0 or tv < 0:
        raise UsageError("richardson_lucy: iterations and tv must be >= 0")
    B, C, H, W = blurry.shape
    k = prepare_kernel(kernel, B, blurry)
    kh, kw = k.shape[-2:]
    Hf, Wf = fft_size(H + kh - 1), fft_size(W + kw - 1)
    # the observed pixel i sees the estimate at i - kh//2 .. i + (kh-1)//2: place the image so that both
    # reaches stay inside the domain and the circular product never wraps into observed pixels
    top, left = kh // 2, kw // 2
    K = psf2otf(k, (Hf, Wf))
    mask = blurry.new_zeros((1, 1, Hf, Wf))
    mask[..., top:top + H, left:left + W] = 1
    y = blurry.clamp(min=0)
    y_ext = F.pad(y, (left, Wf - W - left, top, Hf - H - top))
    norm = torch.fft.irfft2(torch.fft.rfft2(mask) * K.conj(), s=(Hf, Wf))
    reached = norm > 1e-3
    norm = torch.where(reached, norm, torch.ones_like(norm))
    x = mirror_pad(y, top, Hf - H - top, left, Wf - W - left).clamp(min=eps)
    for _ in range(iterations):
        pred = torch.fft.irfft2(torch.fft.rfft2(x) * K, s=(Hf, Wf)).clamp(min=eps)
        ratio = mask * y_ext / pred
        corr = torch.fft.irfft2(torch.fft.rfft2(ratio) * K.conj(), s=(Hf, Wf))
        factor = torch.where(reached, corr.clamp(min=0) / norm, torch.ones_like(corr))
        if tv > 0:
            # keep the denominator positive: the TV step must never flip the sign of the estimate
            factor = factor / (1 - tv * _tv_divergence(x)).clamp(min=0.1)
        x = (x * factor).clamp(min=eps, max=4.0)
    return x[..., top:top + H, left:left + W].clamp(0, 1).to(dtype)


# --------------------------------------------------------------------------------- half-quadratic splitting

def hqs_deconv(blurry: torch.Tensor, kernel: torch.Tensor, lam: float = 2e-3, penalty: str = "l1",
               iterations: int = 10, beta0: float | None = None, beta_rate: float = 2.0) -> torch.Tensor:
    """Sparse-gradient deconvolution by half-quadratic splitting, unknown boundaries.

    Minimises ``0.5 * ||M (k * x) - y||^2 + lam * R(grad x)`` with ``R`` = anisotropic L1 (``"l1"``, total
    variation; Wang et al. 2008, Krishnan & Fergus 2009) or L0 (``"l0"``, counts non-zero gradients; Xu et al.
    2013, which gives the piecewise-flat images that kernel estimation wants). ``M`` keeps only the observed
    pixels of a domain enlarged by the kernel size; the unobserved ones are refilled with the current
    prediction every step (an EM step for missing data), so there is no wrap-around and no border ringing.
    Every step is closed-form: a shrinkage of gradients, one FFT solve.

    Args:
        blurry: (B, C, H, W) float in [0, 1].
        kernel: (kh, kw) or (B, 1, kh, kw); normalised to sum 1.
        lam: regularisation weight (l1: 3e-4..3e-3; l0: 1e-3..4e-2).
        penalty: ``"l1"`` or ``"l0"``.
        iterations: splitting steps; the gradient-splitting weight grows by ``beta_rate`` each step.
        beta0: first gradient-splitting weight (default: ``lam`` for l1, ``2 * lam`` for l0).

    Returns:
        (B, C, H, W) in [0, 1].

    Example::

        >>> x = hqs_deconv(torch.rand(1, 1, 64, 64), torch.ones(1, 9) / 9, lam=1e-3)
    """
    dtype = blurry.dtype if isinstance(blurry, torch.Tensor) else None
    blurry = _check_image(blurry)
    if penalty not in ("l1", "l0"):
        raise UsageError(f"penalty: expected 'l1' or 'l0', got {penalty!r}")
    B, C, H, W = blurry.shape
    k = prepare_kernel(kernel, B, blurry)
    kh, kw = k.shape[-2:]
    Hf, Wf = fft_size(H + kh - 1 + 2), fft_size(W + kw - 1 + 2)
    top, left = kh // 2 + 1, kw // 2 + 1
    K = psf2otf(k, (Hf, Wf))
    Dx, Dy = _grad_otfs((Hf, Wf), blurry)
    KtK, DtD = K.abs() ** 2, Dx.abs() ** 2 + Dy.abs() ** 2
    mask = blurry.new_zeros((1, 1, Hf, Wf))
    mask[..., top:top + H, left:left + W] = 1
    y_ext = F.pad(blurry, (left, Wf - W - left, top, Hf - H - top))
    X = torch.fft.rfft2(mirror_pad(blurry, top, Hf - H - top, left, Wf - W - left))
    beta = beta0 if beta0 is not None else (2 * lam if penalty == "l0" else lam)
    for _ in range(iterations):
        gx = torch.fft.irfft2(Dx * X, s=(Hf, Wf))
        gy = torch.fft.irfft2(Dy * X, s=(Hf, Wf))
        if penalty == "l0":
            keep = (gx * gx + gy * gy) > lam / beta
            gx, gy = gx * keep, gy * keep
        else:
            t = lam / beta
            gx = torch.sign(gx) * (gx.abs() - t).clamp(min=0)
            gy = torch.sign(gy) * (gy.abs() - t).clamp(min=0)
        kx = torch.fft.irfft2(K * X, s=(Hf, Wf))
        v = mask * y_ext + (1 - mask) * kx
        num = K.conj() * torch.fft.rfft2(v) + beta * (Dx.conj() * torch.fft.rfft2(gx)
                                                      + Dy.conj() * torch.fft.rfft2(gy))
        X = num / (KtK + beta * DtD + 1e-8)
        beta *= beta_rate
    x = torch.fft.irfft2(X, s=(Hf, Wf))
    return x[..., top:top + H, left:left + W].clamp(0, 1).to(dtype)
