"""The classical (non-learned) method: blind motion-kernel estimation, deconvolution, and a video along the path.

No weights, no training: ``deblur --model classical`` and ``extract-video --model classical`` use this.

* :func:`estimate_kernel` finds the blur kernel from the blurry image alone, on the luminance of a crop:
  ``"linear"`` reads the length and angle of a straight motion off the cepstrum (a box blur of length L along
  u puts periodic zeros in the spectrum, hence a negative cepstral peak at +-L u; Rom 1975, Cannon 1976),
  averaged over tiles (Welch) for robustness. ``"multiscale"`` starts there and refines a general kernel
  coarse-to-fine, alternating a sparse-gradient (TV) latent image and a least-squares kernel update on the
  latent's salient gradients, with scattered taps pruned (the scheme of Cho & Lee 2009 and Pan et al. 2014;
  an L0 or shock-filtered latent drifted further from the true kernel in our tests). ``"auto"``
  keeps the linear kernel when its cepstral dip is strong (a straight blur) and refines it otherwise;
  ``"linear"`` is the default (the most robust).
* :func:`classical_deblur` deconvolves every channel at full resolution (sparse-gradient HQS by default,
  Wiener or Richardson-Lucy on request) with the estimated or a user-given kernel.
* :func:`classical_video` moves the deblurred frame to N positions along the kernel's path, so the frames'
  mean re-blurs to the input.

Angles are degrees counter-clockwise from the +x axis as the image is displayed (y up); motion blur is
symmetric, so an angle is only defined modulo 180. Light: everything works on the values it is given; pass
``crf`` to estimate the kernel and deconvolve in linear light (a photo's blur happened in linear light).
"""

from __future__ import annotations

import logging
from typing import Optional

import torch
import torch.nn.functional as F

from blurtools.errors import BlurtoolsError, UsageError
from blurtools.io.images import read_image, write_image
from blurtools.ops.blind_kernel import (METHODS, check_blurry_batch, estimate_kernel, estimate_linear,  # noqa: F401
                                        linear_motion_kernel)
from blurtools.ops.crf import from_linear, to_linear
from blurtools.ops.deconv import hqs_deconv, prepare_kernel, richardson_lucy, wiener_deconv
from blurtools.ops.warp import shift

log = logging.getLogger(__name__)

__all__ = ["linear_motion_kernel", "estimate_linear", "estimate_kernel", "classical_deblur", "kernel_path",
           "classical_video", "kernel_to_image", "kernel_from_image", "read_kernel",
           "write_kernel", "METHODS", "DECONVS"]


DECONVS = ("hqs", "wiener", "rl")


def classical_deblur(blurry: torch.Tensor, kernel: Optional[torch.Tensor] = None, method: str = "linear",
                     max_size: int = 63, deconv: str = "hqs", strength: Optional[float] = None,
                     crf: Optional[str] = None) -> torch.Tensor:
    """Deblur a batch without learned weights: blind (per image) when ``kernel`` is None, else non-blind.

    Args:
        blurry: (B, C, H, W) in [0, 1], C = 1 or 3.
        kernel: None (estimate per image with ``method``), (kh, kw) for the whole batch, or (B, 1, kh, kw).
            Normalised to sum 1.
        method, max_size: passed to :func:`estimate_kernel`.
        deconv: ``"hqs"`` (sparse-gradient splitting; best), ``"wiener"`` (fastest) or ``"rl"``.
        strength: the regulariser (hqs lam, wiener nsr, rl tv); None picks a default for the method that is
            a little stronger for blind kernels, which are never exact.
        crf: None to deconvolve the values as given, or a camera response (``"srgb"``, ``"gamma:2.2"``...)
            to deconvolve in linear light and map back.

    Returns:
        (B, C, H, W) in [0, 1] on blurry's device.

    Example::

        >>> sharp = classical_deblur(blurry)                                   # blind
        >>> sharp = classical_deblur(blurry, kernel=read_kernel("k.png"))      # non-blind
    """
    return _deblur_with_kernels(blurry, kernel, method, max_size, deconv, strength, crf)[0]


def _deblur_with_kernels(blurry, kernel, method, max_size, deconv, strength, crf):
    """Deconvolved batch and the (B|1, 1, ks, ks) kernels used."""
    check_blurry_batch(blurry)
    if deconv not in DECONVS:
        raise UsageError(f"deconv: expected one of {', '.join(DECONVS)}, got {deconv!r}")
    blind = kernel is None
    if blind:
        ks = [estimate_kernel(blurry[i:i + 1], max_size, method, crf) for i in range(blurry.shape[0])]
        n = max(k.shape[-1] for k in ks)
        k = torch.stack([F.pad(k, [(n - k.shape[-1]) // 2] * 4) for k in ks])[:, None]
    else:
        k = prepare_kernel(kernel, blurry.shape[0], blurry)
    k = k.to(device=blurry.device, dtype=blurry.dtype)
    x = blurry
    if crf is not None:
        x = to_linear(x, crf)
    if deconv == "hqs":
        x = hqs_deconv(x, k, lam=strength if strength is not None else (1e-3 if blind else 5e-4))
    elif deconv == "wiener":
        x = wiener_deconv(x, k, nsr=strength if strength is not None else (1e-2 if blind else 5e-3))
    else:
        x = richardson_lucy(x, k, iterations=30, tv=strength if strength is not None else 2e-3)
    if crf is not None:
        x = from_linear(x, crf)
    return x, k


# ----------------------------------------------------------------------------------------------- video

def kernel_path(kernel: torch.Tensor, frames: int) -> torch.Tensor:
    """Positions along a kernel's principal path: (frames, 2) offsets (dx right, dy down) in pixels.

    The kernel's mass is ordered along its principal axis (weighted PCA) and cut into ``frames`` parts of
    equal mass; each position is the centroid of one part, relative to the kernel's centre tap. For a
    straight kernel of length L these are the centres of N equal sub-segments, symmetric about 0, so the
    middle one is 0 for odd N. Shifting a sharp image to every position and averaging re-blurs it.
    """
    if kernel.dim() != 2:
        raise UsageError(f"kernel_path: expected a (kh, kw) kernel, got {tuple(kernel.shape)}")
    if frames < 1:
        raise UsageError(f"frames: must be >= 1, got {frames}")
    k = kernel.double().clamp(min=0)
    k = k / k.sum()
    kh, kw = k.shape
    yy, xx = torch.meshgrid(torch.arange(kh, dtype=k.dtype, device=k.device) - (kh - 1) // 2,
                            torch.arange(kw, dtype=k.dtype, device=k.device) - (kw - 1) // 2, indexing="ij")
    m, p = k.reshape(-1), torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    keep = m > 0
    m, p = m[keep], p[keep]
    mean = (m[:, None] * p).sum(0)
    d = p - mean
    cov = (m[:, None, None] * d[:, :, None] * d[:, None, :]).sum(0)
    axis = torch.linalg.eigh(cov).eigenvectors[:, -1]
    if axis[0] < 0 or (axis[0] == 0 and axis[1] > 0):
        axis = -axis      # a fixed orientation: the path runs left to right (bottom to top if vertical)
    order = torch.argsort(d @ axis)
    m, p = m[order], p[order]
    hi = torch.cumsum(m, 0)
    lo = hi - m
    edges = torch.linspace(0, 1, frames + 1, dtype=k.dtype, device=k.device)
    # the share of every pixel's mass in every part (pixels split across a cut count on both sides)
    share = (torch.minimum(hi[None], edges[1:, None]) - torch.maximum(lo[None], edges[:-1, None])).clamp(min=0)
    out = (share @ p) / share.sum(1, keepdim=True).clamp(min=1e-12)
    return out.to(kernel.dtype)


def classical_video(blurry: torch.Tensor, frames: int = 7, kernel: Optional[torch.Tensor] = None,
                    method: str = "linear", max_size: int = 63, deconv: str = "hqs",
                    strength: Optional[float] = None, crf: Optional[str] = None) -> torch.Tensor:
    """The short video a blurry image hides, classically: the deblurred frame moved along the blur path.

    Deblurs like :func:`classical_deblur`, then shifts the result to ``frames`` positions along the kernel's
    principal path (:func:`kernel_path`): for a straight kernel, N equally spaced points of the segment,
    centred, so for odd N the middle frame is the deblurred image itself. The frames' mean re-blurs to
    (approximately) the input. Time direction is ambiguous in one blurry image; the path runs left to right.

    Args:
        blurry: (B, C, H, W) in [0, 1]; other arguments as :func:`classical_deblur`.
        frames: N >= 1.

    Returns:
        (B, N, C, H, W) in [0, 1].

    Example::

        >>> video = classical_video(blurry, frames=7)
    """
    if frames < 1:
        raise UsageError(f"frames: must be >= 1, got {frames}")
    x, k = _deblur_with_kernels(blurry, kernel, method, max_size, deconv, strength, crf)
    B = x.shape[0]
    paths = torch.stack([kernel_path(k[min(i, k.shape[0] - 1), 0], frames) for i in range(B)])  # (B, N, 2)
    # bicubic keeps the moved frames as sharp as the deblurred one (bilinear would blur half-pixel shifts)
    return torch.stack([shift(x, paths[:, j, 0], paths[:, j, 1], mode="bicubic").clamp(0, 1)
                        for j in range(frames)], 1)


# ------------------------------------------------------------------------------------------ kernel files

def kernel_to_image(kernel: torch.Tensor) -> torch.Tensor:
    """(kh, kw) kernel -> (1, kh, kw) gray image in [0, 1], scaled so the largest tap is 1."""
    if kernel.dim() != 2:
        raise UsageError(f"kernel_to_image: expected (kh, kw), got {tuple(kernel.shape)}")
    k = kernel.float().clamp(min=0)
    return (k / k.max().clamp(min=1e-12))[None]


def kernel_from_image(image: torch.Tensor, name: str = "kernel") -> torch.Tensor:
    """(C, kh, kw) or (kh, kw) image in [0, 1] -> (kh, kw) kernel, non-negative, sum 1 (colour -> mean)."""
    k = image.float()
    if k.dim() == 3:
        k = k.mean(0)
    if k.dim() != 2:
        raise BlurtoolsError(f"{name}: expected a 2-D kernel image, got shape {tuple(image.shape)}")
    k = k.clamp(min=0)
    if not torch.isfinite(k).all() or k.sum() <= 0:
        raise BlurtoolsError(f"{name}: the kernel image is all black (its taps must sum to more than 0)")
    return k / k.sum()


def read_kernel(path) -> torch.Tensor:
    """Read a kernel image (gray PNG; colour is averaged) as an (kh, kw) kernel summing to 1."""
    return kernel_from_image(read_image(path, keep_gray=True), name=str(path))


def write_kernel(path, kernel: torch.Tensor, bits: int = 16) -> None:
    """Write a kernel as a gray PNG, largest tap = white (atomic; 16-bit by default for precision)."""
    write_image(path, kernel_to_image(kernel.detach().cpu()), bits=bits)
