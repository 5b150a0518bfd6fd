"""The classical method (blurtools.infer.classical): blind kernels, deblurring, the video along the path."""

import math

import pytest
import torch

from blurtools.errors import BlurtoolsError, UsageError
from blurtools.infer.classical import (classical_deblur, classical_video, estimate_kernel, estimate_linear,
                                       kernel_from_image, kernel_path, kernel_to_image, linear_motion_kernel,
                                       read_kernel, write_kernel)
from blurtools.ops.filters import fft_conv2d


def _scene(name="camera", size=192):
    from skimage import data

    a = torch.from_numpy(getattr(data, name)()).float() / 255
    img = a[None, None] if a.dim() == 2 else a[..., :3].permute(2, 0, 1)[None]
    H, W = img.shape[-2:]
    n = size + 40
    t, l = (H - n) // 2, (W - n) // 2
    return img[..., t:t + n, l:l + n].contiguous()


def _blurred(kernel, name="camera", noise=0.003, seed=0):
    """Valid convolution of a larger scene (real borders), noise, 8-bit; and the aligned ground truth."""
    img = _scene(name)
    y = fft_conv2d(img, kernel, mode="valid")
    p = kernel.shape[-1] // 2
    gt = img[..., p:p + y.shape[-2], p:p + y.shape[-1]]
    g = torch.Generator().manual_seed(seed)
    y = ((y + noise * torch.randn(y.shape, generator=g)).clamp(0, 1) * 255).round() / 255
    return y, gt


def _psnr(a, b):
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


def _angle_error(a, b):
    return abs((a - b + 90) % 180 - 90)


def test_linear_motion_kernel_geometry():
    k = linear_motion_kernel(9, 30)
    assert k.shape == (13, 13) and abs(float(k.sum()) - 1) < 1e-6 and float(k.min()) >= 0
    assert torch.allclose(k, k.flip(0, 1), atol=1e-6)          # symmetric about the centre tap
    c = 6
    assert float(k[c - 2, c + 3]) > 0 and float(k[c + 2, c + 3]) == 0   # 30 degrees rises to the right
    h = linear_motion_kernel(7, 0)
    assert float(h.sum(1)[h.shape[0] // 2]) > 0.99                  # all on the middle row
    v = linear_motion_kernel(7, 90)
    assert float(v.sum(0)[v.shape[1] // 2]) > 0.99                  # all on the middle column
    assert float(linear_motion_kernel(0, 45).max()) == 1.0           # no motion: a delta


@pytest.mark.parametrize("name,length,angle", [("camera", 9, 30), ("astronaut", 15, 120)])
def test_estimate_linear_recovers_length_and_angle(name, length, angle):
    y, _ = _blurred(linear_motion_kernel(length, angle), name)
    L, a, conf = estimate_linear(y)
    assert abs(L - length) <= 2, (L, a)
    assert _angle_error(a, angle) <= 10, (L, a)
    assert conf > 15                                                # a clear straight blur


def test_blind_deblur_beats_the_blurry_input():
    y, gt = _blurred(linear_motion_kernel(9, 30))
    k = estimate_kernel(y, method="linear")
    assert k.dim() == 2 and k.shape[0] % 2 == 1 and abs(float(k.sum()) - 1) < 1e-5 and float(k.min()) >= 0
    blind = classical_deblur(y)                                     # linear kernel, hqs
    assert blind.shape == y.shape and float(blind.min()) >= 0 and float(blind.max()) <= 1
    assert _psnr(blind, gt) > _psnr(y, gt) + 3.0
    for deconv in ("wiener", "rl"):
        assert _psnr(classical_deblur(y, kernel=k, deconv=deconv, strength=None), gt) > _psnr(y, gt) + 1.5


def test_non_blind_with_the_true_kernel_and_a_batch():
    k = linear_motion_kernel(11, 75)
    y, gt = _blurred(k, "astronaut")
    x = classical_deblur(torch.cat([y, y]), kernel=k)
    assert x.shape == (2, 3) + y.shape[-2:]
    assert torch.allclose(x[0], x[1])
    assert _psnr(x[:1], gt) > _psnr(y, gt) + 4.0


def test_multiscale_refines_a_curved_kernel():
    # an L-shaped path: no straight kernel explains it
    k = torch.zeros(15, 15)
    k[7, 3:11] = 1
    k[3:8, 10] = 1
    k /= k.sum()
    y, gt = _blurred(k, noise=0.002)
    km = estimate_kernel(y, max_size=31, method="multiscale")
    assert abs(float(km.sum()) - 1) < 1e-5 and float(km.min()) >= 0 and km.shape[0] % 2 == 1
    base = _psnr(y, gt)
    assert _psnr(classical_deblur(y, kernel=km), gt) > base + 1.0


def test_kernel_path_of_a_straight_kernel():
    k = linear_motion_kernel(12, 0)
    p = kernel_path(k, 7)
    assert p.shape == (7, 2)
    expected = torch.tensor([((i + 0.5) / 7 - 0.5) * 12 for i in range(7)])
    assert torch.allclose(p[:, 0], expected, atol=0.35)
    assert torch.allclose(p[:, 1], torch.zeros(7), atol=1e-6)
    assert float(p[3].abs().max()) < 1e-6                            # the middle frame does not move
    d = kernel_path(linear_motion_kernel(10, 60), 5)
    step = d[1:] - d[:-1]
    ang = math.degrees(math.atan2(-float(step[:, 1].mean()), float(step[:, 0].mean())))
    assert _angle_error(ang, 60) < 3


def test_classical_video_moves_along_the_path_and_reblurs():
    k = linear_motion_kernel(9, 30)
    y, _ = _blurred(k)
    video = classical_video(y, frames=7, kernel=k)
    assert video.shape == (1, 7) + y.shape[1:]
    sharp = classical_deblur(y, kernel=k)
    assert torch.allclose(video[:, 3], sharp, atol=1e-5)              # the middle frame is the deblurred one
    assert _psnr(video.mean(1), y) > 30                               # the frames' mean re-blurs to the input
    assert not torch.allclose(video[:, 0], video[:, 6])
    # blind, batched, other counts
    v = classical_video(torch.cat([y, y]), frames=3)
    assert v.shape == (2, 3) + y.shape[1:] and float(v.min()) >= 0 and float(v.max()) <= 1
    assert classical_video(y, frames=1, kernel=k).shape == (1, 1) + y.shape[1:]


def test_kernel_images_round_trip(tmp_path):
    k = linear_motion_kernel(9, 30)
    img = kernel_to_image(k)
    assert img.shape == (1, 13, 13) and float(img.max()) == 1.0
    assert torch.allclose(kernel_from_image(img), k, atol=1e-6)
    assert torch.allclose(kernel_from_image(img.expand(3, -1, -1)), k, atol=1e-6)   # colour -> mean
    path = tmp_path / "k.png"
    write_kernel(path, k)
    assert torch.allclose(read_kernel(path), k, atol=1e-4)
    with pytest.raises(BlurtoolsError, match="black"):
        kernel_from_image(torch.zeros(1, 5, 5))


def test_linear_light_option():
    # a blur that happened in linear light is inverted best in linear light
    from blurtools.ops.crf import from_linear, to_linear

    k = linear_motion_kernel(9, 0)
    img = _scene()
    y = from_linear(fft_conv2d(to_linear(img, "gamma"), k, mode="valid"), "gamma")
    p = k.shape[-1] // 2
    gt = img[..., p:p + y.shape[-2], p:p + y.shape[-1]]
    lin = classical_deblur(y, kernel=k, crf="gamma")
    disp = classical_deblur(y, kernel=k)
    assert lin.shape == y.shape and float(lin.min()) >= 0 and float(lin.max()) <= 1
    assert _psnr(lin, gt) > _psnr(disp, gt) + 0.5 and _psnr(lin, gt) > _psnr(y, gt) + 3


def test_bad_requests():
    y = torch.rand(1, 3, 64, 64)
    with pytest.raises(UsageError, match="method"):
        estimate_kernel(y, method="magic")
    with pytest.raises(UsageError, match="deconv"):
        classical_deblur(y, kernel=torch.ones(3, 3), deconv="fourier")
    with pytest.raises(UsageError, match="one image"):
        estimate_kernel(torch.rand(2, 3, 64, 64))
    with pytest.raises(BlurtoolsError, match="too small"):
        classical_deblur(torch.rand(1, 3, 8, 8))
    with pytest.raises(UsageError, match="frames"):
        classical_video(y, frames=0, kernel=torch.ones(3, 3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    k = linear_motion_kernel(9, 30)
    y, _ = _blurred(k)
    kc = estimate_kernel(y, method="linear")
    kg = estimate_kernel(y.cuda(), method="linear")
    assert kg.is_cuda and torch.allclose(kg.cpu(), kc, atol=1e-4)
    km = estimate_kernel(y.cuda(), method="multiscale")
    assert km.is_cuda and abs(float(km.sum()) - 1) < 1e-4
    xc = classical_video(y, frames=5, kernel=kc)
    xg = classical_video(y.cuda(), frames=5, kernel=kg)
    assert xg.is_cuda and torch.allclose(xg.cpu(), xc, atol=2e-3)
