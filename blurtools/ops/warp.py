"""Backward warping by a dense flow field and sub-pixel translation.

Convention (used by every caller in blurtools): a flow field ``flow`` of shape (B, 2, H, W) holds, in
pixels, ``flow[:, 0] = dx`` (to the right) and ``flow[:, 1] = dy`` (downwards). Backward warping samples

    out[b, :, y, x] = x_in[b, :, y + dy(y, x), x + dx(y, x)]

so if ``flow`` is the optical flow from frame0 to frame1 (a pixel at p in frame0 is at p + flow(p) in
frame1), then ``warp(frame1, flow)`` is frame1 pulled back onto frame0.

Pixel centres sit at integer coordinates 0..W-1. ``grid_sample`` is called with ``align_corners=True``,
for which the normalised coordinates -1 and +1 are the centres of the first and last pixels, i.e.
``x_norm = 2 x / (W - 1) - 1``; with this choice a zero flow reproduces the input exactly and a flow of
one pixel moves exactly one pixel-pitch, independent of the image size.
"""

from __future__ import annotations

from typing import Union

import torch
import torch.nn.functional as F

from blurtools.errors import UsageError

Number = Union[float, int, torch.Tensor]


def _check(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise UsageError(f"{name}: expected a (B, C, H, W) tensor, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if not x.is_floating_point():
        raise UsageError(f"{name}: expected a floating-point tensor, got {x.dtype}")


def base_grid(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(1, 2, H, W) pixel coordinates: channel 0 is x (column), channel 1 is y (row)."""
    ys = torch.arange(h, dtype=dtype, device=device)
    xs = torch.arange(w, dtype=dtype, device=device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), dim=0)[None]


def warp(x: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear",
         padding: str = "border") -> torch.Tensor:
    """Backward-warp ``x`` by ``flow``: ``out(p) = x(p + flow(p))``.

    Args:
        x: (B, C, H, W) float tensor.
        flow: (B, 2, H, W) or (1, 2, H, W) displacement in pixels, channel 0 = dx, channel 1 = dy.
        mode: "bilinear", "nearest" or "bicubic" (``grid_sample`` modes).
        padding: "border" (repeat edge pixels), "zeros" or "reflection" for samples outside the image.
    Returns:
        (B, C, H, W) tensor, same dtype and device as ``x``.

    Example::

        flow = torch.zeros(1, 2, 32, 32); flow[:, 0] = 1.0
        out = warp(img, flow)          # out[..., x] == img[..., x + 1]: content moves one pixel left
    """
    _check(x, "warp")
    _check(flow, "warp flow")
    b, _, h, w = x.shape
    if flow.shape[1] != 2 or flow.shape[2:] != x.shape[2:] or flow.shape[0] not in (1, b):
        raise UsageError(f"warp: flow must be (B, 2, H, W) = ({b}, 2, {h}, {w}), got {tuple(flow.shape)}")
    flow = flow.to(dtype=x.dtype, device=x.device)
    pos = base_grid(h, w, x.dtype, x.device) + flow                          # (B, 2, H, W)
    # align_corners=True: -1/+1 are the first/last pixel centres; max(.,1) keeps 1-pixel axes finite.
    gx = pos[:, 0] * (2.0 / max(w - 1, 1)) - 1.0
    gy = pos[:, 1] * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)                                     # (B, H, W, 2)
    if grid.shape[0] != b:
        grid = grid.expand(b, -1, -1, -1)
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=True)


def _per_image(v: Number, b: int, x: torch.Tensor, name: str) -> torch.Tensor:
    t = torch.as_tensor(v, dtype=x.dtype, device=x.device).reshape(-1)
    if t.numel() == 1:
        t = t.expand(b)
    if t.numel() != b:
        raise UsageError(f"shift: {name} needs 1 or B={b} values, got {t.numel()}")
    return t


def shift(x: torch.Tensor, dx: Number, dy: Number, mode: str = "bilinear",
          padding: str = "border") -> torch.Tensor:
    """Translate image content by (dx, dy) pixels: ``out(p) = x(p - (dx, dy))``.

    Positive ``dx`` moves content to the right, positive ``dy`` moves it down. Sub-pixel values use
    bilinear interpolation (equivalent to convolving with a 2x2 bilinear splat of the shift).

    Args:
        x: (B, C, H, W) float tensor.
        dx, dy: a number, or (B,) tensors/sequences giving one shift per image.
    Returns:
        (B, C, H, W) tensor.

    Example::

        moved = shift(img, 2.5, -1.0)  # content 2.5 px right and 1 px up
    """
    _check(x, "shift")
    b, _, h, w = x.shape
    tx = _per_image(dx, b, x, "dx")
    ty = _per_image(dy, b, x, "dy")
    flow = torch.stack((-tx, -ty), dim=1)[:, :, None, None].expand(b, 2, h, w)
    return warp(x, flow, mode=mode, padding=padding)
