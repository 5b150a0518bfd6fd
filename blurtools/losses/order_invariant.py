"""Order-invariant losses for a video recovered from one blurry image.

Jin, Meishvili, Favaro, "Learning to Extract a Video Sequence from a Single Motion-Blurred Image",
CVPR 2018, section 3. Averaging frames into a blurry image destroys the direction of time, so the frames
a and b that lie symmetrically about the middle can only be recovered up to a swap. Jin et al. compare
the unordered pair instead of the ordered frames:

    pair(a, b) = | |xa^ + xb^| - |xa + xb| |_1 + | |xa^ - xb^| - |xa - xb| |_1

which is zero exactly when {xa^, xb^} = {xa, xb} pixel by pixel (per pixel: from |s| and |d| with
s = a + b, d = a - b one recovers a and b up to a swap). The middle frame has no partner and takes a plain
loss. Every term is a mean over its elements, so weights mean the same thing at any image size.

Example::

    >>> import torch
    >>> gt = torch.rand(2, 7, 3, 8, 8)
    >>> float(order_invariant_loss(gt.flip(1), gt))
    0.0
"""

from __future__ import annotations

from typing import Iterable, Optional

import torch

from blurtools.errors import BlurtoolsError

_MIDDLE = ("l1", "l2", "none")


def pair_loss(pa: torch.Tensor, pb: torch.Tensor, ta: torch.Tensor, tb: torch.Tensor) -> torch.Tensor:
    """Jin's loss for one symmetric pair: mean of | |pa+pb| - |ta+tb| | + | |pa-pb| - |ta-tb| |.

    Args:
        pa, pb: predicted frames, any equal shapes (usually (B, C, H, W)).
        ta, tb: the ground-truth frames at the same two moments, same shape.
    Returns:
        0-dim tensor; unchanged when (pa, pb) or (ta, tb) are swapped.
    """
    shapes = {tuple(t.shape) for t in (pa, pb, ta, tb)}
    if len(shapes) != 1:
        raise BlurtoolsError(f"pair_loss: frames differ in shape: {sorted(shapes)}")
    s = ((pa + pb).abs() - (ta + tb).abs()).abs()
    d = ((pa - pb).abs() - (ta - tb).abs()).abs()
    return (s + d).mean()


def _check_seq(pred: torch.Tensor, target: torch.Tensor, name: str) -> None:
    if pred.dim() != 5:
        raise BlurtoolsError(f"{name}: expected (B, N, C, H, W) sequences, got {tuple(pred.shape)}")
    if pred.shape != target.shape:
        raise BlurtoolsError(f"{name}: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")


def order_invariant_loss(pred: torch.Tensor, target: torch.Tensor, middle: str = "l1",
                         offsets: Optional[Iterable[int]] = None) -> torch.Tensor:
    """Order-invariant loss over whole sequences (pairs about the middle + the middle frame).

    Args:
        pred: (B, N, C, H, W) predicted frames in the model's time order.
        target: (B, N, C, H, W) ground truth in true time order.
        middle: loss on the middle frame when N is odd: "l1", "l2" or "none".
        offsets: which pairs to include, as distances from the middle: pair d compares frames
            (N-1)/2 - d and (N-1)/2 + d for odd N (for even N, d = 1 is the innermost pair
            N/2 - 1, N/2). None = every pair.
    Returns:
        0-dim tensor: the terms summed with a frame's worth of weight each (a pair counts for its two
        frames), divided by the number of frames included, so its scale does not grow with N.
        Reversing ``pred`` or ``target`` along N leaves it unchanged.
    """
    _check_seq(pred, target, "order_invariant_loss")
    if middle not in _MIDDLE:
        raise BlurtoolsError(f"order_invariant_loss: middle must be one of {_MIDDLE}, got {middle!r}")
    n = pred.shape[1]
    half = n // 2
    chosen = range(1, half + 1) if offsets is None else sorted(set(int(d) for d in offsets))
    total = pred.new_zeros(())
    weight = 0
    for d in chosen:
        if not 1 <= d <= half:
            raise BlurtoolsError(f"order_invariant_loss: pair offset {d} outside 1..{half} for {n} frames")
        a = (n - 1) // 2 - d + (1 if n % 2 == 0 else 0)
        b = n - 1 - a
        total = total + 2 * pair_loss(pred[:, a], pred[:, b], target[:, a], target[:, b])
        weight += 2
    if n % 2 == 1 and middle != "none":
        diff = pred[:, half] - target[:, half]
        total = total + (diff.abs() if middle == "l1" else diff.pow(2)).mean()
        weight += 1
    if weight == 0:
        raise BlurtoolsError("order_invariant_loss: nothing to compare (no pairs and no middle term)")
    return total / weight


def best_order(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per sample, ``pred`` or ``pred`` reversed in time, whichever is closer to ``target`` (mean squared error).

    Args:
        pred, target: (B, N, C, H, W).
    Returns:
        (B, N, C, H, W): pred aligned to the target's direction of time (no gradient through the choice).
    """
    _check_seq(pred, target, "best_order")
    rev = pred.flip(1)
    with torch.no_grad():
        e_fwd = (pred - target).pow(2).flatten(1).mean(1)
        e_rev = (rev - target).pow(2).flatten(1).mean(1)
    keep = (e_fwd <= e_rev).view(-1, 1, 1, 1, 1)
    return torch.where(keep, pred, rev)
