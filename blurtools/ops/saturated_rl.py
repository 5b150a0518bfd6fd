"""Richardson-Lucy under a kernel-basis blur, with saturated pixels handled: Carbajal et al.'s restoration.

Citation: G. Carbajal, P. Vitoria, M. Delbracio, P. Musé, J. Lezama, "Non-uniform blur kernel estimation via
adaptive basis decomposition", arXiv 2102.01026, 2021 (the restoration of their released code: "combined"
saturation method, 30 iterations, threshold 0.99, regulariser 1e-3, gamma 2.2, stop when the reblur error
no longer falls). Saturation model: O. Whyte, J. Sivic, A. Zisserman, "Deblurring shaken and partially
saturated images", IJCV 2014.

Blur model (linear light, ``g`` the gamma): ``B^g ~ R(A x^g)`` with ``A y = sum_k m_k * (y correlated with
c_k)`` (reflect-padded, ``c_k`` the network's correlation kernels, ``m_k`` the mixing maps) and ``R`` a smooth
clip at 1, ``R(y) = relu(y - log(1 + exp(a (y - 1))) / a)``, ``R'(y) = 1 / (1 + exp(a (y - 1)))``, a = 50,
on ``y`` capped at 1.5. Each iteration, from ``x_0 = B``:

* ``u``: pixels below the threshold, eroded by a 3x3 square (outside the image counts as unsaturated),
  then smoothed by a 3x3 box (zero outside); ``x_u = u x``, ``x_s = x - x_u``.
* ``y = min(A x^g, 1.5)``; ratios ``r_u = B^g R' u / (R(y) + e) + 1 - R' u`` and
  ``r_s = B^g R' / (R(y) + e) + 1 - R'`` (e = 1e-6).
* ``x' = (x_u^g * A~ r_u)^(1/g) + (x_s^g * A~ r_s)^(1/g)``, with ``A~`` the same sum over the flipped kernels
  (the mixing applied after the correlation, as the authors do), divided by ``1 - lam div(grad x / |grad x|)``
  (Sobel gradients, zero outside; |grad x| < 1e-9 counts as (1e-9, 1e-9)).
* Stop, keeping ``x``, when the mean squared reblur error ``(y^(1/g) - B)^2`` fell by less than 1e-6.

Example::

    sharp = saturated_rl(blurry, kernels, mixing)     # (B, 3, H, W) in [0, 1], not clipped
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from blurtools.errors import BlurtoolsError
from blurtools.ops.fft import irfft2, rfft2
from blurtools.ops.filters import next_fast_len

log = logging.getLogger(__name__)

__all__ = ["saturated_rl", "MixedCorrelation", "smooth_clip", "unsaturated_mask", "normalised_gradient_divergence"]

_SHARPNESS = 50.0
_EPS = 1e-6


_CHUNK = 5          # basis kernels transformed back at a time (bounds the memory of a 12 MP image to ~3 GB)


class MixedCorrelation:
    """``y = sum_k m_k * (x correlated with c_k)`` and the same with every ``c_k`` flipped, by FFT.

    ``x`` is reflect-padded by k // 2 on every side (as the authors' ``forward_reblur``); one set of kernel
    spectra serves both directions: correlation multiplies by their conjugate, correlation with the flipped
    kernel (a convolution) by the spectra themselves. The basis is summed a few kernels at a time.

    Args:
        kernels: (B, K, k, k) correlation kernels, odd k; mixing: (B, K, H, W).
    """

    def __init__(self, kernels: torch.Tensor, mixing: torch.Tensor):
        self.mixing, self.p = mixing, kernels.shape[-1] // 2
        self.hw = tuple(mixing.shape[-2:])
        self.size = (next_fast_len(self.hw[0] + 2 * self.p), next_fast_len(self.hw[1] + 2 * self.p))
        self.spectra = rfft2(kernels, s=self.size)                                # (B, K, Hf, Wf // 2 + 1)

    def apply(self, x: torch.Tensor, flipped: bool = False) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W): with the kernels as given, or each flipped on both axes."""
        p, (h, w) = self.p, self.hw
        spec = rfft2(F.pad(x, (p, p, p, p), mode="reflect"), s=self.size).unsqueeze(2)
        start = 2 * p if flipped else 0            # a convolution's valid part starts 2p in; a correlation's at 0
        out = torch.zeros_like(x)
        for k0 in range(0, self.spectra.shape[1], _CHUNK):
            kern = self.spectra[:, None, k0:k0 + _CHUNK]
            per = irfft2(spec * (kern if flipped else kern.conj()), s=self.size)[..., start:start + h, start:start + w]
            out += (per * self.mixing[:, None, k0:k0 + _CHUNK]).sum(2)
        return out


def smooth_clip(y: torch.Tensor) -> "tuple[torch.Tensor, torch.Tensor]":
    """Whyte's saturation R(y) and its derivative R'(y) for (any shape) y, capped at 1.5 first."""
    y = y.clamp(max=1.5)
    r = F.relu(y - torch.log(1 + torch.exp(_SHARPNESS * (y - 1))) / _SHARPNESS)
    dr = 1.0 / (1 + torch.exp(_SHARPNESS * (y - 1)))
    return r, dr


def unsaturated_mask(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """(B, C, H, W) weights in [0, 1]: 1 where x < threshold, eroded 3x3, then box-smoothed 3x3 (zero outside)."""
    saturated = (x >= threshold).to(x.dtype)
    # max-pooling ignores the outside, as a zero-padded "any saturated neighbour" test does
    grown = F.max_pool2d(saturated, 3, stride=1, padding=1)
    return F.avg_pool2d(1 - grown, 3, stride=1, padding=1, count_include_pad=True)


def _sobel(x: torch.Tensor) -> "tuple[torch.Tensor, torch.Tensor]":
    """(d/dy, d/dx) Sobel responses of every channel, correlation, zero outside: (B, C, H, W) each."""
    b, c, h, w = x.shape
    gx = torch.tensor([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=x.dtype, device=x.device)
    weight = torch.stack([gx.t(), gx])[:, None]                      # (2, 1, 3, 3): d/dy, d/dx
    out = F.conv2d(x.reshape(b * c, 1, h, w), weight, padding=1).reshape(b, c, 2, h, w)
    return out[:, :, 0], out[:, :, 1]


def normalised_gradient_divergence(x: torch.Tensor) -> torch.Tensor:
    """div(grad x / |grad x|) with Sobel derivatives, per channel: (B, C, H, W) -> (B, C, H, W)."""
    gy, gx = _sobel(x)
    norm = torch.sqrt(gx ** 2 + gy ** 2)
    flat = norm < 1e-9
    ny = torch.where(flat, torch.full_like(gy, 1e-9), gy / torch.where(flat, torch.ones_like(norm), norm))
    nx = torch.where(flat, torch.full_like(gx, 1e-9), gx / torch.where(flat, torch.ones_like(norm), norm))
    return _sobel(nx)[1] + _sobel(ny)[0]


def saturated_rl(blurry: torch.Tensor, kernels: torch.Tensor, mixing: torch.Tensor, iterations: int = 30,
                 gamma: float = 2.2, threshold: float = 0.99, lam: float = 1e-3, early_stop: bool = True
                 ) -> torch.Tensor:
    """Restore ``blurry`` under the kernel-basis blur (see the module text for the update).

    Args:
        blurry: (B, C, H, W) in [0, 1] (gamma-encoded), H and W > kernel side // 2.
        kernels: (B, K, k, k) correlation kernels (the two-head network's output), odd k.
        mixing: (B, K, H, W) per-pixel weights.
        iterations: at most this many updates; ``early_stop`` ends an image's updates once its reblur error
            falls by less than 1e-6 (each image of the batch on its own).
        gamma: the gamma that maps values to linear light (``x ** gamma``).
        threshold: values at or above it count as saturated.
        lam: weight of the normalised-gradient (total variation) regulariser.

    Returns:
        (B, C, H, W), non-negative, not clipped (values above 1 stand for saturated light).
    """
    if blurry.dim() != 4 or kernels.dim() != 4 or mixing.dim() != 4:
        raise BlurtoolsError(f"saturated_rl: expected blurry (B, C, H, W), kernels (B, K, k, k), mixing (B, K, H, W); "
                             f"got {tuple(blurry.shape)}, {tuple(kernels.shape)}, {tuple(mixing.shape)}")
    if min(blurry.shape[-2:]) <= kernels.shape[-1] // 2:
        raise BlurtoolsError(f"saturated_rl: image {blurry.shape[-1]}x{blurry.shape[-2]} is too small for "
                             f"{kernels.shape[-1]}-pixel kernels")
    blur = MixedCorrelation(kernels, mixing)
    target = blurry ** gamma
    x = blurry.clone()
    previous = torch.full((blurry.shape[0],), 1000.0, dtype=blurry.dtype, device=blurry.device)
    active = torch.ones(blurry.shape[0], dtype=torch.bool, device=blurry.device)
    for it in range(iterations):
        u = unsaturated_mask(x, threshold)
        x_u = u * x
        x_s = x - x_u
        y = blur.apply(x ** gamma).clamp(max=1.5)
        r, dr = smooth_clip(y)
        ratio_u = target * dr * u / (r + _EPS) + 1 - dr * u
        ratio_s = target * dr / (r + _EPS) + 1 - dr
        new = ((x_u ** gamma * blur.apply(ratio_u, flipped=True)) ** (1 / gamma)
               + (x_s ** gamma * blur.apply(ratio_s, flipped=True)) ** (1 / gamma))
        new = new * (1.0 / (1 - lam * normalised_gradient_divergence(x)))
        error = ((y ** (1 / gamma) - blurry) ** 2).flatten(1).mean(1)
        if early_stop:
            active = active & ((previous - error) >= _EPS)
        x = torch.where(active.view(-1, 1, 1, 1), new, x)
        previous = error
        if not bool(active.any()):
            log.debug("saturated_rl: every image stopped after %d iteration(s)", it)
            break
    return x
