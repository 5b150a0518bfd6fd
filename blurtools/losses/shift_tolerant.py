"""Targets aligned to the prediction by the best small integer translation: the shift ambiguity of blind blur.

A blurry image fixes the blur kernel only up to a translation: ``k * x`` and ``shift(k, d) * shift(x, -d)``
are the same picture. For video-averaged data (GoPro, REDS) the middle frame sits near the centre of the
blur, but for still photos moved along random camera-shake trajectories the mid-exposure position (the
middle frame) is 2 px from the blur's centroid on average for <= 20 px shakes and 4 px for <= 40 px
(measured on blur-synth's trajectories), and nothing in the blurry image tells which way. A network
trained with a plain pixel loss against the middle frame then learns to hedge between positions, i.e.
to stay blurry. Comparing against the target moved by the integer shift (within ``radius``) that best
matches the prediction removes the ambiguity from the loss; the deblurring itself is still learned in
full. The choice of shift carries no gradient; the comparison is on the interior that every shift
covers.

    target_a, pred_a = align_target(pred, target, radius=4)     # both (B, C, H - 2r, W - 2r)
    loss = l1(pred_a, target_a)
"""

from __future__ import annotations

from typing import Tuple

import torch

from blurtools.errors import BlurtoolsError


def align_target(pred: torch.Tensor, target: torch.Tensor, radius: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The target translated per sample by the best integer shift, and the prediction, on the shared interior.

    Args:
        pred, target: (B, ..., H, W) of one shape (leading axes after B, e.g. frames and channels, move
            together: one shift per sample). radius: largest |dy|, |dx| tried (0 = no alignment).
    Returns:
        ``(target_aligned, pred_interior)``, both (B, ..., H - 2 radius, W - 2 radius).
    """
    if pred.shape != target.shape or pred.dim() < 3:
        raise BlurtoolsError(f"align_target: prediction {tuple(pred.shape)} and target {tuple(target.shape)} "
                             "must share one (B, ..., H, W) shape")
    r = int(radius)
    h, w = pred.shape[-2:]
    if r < 0 or 2 * r >= min(h, w):
        raise BlurtoolsError(f"align_target: radius {radius} does not fit a {h}x{w} image")
    if r == 0:
        return target, pred
    inner = pred[..., r:h - r, r:w - r]
    b = pred.shape[0]
    shifts = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
    with torch.no_grad():
        p = inner.detach()
        errors = torch.stack([(target[..., r + dy:h - r + dy, r + dx:w - r + dx] - p).abs().reshape(b, -1).mean(1)
                              for dy, dx in shifts])                      # (shifts, B)
        choice = [shifts[i] for i in errors.argmin(dim=0).tolist()]
    aligned = torch.stack([target[i, ..., r + dy:h - r + dy, r + dx:w - r + dx]
                           for i, (dy, dx) in enumerate(choice)])
    return aligned, inner
