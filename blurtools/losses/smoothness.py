"""Smoothness (total variation) of flow fields.

Purohit, Shah, Rajagopalan, "Bringing Alive Blurred Moments", CVPR 2019, regularise the flows their
video decoder predicts with the total variation, weight mu = 0.02. We use the anisotropic L1 form:

    TV(f) = mean |f(y, x+1) - f(y, x)| + mean |f(y+1, x) - f(y, x)|

over every channel and sample; it is zero for any constant field and does not grow with image size.

Example::

    >>> import torch
    >>> float(total_variation(torch.full((2, 2, 8, 8), 3.0)))
    0.0
"""

from __future__ import annotations

from typing import Sequence

import torch

from blurtools.errors import BlurtoolsError


def total_variation(field: torch.Tensor) -> torch.Tensor:
    """Anisotropic L1 total variation of a field (..., C, H, W), e.g. flows (B, 2, H, W) or (B, N, 2, H, W).

    Returns:
        0-dim tensor: mean absolute horizontal difference + mean absolute vertical difference. A field
        one pixel wide or high contributes 0 along that axis.
    """
    if field.dim() < 3:
        raise BlurtoolsError(f"total_variation: expected (..., C, H, W), got {tuple(field.shape)}")
    total = field.new_zeros(())
    if field.shape[-1] > 1:
        total = total + (field[..., :, 1:] - field[..., :, :-1]).abs().mean()
    if field.shape[-2] > 1:
        total = total + (field[..., 1:, :] - field[..., :-1, :]).abs().mean()
    return total


def multiscale_total_variation(fields: Sequence[torch.Tensor], weights: Sequence[float] = ()) -> torch.Tensor:
    """Weighted sum of :func:`total_variation` over the flows of a pyramid.

    Args:
        fields: one field per scale, e.g. [(B, N, 2, H, W), (B, N, 2, H/2, W/2), ...].
        weights: one weight per scale (default 1 each).
    """
    if not fields:
        raise BlurtoolsError("multiscale_total_variation: no fields given")
    w = tuple(weights) or (1.0,) * len(fields)
    if len(w) != len(fields):
        raise BlurtoolsError(f"multiscale_total_variation: {len(w)} weights for {len(fields)} fields")
    total = fields[0].new_zeros(())
    for wi, f in zip(w, fields):
        total = total + wi * total_variation(f)
    return total
