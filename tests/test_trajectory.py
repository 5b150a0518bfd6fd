"""Camera-shake trajectories and their kernels (blurtools.ops.trajectory)."""

import numpy as np
import pytest
import torch

from blurtools.errors import UsageError
from blurtools.ops.filters import fft_conv2d
from blurtools.ops.trajectory import (center_trajectory, exposure_kernels, kernel_size_for,
                                      random_trajectory, trajectory_kernels, trajectory_offsets)
from blurtools.ops.warp import shift


def _smooth_image(h=64, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h // 4, w // 4, generator=g, dtype=torch.float64)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=True).clamp(0, 1)


def test_seeded_and_shaped():
    a = random_trajectory(3, max_len=30)
    b = random_trajectory(np.random.default_rng(3), max_len=30)
    c = random_trajectory(4, max_len=30)
    assert a.shape == (2000, 2) and a.dtype == torch.float64
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(random_trajectory(g1, n_steps=300), random_trajectory(g2, n_steps=300))


def test_length_and_centring():
    traj = random_trajectory(1, max_len=40, n_steps=500)
    steps = (traj[1:] - traj[:-1]).norm(dim=1)
    assert torch.allclose(steps, torch.full_like(steps, 40 / 499), rtol=1e-9)   # constant speed
    assert torch.allclose(traj.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-9)
    start = random_trajectory(1, max_len=40, n_steps=500, center="start")
    assert torch.equal(start[0], torch.zeros(2, dtype=torch.float64))
    mid = center_trajectory(start, "middle")
    assert torch.allclose(trajectory_offsets(mid, 1)[0], torch.zeros(2, dtype=torch.float64), atol=1e-12)
    # All the trajectories of a seed sweep fit the canvas.
    for s in range(20):
        t = random_trajectory(s, canvas=64, max_len=60)
        extent = t.amax(0) - t.amin(0)
        assert float(extent.max()) <= 62


def test_kernels_sum_to_one_and_split_the_exposure():
    traj = random_trajectory(2, max_len=25, n_steps=800)
    ks = trajectory_kernels(traj, k=7, samples_per_frame=16, dtype=torch.float64)
    assert ks.shape[0] == 7 and ks.shape[1] == ks.shape[2] == kernel_size_for(traj)
    assert torch.allclose(ks.sum(dim=(-2, -1)), torch.ones(7, dtype=torch.float64), atol=1e-12)
    assert bool((ks >= 0).all())
    full = trajectory_kernels(traj, k=1, samples_per_frame=7 * 16, dtype=torch.float64)[0]
    assert torch.allclose(ks.mean(0), full, atol=1e-12)
    # The kernel's centre of mass is the mean position: mass of position s sits at centre + s.
    size = full.shape[-1]
    c = (size - 1) // 2
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                            indexing="ij")
    mean_pos = trajectory_offsets(traj, 7 * 16).mean(0)
    assert float((full * xx).sum()) == pytest.approx(c + float(mean_pos[0]), abs=1e-9)
    assert float((full * yy).sum()) == pytest.approx(c + float(mean_pos[1]), abs=1e-9)


def test_shifted_frames_average_to_kernel_blur():
    """The sharp sequence made by moving a still along the path averages to the kernel-blurred still."""
    img = _smooth_image()
    traj = random_trajectory(5, max_len=12, n_steps=600)
    k = 9
    off = trajectory_offsets(traj, k)
    frames = shift(img.expand(k, -1, -1, -1), off[:, 0], off[:, 1])
    mean = frames.mean(0, keepdim=True)
    m = 10                                                   # away from borders
    # Exact: the kernel of the same K instants (one bilinear splat each) ...
    exact = fft_conv2d(img, trajectory_kernels(traj, k, samples_per_frame=1, dtype=torch.float64).mean(0))
    assert (mean - exact)[..., m:-m, m:-m].abs().max() < 1e-6
    # ... and close to the continuous full-exposure kernel.
    full = fft_conv2d(img, trajectory_kernels(traj, 1, samples_per_frame=256, dtype=torch.float64)[0])
    assert (mean - full)[..., m:-m, m:-m].abs().max() < 0.02
    assert (mean - img)[..., m:-m, m:-m].abs().max() > 0.05  # and it really is blurred


def test_exposure_kernels_grow():
    traj = random_trajectory(8, max_len=30, n_steps=1000, center="start")
    ks = exposure_kernels(traj, (0.001, 0.1, 0.5, 1.0), dtype=torch.float64)
    assert torch.allclose(ks.sum(dim=(-2, -1)), torch.ones(4, dtype=torch.float64))
    spread = [(k > 1e-4).sum().item() for k in ks]
    assert spread[0] <= 4 and spread == sorted(spread) and spread[-1] > spread[1]


def test_errors():
    traj = random_trajectory(0, max_len=20, n_steps=100)
    with pytest.raises(UsageError, match="fit"):
        trajectory_kernels(traj, 1, size=5)
    with pytest.raises(UsageError):
        random_trajectory(0, canvas=32, max_len=60)
    with pytest.raises(UsageError):
        trajectory_offsets(torch.zeros(5, 3), 2)
    with pytest.raises(UsageError):
        random_trajectory("seed")
