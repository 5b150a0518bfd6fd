"""Classical optical flow (coarse-to-fine TV-L1) and flow-based frame interpolation.

TV-L1 after Zach, Pock, Bischof, "A duality based approach for realtime TV-L1 optical flow", DAGM 2007,
in the formulation of Sanchez Perez, Meinhardt-Llopis, Facciolo, "TV-L1 optical flow estimation",
IPOL 2013: minimise ``sum |grad u| + lambda |I1(x + u) - I0(x)|`` by alternating a pointwise
thresholding step on the linearised data term with Chambolle's dual projection for the total
variation, inside a few warps per pyramid level. Everything is batched tensor arithmetic, so it runs on
whatever device the frames are on.

Flow convention (same as :mod:`blurtools.ops.warp`): ``estimate_flow(frame0, frame1)`` returns
``(B, 2, H, W)`` with channel 0 = dx, channel 1 = dy in pixels such that the content at p in frame0 is at
``p + flow(p)`` in frame1, i.e. ``warp(frame1, flow) ~= frame0``.

Frame interpolation (:func:`interpolate_frames`) follows the intermediate-flow approximation of
Jiang et al., "Super SloMo", CVPR 2018: from F01 and F10, ``F_t0 = -(1-t) t F01 + t^2 F10`` and
``F_t1 = (1-t)^2 F01 - t (1-t) F10``; both frames are warped to time t and blended with weights
``(1-t) V0`` and ``t V1``, V the forward-backward consistency (visibility) of each frame.
"""

from __future__ import annotations

import logging
import math
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F

from blurtools.errors import UsageError
from blurtools.ops.warp import warp

log = logging.getLogger(__name__)

_Y = (0.299, 0.587, 0.114)


def _check_pair(a: torch.Tensor, b: torch.Tensor, fn: str) -> None:
    for name, x in (("frame0", a), ("frame1", b)):
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise UsageError(f"{fn}: {name} must be a float (B, C, H, W) tensor, got {shape}")
    if a.shape != b.shape:
        raise UsageError(f"{fn}: frames differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")


def _gray255(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] -> (B, 1, H, W) luma in [0, 255] (the scale TV-L1's lambda is tuned for)."""
    if x.shape[1] == 3:
        w = torch.tensor(_Y, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x * w).sum(dim=1, keepdim=True)
    elif x.shape[1] != 1:
        x = x.mean(dim=1, keepdim=True)
    return x * 255.0


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable gaussian smoothing with replicate padding (pre-filter against aliasing and noise)."""
    if sigma <= 0:
        return x
    r = max(1, int(math.ceil(2.0 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _central_grad(x: torch.Tensor):
    """Central differences with replicated borders; (B, 1, H, W) -> (gx, gy)."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    gx = 0.5 * (p[..., 1:-1, 2:] - p[..., 1:-1, :-2])
    gy = 0.5 * (p[..., 2:, 1:-1] - p[..., :-2, 1:-1])
    return gx, gy


def _fwd_grad_into(u: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Forward differences of u (B, 2, H, W) into ``out`` (B, 2, 2, H, W): out[:, 0] = d/dx, out[:, 1] =
    d/dy. The last column of d/dx and last row of d/dy are never written, so a zeroed buffer keeps the
    Neumann boundary (zero derivative across the border) without re-zeroing every iteration."""
    torch.sub(u[..., :, 1:], u[..., :, :-1], out=out[:, 0, :, :, :-1])
    torch.sub(u[..., 1:, :], u[..., :-1, :], out=out[:, 1, :, :-1, :])
    return out


def _div(p: torch.Tensor) -> torch.Tensor:
    """Backward-difference divergence of the dual field p (B, 2, 2, H, W), the negative adjoint of
    :func:`_fwd_grad_into`. Relies on p's last column (x part) and last row (y part) being zero, which
    holds because p is only ever updated from :func:`_fwd_grad_into` outputs."""
    px, py = p[:, 0], p[:, 1]
    d = px + py
    d[..., :, 1:] -= px[..., :, :-1]
    d[..., 1:, :] -= py[..., :-1, :]
    return d


def _resize(x: torch.Tensor, size) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def _resize_flow(flow: torch.Tensor, size) -> torch.Tensor:
    """Resample a flow field to ``size`` and rescale its vectors (pixel pitch changes with size)."""
    h, w = flow.shape[-2:]
    out = _resize(flow, size)
    sx = (size[1] - 1) / max(w - 1, 1)
    sy = (size[0] - 1) / max(h - 1, 1)
    return torch.cat((out[:, :1] * sx, out[:, 1:] * sy), dim=1)


def _tvl1_level(i0: torch.Tensor, i1: torch.Tensor, u: torch.Tensor, warps: int, iterations: int,
                lam: float, theta: float, tau: float) -> torch.Tensor:
    """Refine flow ``u`` (B, 2, H, W) at one pyramid level (in-place arithmetic: this is the hot loop)."""
    lt = lam * theta
    ts = tau / theta
    grad1 = torch.cat(_central_grad(i1), dim=1)                           # (B, 2, H, W)
    stack = torch.cat((i1, grad1), dim=1)
    b, _, h, w = u.shape
    p = u.new_zeros(b, 2, 2, h, w)                                        # dual: (d/dx, d/dy) x (u1, u2)
    du = u.new_zeros(b, 2, 2, h, w)
    for _ in range(warps):
        wp = warp(stack, u)
        i1w, g = wp[:, :1], wp[:, 1:].contiguous()                        # warped image, its gradient
        neg_inv_g2 = (g * g).sum(dim=1, keepdim=True).clamp_min_(1e-6).reciprocal_().neg_()
        rho_c = i1w - (g * u).sum(dim=1, keepdim=True) - i0
        g_x, g_y = g[:, :1], g[:, 1:]
        for _ in range(iterations):
            # Pointwise minimiser of lambda|rho(v)| + |v - u|^2/(2 theta) along the image gradient:
            # the step -rho/|g|^2 clipped to +-lambda*theta (the three cases of the thresholding rule).
            rho = torch.addcmul(rho_c, g_x, u[:, :1]).addcmul_(g_y, u[:, 1:])
            step = rho.mul_(neg_inv_g2).clamp_(-lt, lt)
            u = torch.addcmul(u, step, g).add_(_div(p), alpha=theta)
            _fwd_grad_into(u, du)
            norm = (du * du).sum(dim=1).sqrt_().mul_(ts).add_(1.0)        # (B, 2, H, W)
            p.add_(du, alpha=ts).div_(norm[:, None])
    return u


def estimate_flow(frame0: torch.Tensor, frame1: torch.Tensor, levels: Optional[int] = None,
                  iterations: int = 20, warps: int = 4, lam: float = 0.15, theta: float = 0.3,
                  tau: float = 0.25, smooth: float = 0.8, scale: float = 1.0,
                  init: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Dense optical flow from ``frame0`` to ``frame1`` by coarse-to-fine TV-L1.

    Args:
        frame0, frame1: (B, C, H, W) float in [0, 1] (C = 3 uses luma, C = 1 as is), same shape/device.
        levels: pyramid levels (factor 2); None: as many as keep the coarsest side >= 16 px, at most 6.
        iterations: dual iterations per warp; warps: re-linearisations per level.
        lam: data weight on 0..255 intensities (0.15 as in IPOL; larger = less smoothing).
        theta, tau: coupling and dual time step (tau <= 0.25 for convergence).
        smooth: gaussian sigma applied to each pyramid level before differentiation.
        scale: compute at this fraction of the resolution (e.g. 0.5 for 1280x720 speed) and upsample.
        init: optional (B, 2, H, W) initial flow at full resolution.
    Returns:
        (B, 2, H, W) flow in pixels (dx, dy): ``frame1(p + flow(p)) ~= frame0(p)``.

    Example::

        flow = estimate_flow(f0, f1)            # f1 = f0 moved 2 px right -> flow ~ (2, 0)
        back = warp(f1, flow)                   # ~ f0
    """
    _check_pair(frame0, frame1, "estimate_flow")
    if not 0.0 < scale <= 1.0:
        raise UsageError(f"estimate_flow: scale must be in (0, 1], got {scale}")
    if iterations < 1 or warps < 1:
        raise UsageError(f"estimate_flow: iterations and warps must be >= 1, got {iterations}, {warps}")
    b, _, h, w = frame0.shape
    dtype = frame0.dtype if frame0.dtype in (torch.float32, torch.float64) else torch.float32
    i0 = _gray255(frame0.to(dtype))
    i1 = _gray255(frame1.to(dtype))
    work = (max(1, round(h * scale)), max(1, round(w * scale)))
    if levels is None:
        levels = 1
        while levels < 6 and min(work) / 2 ** levels >= 16:
            levels += 1
    if levels < 1:
        raise UsageError(f"estimate_flow: levels must be >= 1, got {levels}")
    sizes = [work]
    for _ in range(levels - 1):
        sizes.append((max(1, (sizes[-1][0] + 1) // 2), max(1, (sizes[-1][1] + 1) // 2)))
    # Pyramid: blur then resample, so coarse levels do not alias fine texture.
    pyr0, pyr1 = [], []
    a0, a1 = i0, i1
    for sz in sizes:
        factor = a0.shape[-1] / sz[1]
        if factor > 1.0:
            a0 = _resize(_blur(a0, 0.6 * factor), sz)
            a1 = _resize(_blur(a1, 0.6 * factor), sz)
        pyr0.append(_blur(a0, smooth))
        pyr1.append(_blur(a1, smooth))
    coarse = sizes[-1]
    if init is not None:
        if init.shape != (b, 2, h, w):
            raise UsageError(f"estimate_flow: init must be ({b}, 2, {h}, {w}), got {tuple(init.shape)}")
        u = _resize_flow(init.to(dtype), coarse)
    else:
        u = torch.zeros(b, 2, *coarse, dtype=dtype, device=frame0.device)
    for lvl in range(levels - 1, -1, -1):
        u = _resize_flow(u, sizes[lvl])
        u = _tvl1_level(pyr0[lvl], pyr1[lvl], u, warps, iterations, lam, theta, tau)
    return _resize_flow(u, (h, w)).to(frame0.dtype)


def _consistency(f_ab: torch.Tensor, f_ba: torch.Tensor) -> torch.Tensor:
    """1 where the forward flow is undone by the backward flow (visible), 0 where not (occluded).

    Test of Sundaram, Brox, Keutzer 2010: |F_ab + F_ba(p + F_ab)|^2 < 0.01 (|F_ab|^2 + |F_ba(.)|^2) + 0.5.
    """
    back = warp(f_ba, f_ab)
    err = ((f_ab + back) ** 2).sum(dim=1, keepdim=True)
    bound = 0.01 * ((f_ab ** 2).sum(dim=1, keepdim=True) + (back ** 2).sum(dim=1, keepdim=True)) + 0.5
    return (err < bound).to(f_ab.dtype)


def interpolate_frames(f0: torch.Tensor, f1: torch.Tensor, t_values: Sequence[float],
                       method: str = "flow", flow_scale: Optional[float] = None,
                       **flow_args) -> List[torch.Tensor]:
    """Frames between ``f0`` (t = 0) and ``f1`` (t = 1) for temporal upsampling (REDS-style synthesis).

    Args:
        f0, f1: (B, C, H, W) float in [0, 1].
        t_values: times in [0, 1].
        method: "flow" (warp both frames to t and blend, occlusion-aware) or "linear" (cross-fade).
        flow_scale: resolution fraction for the flow (see :func:`estimate_flow`); None: 1 up to 640 px
            on the longer side, less above (flow is smooth; this keeps 1280x720 well under seconds).
        flow_args: passed to :func:`estimate_flow`.
    Returns:
        list of (B, C, H, W) tensors, one per t, same dtype and device as ``f0``.

    Example::

        mids = interpolate_frames(f0, f1, [0.25, 0.5, 0.75])
    """
    _check_pair(f0, f1, "interpolate_frames")
    ts = [float(t) for t in t_values]
    if any(not 0.0 <= t <= 1.0 for t in ts):
        raise UsageError(f"interpolate_frames: times must be in [0, 1], got {ts}")
    if method == "linear":
        return [(1.0 - t) * f0 + t * f1 for t in ts]
    if method != "flow":
        raise UsageError(f"interpolate_frames: method must be 'flow' or 'linear', got {method!r}")
    b = f0.shape[0]
    if flow_scale is None:
        flow_scale = min(1.0, 640.0 / max(f0.shape[-2:]))
    # Both directions in one batch: the pyramid and iterations run once for 2B pairs.
    flows = estimate_flow(torch.cat((f0, f1)), torch.cat((f1, f0)), scale=flow_scale, **flow_args)
    f01, f10 = flows[:b], flows[b:]
    vis0 = _consistency(f01, f10)
    vis1 = _consistency(f10, f01)
    out = []
    for t in ts:
        ft0 = -(1.0 - t) * t * f01 + t * t * f10
        ft1 = (1.0 - t) ** 2 * f01 - t * (1.0 - t) * f10
        w0 = warp(torch.cat((f0, vis0), dim=1), ft0)
        w1 = warp(torch.cat((f1, vis1), dim=1), ft1)
        c = f0.shape[1]
        # Visibility floors at 0.05 so pixels occluded in both frames still get the plain (1-t, t) blend.
        a0 = (1.0 - t) * (w0[:, c:] + 0.05)
        a1 = t * (w1[:, c:] + 0.05)
        out.append((a0 * w0[:, :c] + a1 * w1[:, :c]) / (a0 + a1))
    return out
