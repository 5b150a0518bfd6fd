"""Homographies on pixel grids: mapping points, Keys bicubic sampling, and warping an image by a homography.

Conventions (pixel coordinates: x = column, y = row, origin at the top-left pixel's centre): a homography
(3x3, h33 = 1) maps output-frame coordinates to source coordinates, ``warped(x) = img(H x)``; a translation
by (dx, dy) is H = [[1, 0, dx], [0, 1, dy], [0, 0, 1]]. Used by image registration
(:mod:`blurtools.ops.registration`).
"""

from __future__ import annotations

from typing import Tuple

import torch

__all__ = ["translation_matrix", "pixel_grid", "apply_homography", "sample_bicubic", "warp_homography"]


def translation_matrix(shift: torch.Tensor) -> torch.Tensor:
    """(B, 2) shifts (dx, dy) -> (B, 3, 3) homographies."""
    h = torch.eye(3, dtype=shift.dtype, device=shift.device).repeat(shift.shape[0], 1, 1)
    h[:, :2, 2] = shift
    return h


def pixel_grid(h: int, w: int, dtype: torch.dtype, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    ys, xs = torch.meshgrid(torch.arange(h, dtype=dtype, device=device), torch.arange(w, dtype=dtype, device=device),
                            indexing="ij")
    return xs, ys


def apply_homography(hm: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Map points (..., H, W) through (B, 3, 3) -> u, v, den of shape (B, ...)."""
    view = (-1,) + (1,) * xs.dim()
    h = [[hm[:, i, j].view(view) for j in range(3)] for i in range(3)]
    den = h[2][0] * xs + h[2][1] * ys + h[2][2]
    u = (h[0][0] * xs + h[0][1] * ys + h[0][2]) / den
    v = (h[1][0] * xs + h[1][1] * ys + h[1][2]) / den
    return u, v, den


def _keys_weights(t: torch.Tensor) -> torch.Tensor:
    """Keys cubic-convolution weights (a = -0.5) of the taps at -1, 0, 1, 2 for fractions t (...) -> (..., 4)."""
    t2, t3 = t * t, t * t * t
    return torch.stack((-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1, -1.5 * t3 + 2 * t2 + 0.5 * t,
                        0.5 * t3 - 0.5 * t2), dim=-1)


def sample_bicubic(img: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Sample img (B, C, h, w) at pixel coordinates u (x), v (y) of shape (B, H, W) -> (B, C, H, W).

    Keys' cubic convolution with a = -0.5, the one cubic that reproduces quadratics: torch's and OpenCV's
    bicubic (a = -0.75) bias a sub-pixel shift by up to ~0.05 px, which an aligner must not inherit.
    Taps beyond the edge repeat the edge pixel.
    """
    b, c, h, w = img.shape
    hh, ww = u.shape[-2:]
    u = torch.nan_to_num(u, nan=-10.0, posinf=-10.0, neginf=-10.0).clamp(-4.0, w + 3.0)
    v = torch.nan_to_num(v, nan=-10.0, posinf=-10.0, neginf=-10.0).clamp(-4.0, h + 3.0)
    x0, y0 = torch.floor(u), torch.floor(v)
    wx, wy = _keys_weights(u - x0).to(img.dtype), _keys_weights(v - y0).to(img.dtype)
    offs = torch.arange(-1, 3, device=img.device)
    ix = (x0.long().unsqueeze(-1) + offs).clamp(0, w - 1)
    iy = (y0.long().unsqueeze(-1) + offs).clamp(0, h - 1)
    flat = img.reshape(b, c, h * w)
    out = torch.zeros(b, c, hh * ww, dtype=img.dtype, device=img.device)
    for j in range(4):
        row = torch.zeros_like(out)
        for i in range(4):
            idx = (iy[..., j] * w + ix[..., i]).reshape(b, 1, hh * ww).expand(b, c, hh * ww)
            row += flat.gather(2, idx) * wx[..., i].reshape(b, 1, hh * ww)
        out += row * wy[..., j].reshape(b, 1, hh * ww)
    return out.reshape(b, c, hh, ww)


def warp_homography(img: torch.Tensor, hm: torch.Tensor, margin: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Sample ``img`` (B, C, h, w) at H x for every pixel x of an (h, w) frame (Keys bicubic).

    Returns (warped (B, C, h, w) in img's dtype, mask (B, 1, h, w) bool): True where the source point lies
    at least ``margin`` px inside the image and in front of the camera (positive homogeneous scale).
    """
    b, _, h, w = img.shape
    xs, ys = pixel_grid(h, w, img.dtype, img.device)
    u, v, den = apply_homography(hm.to(img.dtype), xs, ys)
    mask = (den > 0) & (u >= margin) & (u <= w - 1 - margin) & (v >= margin) & (v <= h - 1 - margin)
    return sample_bicubic(img, u, v), mask.unsqueeze(1)
