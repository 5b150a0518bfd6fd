"""Random camera-shake trajectories and the blur kernels they draw.

After Boracchi and Foi, "Modeling the performance of image restoration from motion blur", IEEE TIP 2012,
as used by DeblurGAN (Kupyn et al. 2018) to make blurry training images. A particle starts at the origin
with a random direction and moves at constant speed (path length ``max_len`` px over ``n_steps`` steps);
at each step its velocity is perturbed by gaussian shake, pulled back toward the origin (centripetal
inertia), and with a small probability it makes a big, nearly reversing jerk. Per trajectory:
``centripetal = 0.7 U``, ``p_big = 0.2 U``, ``gaussian_shake = 10 U`` (U uniform on [0, 1]); ``expl``
(anisotropy/"exploration", 0.001..0.01) scales the perturbations.

Coordinates are pixels, ``(x, y)`` with x to the right and y down. Time runs over the exposure [0, 1],
sample ``t`` of a (T, 2) trajectory being at time ``t / (T - 1)``. A kernel puts the mass of position
``s`` at pixel ``(c + s_y, c + s_x)``, ``c = (size - 1) // 2`` (the centre tap of
:func:`blurtools.ops.filters.fft_conv2d`): the frame at time t is the scene shifted by
``s(t)``, so the blurred image is the scene *convolved* with the kernel, and
``warp.shift(img, s_x, s_y)`` makes the matching sharp frame.
"""

from __future__ import annotations

import cmath
import math
from typing import Optional, Sequence, Union

import numpy as np
import torch

from blurtools.errors import UsageError

RngLike = Union[None, int, np.random.Generator, torch.Generator]

CENTERS = ("centroid", "middle", "box", "start")


def as_numpy_rng(rng: RngLike) -> np.random.Generator:
    """A numpy Generator from None (fresh entropy), an int seed, a numpy or a torch Generator.

    A torch Generator is advanced by one draw, so successive calls give different trajectories.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, torch.Generator):
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=rng).item())
        return np.random.default_rng(seed)
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise UsageError(f"random generator: expected None, an int seed, a numpy or torch Generator, got {rng!r}")


def random_trajectory(rng: RngLike = None, canvas: int = 64, max_len: float = 60.0,
                      expl: Optional[float] = None, n_steps: int = 2000,
                      center: str = "centroid") -> torch.Tensor:
    """One random camera-shake trajectory.

    Args:
        rng: seed or generator (see :func:`as_numpy_rng`); the same seed gives the same trajectory.
        canvas: side of the square (px) the trajectory must fit into; ``max_len <= canvas - 2``.
        max_len: path length in pixels (the particle's constant speed times the exposure), up to 60.
        expl: exploration/anisotropy; None draws it uniformly from [0.001, 0.01].
        n_steps: number of positions T (>= 2).
        center: which point becomes the origin: "centroid" (mean position over the exposure, so the
            blurred image is not displaced on average), "middle" (position at mid-exposure, so the middle
            sharp frame is the unshifted still), "box" (bounding-box centre) or "start".
    Returns:
        (T, 2) float64 tensor of (x, y) positions in pixels, in time order.

    Example::

        traj = random_trajectory(0, max_len=30)
        kernels = trajectory_kernels(traj, k=7)          # (7, 33, 33)
    """
    if n_steps < 2:
        raise UsageError(f"random_trajectory: n_steps must be >= 2, got {n_steps}")
    if not 0 < max_len <= canvas - 2:
        raise UsageError(f"random_trajectory: max_len must be in (0, canvas - 2 = {canvas - 2}], got {max_len}")
    if center not in CENTERS:
        raise UsageError(f"random_trajectory: center must be one of {CENTERS}, got {center!r}")
    g = as_numpy_rng(rng)
    if expl is None:
        expl = float(g.uniform(0.001, 0.01))
    centripetal = 0.7 * g.uniform()
    prob_big = 0.2 * g.uniform()
    shake = 10.0 * g.uniform()
    step = max_len / (n_steps - 1)
    v = cmath.exp(1j * 2.0 * math.pi * g.uniform()) * step
    # Draw every random number up front: the loop is then plain complex arithmetic (a few ms).
    u_big = g.uniform(size=n_steps - 1)
    u_turn = g.uniform(size=n_steps - 1)
    noise = g.standard_normal(size=(n_steps - 1, 2))
    pos = np.zeros(n_steps, dtype=np.complex128)
    x = 0j
    for t in range(n_steps - 1):
        # A big shake: a jerk of twice the current velocity, roughly backwards (pi +- 0.5 rad).
        jerk = 2.0 * v * cmath.exp(1j * (math.pi + u_turn[t] - 0.5)) if u_big[t] < prob_big * expl else 0j
        dv = jerk + expl * (shake * complex(noise[t, 0], noise[t, 1]) - centripetal * x) * step
        v = v + dv
        mag = abs(v)
        v = v / mag * step if mag > 0 else cmath.exp(1j * 2.0 * math.pi * u_turn[t]) * step
        x = x + v
        pos[t + 1] = x
    traj = torch.from_numpy(np.stack((pos.real, pos.imag), axis=1))
    return center_trajectory(traj, center)


def center_trajectory(traj: torch.Tensor, center: str = "centroid") -> torch.Tensor:
    """Translate a (T, 2) trajectory so the chosen point (see :func:`random_trajectory`) is the origin."""
    _check_traj(traj)
    if center == "centroid":
        origin = traj.mean(dim=0)
    elif center == "middle":
        origin = _interp(traj, torch.tensor([0.5], dtype=traj.dtype))[0]
    elif center == "box":
        origin = (traj.amin(dim=0) + traj.amax(dim=0)) / 2.0
    elif center == "start":
        origin = traj[0]
    else:
        raise UsageError(f"center_trajectory: center must be one of {CENTERS}, got {center!r}")
    return traj - origin


def _check_traj(traj: torch.Tensor) -> None:
    if not isinstance(traj, torch.Tensor) or traj.ndim != 2 or traj.shape[1] != 2 or traj.shape[0] < 2:
        shape = tuple(traj.shape) if isinstance(traj, torch.Tensor) else type(traj).__name__
        raise UsageError(f"trajectory: expected a (T, 2) tensor of (x, y) positions with T >= 2, got {shape}")


def _interp(traj: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """Positions at ``times`` in [0, 1] by linear interpolation between samples; (N,) -> (N, 2)."""
    t_count = traj.shape[0]
    u = times.to(traj.dtype).clamp(0.0, 1.0) * (t_count - 1)
    i0 = u.floor().long().clamp(max=t_count - 2)
    frac = (u - i0.to(u.dtype))[:, None]
    return traj[i0] * (1.0 - frac) + traj[i0 + 1] * frac


def trajectory_offsets(traj: torch.Tensor, k: int) -> torch.Tensor:
    """Positions at the middle of K equal sub-exposures, times ``(i + 1/2) / K``.

    Shifting a still by these offsets (``warp.shift(img, off[i, 0], off[i, 1])``) gives the sharp frames
    whose mean is the still blurred by ``trajectory_kernels(traj, K).mean(0)``.

    Args:
        traj: (T, 2) float (x, y) positions in pixels.
        k: number of sub-frames (>= 1).
    Returns:
        (K, 2) tensor (dx, dy), same dtype as ``traj``.
    """
    _check_traj(traj)
    if k < 1:
        raise UsageError(f"trajectory_offsets: K must be >= 1, got {k}")
    times = (torch.arange(k, dtype=torch.float64) + 0.5) / k
    return _interp(traj, times)


def kernel_size_for(traj: torch.Tensor, margin: int = 2) -> int:
    """Smallest odd side whose centred square holds the trajectory plus ``margin`` px (bilinear support)."""
    _check_traj(traj)
    reach = float(traj.abs().max())
    return 2 * (int(math.ceil(reach)) + margin) + 1


def splat_kernel(points: torch.Tensor, size: int, weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Bilinear splatting of (N, 2) (x, y) points onto a (size, size) grid centred at ``(size - 1) // 2``.

    Returns a kernel summing to 1 (weights, if given, are normalised). Raises UsageError when a point
    falls outside the grid, rather than silently losing its mass.
    """
    c = (size - 1) // 2
    px = points[:, 0] + c
    py = points[:, 1] + c
    x0 = px.floor()
    y0 = py.floor()
    if bool((x0 < 0).any() or (y0 < 0).any() or (x0 + 1 > size - 1).any() or (y0 + 1 > size - 1).any()):
        raise UsageError(f"trajectory does not fit a {size}x{size} kernel "
                         f"(reach {float(points.abs().max()):.1f} px); use a larger size")
    fx = px - x0
    fy = py - y0
    w = torch.ones_like(px) if weights is None else weights.to(px.dtype)
    w = w / w.sum()
    x0 = x0.long()
    y0 = y0.long()
    ker = torch.zeros(size * size, dtype=points.dtype, device=points.device)
    for dy, dx, wt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                       (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        ker.index_add_(0, (y0 + dy) * size + (x0 + dx), w * wt)
    return ker.reshape(size, size)


def trajectory_kernels(traj: torch.Tensor, k: int = 1, size: Optional[int] = None,
                       samples_per_frame: int = 32, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Blur kernels of K equal consecutive sub-exposures along a trajectory.

    Each sub-exposure is sampled at ``samples_per_frame`` equally spaced instants (the midpoints of
    equal time steps, interpolated linearly along the path) and bilinearly splatted, so the mean of the
    K kernels is exactly the full-exposure kernel sampled the same way. ``samples_per_frame=1`` gives the
    kernels of :func:`trajectory_offsets` (one bilinear splat each).

    Args:
        traj: (T, 2) (x, y) positions in pixels.
        k: number of sub-exposures (K = 1: the whole exposure).
        size: kernel side (odd recommended; centre pixel ``(size - 1) // 2``); None: :func:`kernel_size_for`.
    Returns:
        (K, size, size) tensor of ``dtype``, each kernel non-negative and summing to 1.
    """
    _check_traj(traj)
    if k < 1 or samples_per_frame < 1:
        raise UsageError(f"trajectory_kernels: K and samples_per_frame must be >= 1, got {k}, {samples_per_frame}")
    size = kernel_size_for(traj) if size is None else int(size)
    n = k * samples_per_frame
    times = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    pts = _interp(traj.to(torch.float64), times).reshape(k, samples_per_frame, 2)
    return torch.stack([splat_kernel(p, size) for p in pts]).to(dtype)


def exposure_kernels(traj: torch.Tensor, fractions: Sequence[float] = (0.001, 0.1, 0.5, 1.0),
                     size: Optional[int] = None, samples: int = 512,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Kernels for exposures covering the first ``fraction`` of the trajectory (DeblurGAN's 1/1000,
    1/10, 1/2, 1): short exposures give short, nearly sharp kernels.

    Returns:
        (len(fractions), size, size) tensor, each kernel summing to 1.
    """
    _check_traj(traj)
    size = kernel_size_for(traj) if size is None else int(size)
    out = []
    for f in fractions:
        if not 0.0 < float(f) <= 1.0:
            raise UsageError(f"exposure_kernels: fractions must be in (0, 1], got {f}")
        times = (torch.arange(samples, dtype=torch.float64) + 0.5) / samples * float(f)
        out.append(splat_kernel(_interp(traj.to(torch.float64), times), size))
    return torch.stack(out).to(dtype)
