"""The default ``extract-video``: the deblurred image, moved along the path the blur says the scene took.

A blurry photo is the average, in linear light, of the sharp frames seen during the exposure. For camera
shake every frame is the same scene moved along the camera's path, and the blur kernel *is* that path
(its mass is where the scene spent time). So the video is made at inference, with no video network:

1. **Deblur once** with the default deblur (network plus classical refinement; :mod:`blurtools.infer.refine`),
   which also says how sure it is that there is blur (``evidence`` in [0, 1]).
2. **Estimate the blur** once: the blind kernel estimate (:func:`blurtools.ops.blind_kernel.estimate_kernel`,
   in linear light) is handed to the deblur's classical half, so it is not estimated twice.
3. **Read the path** off the kernel: :func:`blurtools.infer.classical.kernel_path` cuts the kernel's mass,
   ordered along its principal axis, into N parts of equal mass (equal exposure time) and returns each
   part's centroid. The order runs left to right (bottom to top if vertical); one image cannot tell the
   direction of time, so ``--boomerang`` hides it.
4. **Centre**: the kernel's positions are relative to the *scene* the kernel blurs (the deconvolution's
   latent image). The default deblur's output may sit elsewhere (the network puts it wherever its
   training put it), so its offset is measured: the deblurred image is re-blurred with the kernel in linear
   light and registered onto the blurry input.
5. **Place** the deblurred image at every position by an exact Fourier shift
   (:func:`blurtools.ops.fourier_shift.fourier_shift`), so every frame is as sharp as the deblurred image.
   The path is scaled by the evidence of blur: with no evidence the frames stand still.

The physics check: the frames, averaged in linear light, re-blur to the input; :func:`reblur_psnr` says how
closely (recorded as ``reblur_psnr_db``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Dict, Optional, Tuple

import torch

from blurtools.errors import UsageError

log = logging.getLogger(__name__)

__all__ = ["MotionInfo", "kernel_offset", "motion_positions", "place_frames", "reblur_psnr", "motion_video"]

_ALIGN_SIDE = 512   # the offset is registered on a central crop at most this big


@dataclass
class MotionInfo:
    """What :func:`motion_video` did to one image (recorded in the video's provenance as ``motion``)."""

    evidence: float          # the deblur's evidence of blur, in [0, 1]; the path is scaled by it
    kernel_size: int         # side (px) of the estimated kernel
    extent_px: float         # largest distance between two frames' positions (px)
    offset_dx: float         # where the deblurred image sits relative to the kernel's scene (px, right)
    offset_dy: float         # (px, down)
    reblur_psnr_db: float    # PSNR of the frames' linear-light mean against the input (0: not computed)


def kernel_offset(sharp: torch.Tensor, blurry: torch.Tensor, kernel: torch.Tensor, crf: Optional[str]) -> Tuple[float, float]:
    """Where ``sharp`` sits relative to the scene that ``kernel`` blurs into ``blurry``: ``(dx, dy)`` px.

    ``sharp`` re-blurred with ``kernel`` (in linear light when ``crf`` is given) is registered onto
    ``blurry`` by a translation (:func:`blurtools.ops.registration.align`, central crop, luma). (0, 0) when
    registration fails.

    Args:
        sharp, blurry: (1, 3, H, W) in [0, 1]. kernel: (kh, kw), sum 1, centre tap ``(kh - 1) // 2``.
    """
    from blurtools.ops.registration import align
    from blurtools.ops.geometry import centre_crop
    from blurtools.ops.crf import from_linear, to_linear
    from blurtools.ops.filters import fft_conv2d

    side = _ALIGN_SIDE + 2 * kernel.shape[-1]
    s, b = centre_crop(sharp.float(), side), centre_crop(blurry.float(), side)
    lin = to_linear(s, crf) if crf else s
    re = fft_conv2d(lin, kernel.to(lin))
    re = from_linear(re, crf) if crf else re
    m = kernel.shape[-1]
    a = align(re[..., m:-m, m:-m], b[..., m:-m, m:-m], "translation")
    if not bool(a.ok[0]):
        log.info("motion: the re-blurred image could not be registered (%s); no offset applied", a.reasons[0])
        return 0.0, 0.0
    return float(a.shift[0, 0]), float(a.shift[0, 1])


def motion_positions(kernel: torch.Tensor, frames: int, evidence: float,
                     offset: Tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    """The (frames, 2) shifts ``(dx, dy)`` that move the deblurred image to each frame's position.

    The kernel's path (:func:`blurtools.infer.classical.kernel_path`), scaled by ``evidence`` in [0, 1]
    (0: no blur, every frame the deblurred image), minus ``offset`` (where the deblurred image sits
    relative to the kernel's scene; see :func:`kernel_offset`).
    """
    from blurtools.infer.classical import kernel_path

    if not 0 <= evidence <= 1:
        raise UsageError(f"motion_positions: evidence must be in [0, 1], got {evidence}")
    path = kernel_path(kernel.double(), frames) * evidence
    return path - torch.tensor(offset, dtype=path.dtype) * evidence


def place_frames(sharp: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) ``sharp`` in [0, 1] moved to every position ((N, 2) px) exactly: (N, 3, H, W) in [0, 1]."""
    from blurtools.ops.fourier_shift import fourier_shift

    return fourier_shift(sharp.float(), positions).clamp_(0, 1)


def reblur_psnr(frames: torch.Tensor, blurry: torch.Tensor, crf: Optional[str]) -> float:
    """PSNR (dB, peak 1) of the frames' mean in linear light against the blurry input (display values).

    Args:
        frames: (N, 3, H, W) in [0, 1] (uint8 accepted). blurry: (1, 3, H, W) in [0, 1].
    """
    from blurtools.ops.crf import from_linear, to_linear

    f = frames.float() / 255 if frames.dtype == torch.uint8 else frames.float()
    mean = to_linear(f, crf).mean(0, keepdim=True) if crf else f.mean(0, keepdim=True)
    mean = from_linear(mean, crf) if crf else mean
    mse = float((mean - blurry.float()).square().mean())
    return float(-10 * torch.log10(torch.tensor(max(mse, 1e-12))))


def motion_video(deblur: Any, image: torch.Tensor, opts: Any, frames: int
                 ) -> Tuple[torch.Tensor, MotionInfo, Dict[str, Any]]:
    """The video one blurry image hides, made from the default deblur (see the module docstring).

    Args:
        deblur: the default deblur predictor (a network with a classical ``refine``;
            :func:`blurtools.infer.loading.load_predictor`).
        image: (1, 3, H, W) in [0, 1].
        opts: :class:`blurtools.infer.deblur.InferOptions` (tiling).
        frames: N >= 1.

    Returns:
        ``(frames, info, refine)``: (N, 3, H, W) float in [0, 1], a :class:`MotionInfo`, and the deblur's
        refinement record (a dict, or None).
    """
    from blurtools.infer.predict import deblur_with_evidence
    from blurtools.ops.blind_kernel import estimate_kernel

    if frames < 1:
        raise UsageError(f"--frames {frames}: must be >= 1")
    classical = deblur.refine
    if classical is None or not classical.is_classical:
        raise UsageError("motion_video: needs the default deblur with its classical refinement")
    c = classical.classical
    crf = c.get("crf")
    with torch.inference_mode():
        kernel = c.get("kernel")
        if kernel is None:
            kernel = estimate_kernel(image.float(), c.get("max_size", 63), c.get("method", "linear"), crf).cpu()
        reuse = replace(deblur, refine=replace(classical, classical={**c, "kernel": kernel}))
        sharp, evidence, infos = deblur_with_evidence(reuse, image, opts)
        sharp = sharp.float()
        offset = kernel_offset(sharp, image, kernel, crf) if evidence[0] > 0 else (0.0, 0.0)
        positions = motion_positions(kernel, frames, evidence[0], offset)
        out = place_frames(sharp, positions)
    d = positions[:, None] - positions[None]
    info = MotionInfo(round(float(evidence[0]), 3), int(kernel.shape[-1]), round(float(d.norm(dim=-1).max()), 2),
                      round(offset[0], 2), round(offset[1], 2), round(reblur_psnr(out, image, crf), 2))
    log.info("motion: evidence %.2f, kernel %d px, frames span %.1f px, re-blur %.1f dB",
             info.evidence, info.kernel_size, info.extent_px, info.reblur_psnr_db)
    return out, info, infos[0]

