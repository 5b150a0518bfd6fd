"""Warping (blurtools.ops.warp), optical flow and frame interpolation (blurtools.ops.flow)."""

import math

import pytest
import torch

from blurtools.errors import UsageError
from blurtools.ops.flow import estimate_flow, interpolate_frames
from blurtools.ops.warp import shift, warp


def _texture(h, w, dx=0.0, dy=0.0, sigma=2.5, seed=0):
    """A smooth periodic random texture moved by (dx, dy) px (exact sub-pixel shift in Fourier)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(1, 3, h, w, generator=g, dtype=torch.float64)
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(w, dtype=torch.float64)[None, :]
    spec = torch.fft.fft2(noise) * torch.exp(-2 * (math.pi * sigma) ** 2 * (fx ** 2 + fy ** 2))
    base = torch.fft.ifft2(spec).real
    moved = torch.fft.ifft2(spec * torch.exp(-2j * math.pi * (fx * dx + fy * dy))).real
    scale = 0.15 / base.std()
    return (moved * scale + 0.5).float()


def _psnr(a, b, m=8):
    mse = ((a - b)[..., m:-m, m:-m] ** 2).mean()
    return float(10 * torch.log10(1.0 / mse))


# ---- warp ------------------------------------------------------------------------------------------

def test_zero_flow_is_identity_and_integer_shift_is_exact():
    x = torch.rand(2, 3, 9, 13)
    assert torch.allclose(warp(x, torch.zeros(2, 2, 9, 13)), x, atol=1e-6)
    flow = torch.zeros(1, 2, 9, 13)
    flow[:, 0] = 2.0
    flow[:, 1] = -1.0
    out = warp(x, flow)                                      # out(y, x) = in(y - 1, x + 2)
    assert torch.allclose(out[:, :, 1:, :-2], x[:, :, :-1, 2:], atol=1e-6)
    moved = shift(x, 2.0, -1.0)                              # content 2 right, 1 up
    assert torch.allclose(moved[:, :, :-1, 2:], x[:, :, 1:, :-2], atol=1e-6)


def test_shift_per_image_and_subpixel():
    x = torch.zeros(2, 1, 5, 8, dtype=torch.float64)
    x[:, :, 2, 3] = 1.0
    out = shift(x, torch.tensor([0.25, 1.0]), torch.tensor([0.0, 0.5]))
    assert torch.allclose(out[0, 0, 2, 3:5], torch.tensor([0.75, 0.25], dtype=torch.float64))
    assert torch.allclose(out[1, 0, 2:4, 4], torch.tensor([0.5, 0.5], dtype=torch.float64))
    assert torch.allclose(out.sum(dim=(-2, -1)), torch.ones(2, 1, dtype=torch.float64))


def test_warp_shape_errors():
    with pytest.raises(UsageError):
        warp(torch.rand(1, 3, 8, 8), torch.zeros(1, 2, 8, 7))
    with pytest.raises(UsageError):
        warp(torch.rand(3, 8, 8), torch.zeros(1, 2, 8, 8))
    with pytest.raises(UsageError):
        shift(torch.rand(2, 1, 4, 4), [1.0, 2.0, 3.0], 0.0)


# ---- optical flow ----------------------------------------------------------------------------------

def test_flow_recovers_translation():
    f0 = _texture(64, 80)
    f1 = _texture(64, 80, dx=2.5, dy=-1.25)                  # content moved 2.5 right, 1.25 up
    flow = estimate_flow(f0, f1)
    assert flow.shape == (1, 2, 64, 80)
    inner = flow[..., 12:-12, 12:-12]
    assert (inner[:, 0] - 2.5).abs().max() < 0.2
    assert (inner[:, 1] + 1.25).abs().max() < 0.2
    # Direction convention: warping frame1 back by the flow gives frame0.
    assert _psnr(warp(f1, flow), f0, m=12) > 35


def test_flow_batched_and_bigger_motion():
    f0 = torch.cat((_texture(48, 64, seed=1), _texture(48, 64, seed=2)))
    f1 = torch.cat((_texture(48, 64, dx=-6.0, dy=3.0, seed=1), _texture(48, 64, dx=1.0, seed=2)))
    flow = estimate_flow(f0, f1)
    inner = flow[..., 10:-10, 10:-10]
    assert (inner[0, 0] + 6.0).abs().median() < 0.2 and (inner[0, 1] - 3.0).abs().median() < 0.2
    assert (inner[1, 0] - 1.0).abs().median() < 0.2 and inner[1, 1].abs().median() < 0.2
    with pytest.raises(UsageError):
        estimate_flow(f0, f1[:, :, :40])


def test_interpolated_middle_beats_linear_blend():
    f0 = _texture(64, 80, seed=3)
    f1 = _texture(64, 80, dx=3.0, dy=1.5, seed=3)
    truth = _texture(64, 80, dx=1.5, dy=0.75, seed=3)
    mid_flow, = interpolate_frames(f0, f1, [0.5])
    mid_lin, = interpolate_frames(f0, f1, [0.5], method="linear")
    assert _psnr(mid_flow, truth) > _psnr(mid_lin, truth) + 6
    ends = interpolate_frames(f0, f1, [0.0, 1.0])
    assert _psnr(ends[0], f0) > 40 and _psnr(ends[1], f1) > 40
    with pytest.raises(UsageError):
        interpolate_frames(f0, f1, [1.5])
    with pytest.raises(UsageError):
        interpolate_frames(f0, f1, [0.5], method="cubic")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_flow_on_cuda():
    f0 = _texture(48, 64).cuda()
    f1 = _texture(48, 64, dx=2.0).cuda()
    flow = estimate_flow(f0, f1)
    assert flow.is_cuda
    assert (flow[..., 10:-10, 10:-10][:, 0] - 2.0).abs().max() < 0.2
    mid, = interpolate_frames(f0, f1, [0.5])
    assert mid.is_cuda
