"""Physics refinement of a learned deblur: blend in the classical deconvolution where there is evidence of blur.

The shipped deblur network removes some blur but leaves much of a long camera-shake streak; the classical
method (a blind kernel estimated in linear light, then deconvolution in linear light) recovers more detail
on uniform blur but rings where its kernel is wrong, and on nearly sharp or locally moving content
(a person in a static room) it does damage. Their errors differ, so a blend beats both on camera shake
(measured by ``benchmarks/default_weights.py``; numbers in ``blurtools/weights/MODEL_CARD.md``).

:func:`blend_classical` per image:

1. **Is there blur to remove?** Two kinds of evidence, and the larger counts. The network's own
   correction: ``change_db``, the PSNR between its output and its input, is high where it sees no blur;
   its evidence falls linearly from 1 at ``sharp_db - ramp_db`` to 0 at ``sharp_db``. The classical
   result's: a blind deconvolution that finds a real kernel turns the image's gradients much sparser, one
   that finds none leaves them as they were; :func:`sparsity_gain` is the ratio of the normalised sparsity
   ``||grad||_1 / ||grad||_2`` (Krishnan et al. 2011) of the input to that of the classical result, and its
   evidence rises linearly from 0 at ``GAIN_LOW`` to 1 at ``GAIN_HIGH``. The classical share is ``weight``
   times the evidence. (The measurements behind the thresholds are in the model card.)
2. **Register.** The classical result sits where its kernel's centroid puts it, the network's where the
   network put it (a blurry image does not say where inside the blur the mid-exposure lies). The classical
   result is moved onto the network's by the translation :func:`blurtools.ops.registration.align` finds
   (on a central crop of at most 512 px, luma), so the blend does not double edges.
3. **Blend** ``(1 - w) * learned + w * classical``; pixels the moved classical image does not cover keep
   the network's values. Before that, the network's own change is scaled by the evidence of blur
   (``learned = blurry + evidence * (learned - blurry)``), so an image with no evidence of blur (a sharp
   photo, a nearly static scene) comes back unchanged.
4. **Guard** against ringing: where the classical result was blended in, every pixel is kept within the
   blurry input's range over a 15 px window, widened to hold the network's own value and by 0.02
   (:mod:`blurtools.ops.range_guard`): the halos, colour fringes and new clipping the classical half makes
   at strong or saturated edges lie outside it; detail the network also restores stays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, List, Optional

import torch

from blurtools.errors import UsageError
from blurtools.ops.color import to_gray
from blurtools.ops.geometry import centre_crop
from blurtools.ops.range_guard import allowed_range
from blurtools.ops.registration import align
from blurtools.ops.warp import shift

log = logging.getLogger(__name__)

__all__ = ["RefineInfo", "blend_classical", "blend_video", "correction_db", "blur_evidence",
           "sparsity_gain", "deconvolution_evidence"]

# both weights were picked on the held-out <= 20 px photos (MODEL_CARD.md says what a validation set preferred)
WEIGHT = 0.7        # the classical share on clearly blurred images (0.3, 0.5 and 0.7 tried; 0.7 scored best)
VIDEO_WEIGHT = 0.5  # the deblurred image's share in every video frame (0.3-1 tried; 0.5 best, also on validation)
SHARP_DB = 40.0     # a network correction smaller than this (PSNR above it) means: nothing to deblur
RAMP_DB = 4.0       # the share falls to 0 over this many dB below SHARP_DB
# picked on the scikit-image training photos, sharp (gain <= 1.12 but for the star field hubble_deep_field, 1.55)
# and on 20/40 px shakes (1.06-1.55, median 1.16); the held-out sets were not looked at for these two
GAIN_LOW = 1.15     # a sparsity gain at or below this is no evidence of blur
GAIN_HIGH = 1.30    # at or above this, full evidence
# the range guard (ops/range_guard.py) after the classical blend: +0.17 / +0.03 dB plain on held-out / validation
# <= 20 px shakes, and the same with windows of 9-25 px or the estimated kernel's size
GUARD_WINDOW = 15
GUARD_MARGIN = 0.02
_ALIGN_SIDE = 512   # the registration looks at a central crop at most this big (a 1024 crop took 4x the time)
_SPARSITY_SIDE = 512  # the sparsity gain reads the gradients of a central crop at most this big


@dataclass
class RefineInfo:
    """What the blend did to one image (``deblur`` records it in each output's provenance as ``refine``)."""

    change_db: float    # PSNR (dB) between the network's output and the input
    share: float        # the classical share used, in [0, 1]
    dx: float           # the translation applied to the classical result (px, right)
    dy: float           # (px, down)
    aligned: bool       # False: registration failed and the network's result was kept
    sparsity_gain: float = 0.0   # :func:`sparsity_gain` of the classical result (0: not computed)
    evidence: float = 0.0        # the evidence of blur the share came from, in [0, 1]


def correction_db(learned: torch.Tensor, blurry: torch.Tensor) -> torch.Tensor:
    """PSNR (dB, peak 1) between (B, C, H, W) images in [0, 1], per image: how much the network changed.

    Summed a channel at a time in float64, so a 24-megapixel image needs one channel-sized temporary.
    """
    out = []
    for i in range(learned.shape[0]):
        sq = sum(float((learned[i, c].float() - blurry[i, c].float()).square_().sum(dtype=torch.float64))
                 for c in range(learned.shape[1]))
        out.append(max(sq / learned[i].numel(), 1e-12))
    return -10 * torch.log10(torch.tensor(out, dtype=torch.float64))


def _ramp(x: float, zero_at: float, one_at: float) -> float:
    """0 at ``zero_at``, 1 at ``one_at``, linear between and clamped outside (either may be the larger)."""
    return float(min(max((x - zero_at) / (one_at - zero_at), 0.0), 1.0))


def blur_evidence(change_db: float, sharp_db: float = SHARP_DB, ramp_db: float = RAMP_DB) -> float:
    """How sure the network is that there is blur: 1 below the ramp, 0 at ``sharp_db`` and above, linear between."""
    if ramp_db <= 0:
        return 1.0 if change_db < sharp_db else 0.0
    return _ramp(change_db, sharp_db, sharp_db - ramp_db)


def sparsity_gain(blurry: torch.Tensor, deblurred: torch.Tensor) -> float:
    """How much sparser a deconvolution made the gradients: ``ns(blurry) / ns(deblurred)``, a float > 0.

    ``ns`` is the normalised sparsity ``||g||_1 / (||g||_2 sqrt(n))`` of the gradient magnitudes ``g`` of the
    luma (central differences) on a central crop of at most 512 px, 4 px in from its edges. Blur spreads
    edges and raises ``ns``; a deconvolution with the right kernel lowers it again (Krishnan, Tay & Fergus
    2011), one with no real kernel to find leaves it near 1.

    Args:
        blurry, deblurred: (1, C, H, W) in [0, 1], C = 1 or 3, the same size.
    """
    def ns(x: torch.Tensor) -> float:
        y = to_gray(centre_crop(x.float(), _SPARSITY_SIDE).double())[0, 0]
        gy, gx = torch.gradient(y)
        g = torch.hypot(gx, gy)[4:-4, 4:-4]
        return float(g.sum() / (g.square().sum() * g.numel()).sqrt().clamp_min(1e-30))

    return ns(blurry) / max(ns(deblurred), 1e-12)


def deconvolution_evidence(gain: float, low: float = GAIN_LOW, high: float = GAIN_HIGH) -> float:
    """The evidence of blur a :func:`sparsity_gain` gives: 0 at ``low`` and below, 1 at ``high`` and above."""
    return _ramp(gain, low, high)


def _register(moving: torch.Tensor, fixed: torch.Tensor) -> "tuple[torch.Tensor, torch.Tensor, float, float, str]":
    """Move (1, C, H, W) ``moving`` onto ``fixed`` by the best translation (found on a central crop, luma).

    Returns ``(moved, covered, dx, dy, reason)``: ``covered`` (1, 1, H, W) float is 1 where the moved image
    has all its bicubic taps inside ``moving`` and 0 elsewhere; ``dx, dy`` is the translation applied;
    ``reason`` is "" on success, else why it failed (then ``moved`` and ``covered`` are None).
    """
    a = align(centre_crop(moving, _ALIGN_SIDE), centre_crop(fixed, _ALIGN_SIDE), "translation")
    if not bool(a.ok[0]):
        return None, None, 0.0, 0.0, a.reasons[0]
    dx, dy = -float(a.shift[0, 0]), -float(a.shift[0, 1])   # moving's content sits -(dx, dy) from fixed's
    moved = shift(moving, dx, dy, mode="bicubic", padding="zeros")
    H, W = moving.shape[-2:]
    # out(p) = moving(p - d): inside where p - d lies 1 px or more within the image (a rectangle)
    ys = torch.arange(H, dtype=moving.dtype, device=moving.device) - dy
    xs = torch.arange(W, dtype=moving.dtype, device=moving.device) - dx
    covered = (((ys >= 1) & (ys <= H - 2)).to(moving.dtype)[:, None] * ((xs >= 1) & (xs <= W - 2)).to(moving.dtype)[None, :])
    return moved, covered[None, None], dx, dy, ""


def blend_classical(blurry: torch.Tensor, learned: torch.Tensor,
                    classical: "torch.Tensor | Callable[[], torch.Tensor]", weight: float = WEIGHT,
                    sharp_db: float = SHARP_DB, ramp_db: float = RAMP_DB,
                    changes: Optional[torch.Tensor] = None) -> "tuple[torch.Tensor, List[RefineInfo]]":
    """Blend the classical deblur into the learned one where there is evidence of blur; see the module docstring.

    Args:
        blurry, learned: (B, 3, H, W) float in [0, 1], same shape, one device.
        classical: the classical result, the same shape, or a function computing it (not called when
            ``weight`` is 0).
        weight: the classical share on clearly blurred images, in [0, 1].
        sharp_db, ramp_db: where the network's evidence starts to fall and how fast (dB of its correction).
        changes: (B,) :func:`correction_db` of ``learned`` against ``blurry`` when the caller has it.

    Returns:
        ``(blended, infos)``: ``learned`` itself, blended in place (no copy of a 24-megapixel image), and one
        :class:`RefineInfo` per image (its ``evidence`` is the larger of the network's and the
        deconvolution's).

    Example::

        >>> out, infos = blend_classical(blurry, net(blurry), classical_deblur(blurry, crf="gamma:2.2"))
    """
    if not 0 <= weight <= 1:
        raise UsageError(f"blend_classical: weight must be in [0, 1], got {weight}")
    if changes is None:
        changes = correction_db(learned, blurry)
    if callable(classical):
        classical = classical() if weight > 0 else None
    if (classical is not None and classical.shape != learned.shape) or blurry.shape != learned.shape or blurry.dim() != 4:
        raise UsageError(f"blend_classical: expected three (B, C, H, W) tensors of one shape, got {tuple(blurry.shape)}, "
                         f"{tuple(learned.shape)}, {tuple(classical.shape) if classical is not None else None}")
    out = learned
    infos: List[RefineInfo] = []
    for i in range(learned.shape[0]):
        change = float(changes[i])
        evidence, gain = blur_evidence(change, sharp_db, ramp_db), 0.0
        if classical is not None:
            gain = sparsity_gain(blurry[i:i + 1], classical[i:i + 1])
            evidence = max(evidence, deconvolution_evidence(gain))
        share = weight * evidence
        if evidence < 1:
            # the network's change counts as much as the evidence that there was blur to remove: an image
            # with none comes back as it went in (on the nearly static carphone windows the network's own
            # 43-46 dB change scored 0.02 dB below the input; on sharp photos it adds halos)
            out[i:i + 1].lerp_(blurry[i:i + 1].to(out.dtype), 1 - evidence)
        info = RefineInfo(change, 0.0, 0.0, 0.0, True, gain, evidence)
        if share > 0:
            moved, covered, dx, dy, reason = _register(classical[i:i + 1].float(), learned[i:i + 1].float())
            if not reason:
                # out += share * covered * (moved - out), in place
                # the classical half may not push beyond what the input shows nearby or the network stands by
                lo, hi = allowed_range(blurry[i:i + 1].to(out.dtype), GUARD_WINDOW, GUARD_MARGIN, keep=out[i:i + 1])
                out[i:i + 1].lerp_(moved.to(out.dtype), (covered * share).to(out.dtype))
                del moved
                torch.maximum(torch.minimum(out[i:i + 1], hi, out=out[i:i + 1]), lo, out=out[i:i + 1]).clamp_(0, 1)
                del lo, hi
                info = RefineInfo(change, share, dx, dy, True, gain, evidence)
            else:
                info = RefineInfo(change, 0.0, 0.0, 0.0, False, gain, evidence)
                log.info("refine: image %d: classical result could not be registered (%s); network result kept",
                         i, reason)
        log.debug("refine: image %d: network correction %.1f dB, sparsity gain %.2f, classical share %.2f",
                  i, info.change_db, gain, info.share)
        infos.append(info)
    return out, infos


def blend_video(frames: torch.Tensor, sharp: torch.Tensor, evidence: float, weight: float = VIDEO_WEIGHT) -> torch.Tensor:
    """Sharpen a video network's frames with the deblurred image, and hold the video still where there is no blur.

    Every frame becomes ``evidence * ((1 - weight) * frame + weight * moved) + (1 - evidence) * sharp``, where
    ``moved`` is ``sharp`` registered onto that frame (:func:`_register`): the frames keep the network's
    motion and gain the deblur's detail; an image with no evidence of blur (``evidence`` 0) has no
    motion to show, so every frame is the deblurred image (measured in the model card).

    Args:
        frames: (N, 3, H, W) uint8, or float in [0, 1]; changed in place and returned.
        sharp: (1, 3, H, W) float in [0, 1], the default deblur's result for the same image.
        evidence: the deblur's evidence of blur (:class:`RefineInfo`.evidence), in [0, 1].
        weight: the deblurred image's share in a frame where there is blur.

    Returns:
        ``frames``, blended, same dtype.
    """
    if frames.dim() != 4 or sharp.shape != (1, *frames.shape[1:]):
        raise UsageError(f"blend_video: expected frames (N, C, H, W) and sharp (1, C, H, W), got "
                         f"{tuple(frames.shape)} and {tuple(sharp.shape)}")
    as_uint8 = frames.dtype == torch.uint8
    sharp = sharp.float()
    for t in range(frames.shape[0]):
        f = frames[t:t + 1].float() / 255 if as_uint8 else frames[t:t + 1].float()
        out = sharp
        if evidence > 0:
            moved, covered, _, _, reason = _register(sharp, f)
            detail = f if reason else f.lerp(moved, covered * weight)
            out = evidence * detail + (1 - evidence) * sharp
        out = out.clamp(0, 1)
        frames[t:t + 1] = (out * 255).round().to(torch.uint8) if as_uint8 else out.to(frames.dtype)
    return frames
