"""Non-blind deconvolution (blurtools.ops.deconv): gains with the true kernel, borders, shapes, devices."""

import math

import pytest
import torch

from blurtools.errors import UsageError
from blurtools.ops.deconv import fft_size, hqs_deconv, mirror_pad, prepare_kernel, richardson_lucy, wiener_deconv
from blurtools.ops.filters import fft_conv2d


def _motion_kernel(length=9.0, angle=30.0):
    """A straight motion kernel built independently of blurtools.infer.classical (dense samples, bilinear)."""
    size = 2 * math.ceil(length / 2) + 3
    c = (size - 1) / 2
    k = torch.zeros(size, size, dtype=torch.float64)
    for t in torch.linspace(-length / 2, length / 2, 401, dtype=torch.float64):
        x, y = c + t * math.cos(math.radians(angle)), c - t * math.sin(math.radians(angle))
        x0, y0 = int(math.floor(x)), int(math.floor(y))
        fx, fy = x - x0, y - y0
        k[y0, x0] += (1 - fx) * (1 - fy)
        k[y0, x0 + 1] += fx * (1 - fy)
        k[y0 + 1, x0] += (1 - fx) * fy
        k[y0 + 1, x0 + 1] += fx * fy
    return (k / k.sum()).float()


def _scene(size=160, seed=0):
    """skimage's camera when available, else a synthetic texture; (1, 1, size+pad, size+pad) in [0, 1]."""
    n = size + 24
    try:
        from skimage.data import camera

        img = torch.from_numpy(camera()).float()[None, None] / 255
        return img[..., 100:100 + n, 180:180 + n].contiguous()
    except Exception:  # pragma: no cover - skimage is a dev dependency
        g = torch.Generator().manual_seed(seed)
        img = torch.rand(1, 1, n // 8, n // 8, generator=g)
        return torch.nn.functional.interpolate(img, size=(n, n), mode="bicubic").clamp(0, 1)


def _blurred(kernel, noise=0.003, seed=0):
    """Physically blurred (valid convolution of a larger scene), noisy, 8-bit quantised; and its truth."""
    img = _scene()
    y = fft_conv2d(img, kernel, mode="valid")
    p = (kernel.shape[0] - 1) // 2
    gt = img[..., p:p + y.shape[-2], p:p + y.shape[-1]]
    g = torch.Generator().manual_seed(seed)
    y = ((y + noise * torch.randn(y.shape, generator=g)).clamp(0, 1) * 255).round() / 255
    return y, gt


def _psnr(a, b):
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


def _border_psnr(a, b, w=10):
    m = torch.ones_like(a, dtype=torch.bool)
    m[..., w:-w, w:-w] = False
    return float(10 * torch.log10(1 / ((a - b)[m] ** 2).mean()))


METHODS = {
    "wiener": lambda y, k: wiener_deconv(y, k, nsr=5e-3),
    "wiener_flat": lambda y, k: wiener_deconv(y, k, nsr=1e-2, prior="flat"),
    "rl": lambda y, k: richardson_lucy(y, k, iterations=30),
    "rl_tv": lambda y, k: richardson_lucy(y, k, iterations=30, tv=2e-3),
    "hqs": lambda y, k: hqs_deconv(y, k, lam=5e-4),
}


@pytest.fixture(scope="module")
def case():
    k = _motion_kernel(9, 30)
    y, gt = _blurred(k)
    return y, gt, k


@pytest.mark.parametrize("name", sorted(METHODS))
def test_true_kernel_raises_psnr_without_border_ringing(case, name):
    y, gt, k = case
    x = METHODS[name](y, k)
    assert x.shape == y.shape and x.dtype == y.dtype
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    gain = _psnr(x, gt) - _psnr(y, gt)
    assert gain > 2.0, f"{name}: only {gain:.2f} dB over the blurry input"
    # the frame is where a circular model rings; it must not be worse there than the blurry input
    assert _border_psnr(x, gt) >= _border_psnr(y, gt), name


def test_hqs_is_the_strongest(case):
    y, gt, k = case
    assert _psnr(hqs_deconv(y, k, lam=5e-4), gt) > _psnr(wiener_deconv(y, k), gt)


def test_kernel_forms_and_batch_match_single_images():
    k1, k2 = _motion_kernel(7, 0), _motion_kernel(11, 100)
    y1, _ = _blurred(k1)
    y2, _ = _blurred(k2)
    y1 = y1[..., :y2.shape[-2], :y2.shape[-1]]
    y = torch.cat([y1, y2])
    n = k2.shape[0]
    k1p = torch.nn.functional.pad(k1, [(n - k1.shape[0]) // 2] * 4)
    kb = torch.stack([k1p, k2])[:, None]
    for fn in (wiener_deconv, hqs_deconv, lambda a, b: richardson_lucy(a, b, iterations=5)):
        both = fn(y, kb)
        assert torch.allclose(both[0:1], fn(y1, k1p), atol=1e-4)
        assert torch.allclose(both[1:2], fn(y2, k2), atol=1e-4)
        # zero taps around a kernel only change the work domain: the interior stays the same
        assert torch.allclose(fn(y1, k1p)[..., 24:-24, 24:-24], fn(y1, k1)[..., 24:-24, 24:-24], atol=3e-3)
    # an unnormalised kernel is normalised; a shared (kh, kw) kernel broadcasts over the batch and channels
    rgb = y1.expand(2, 3, -1, -1)
    assert torch.allclose(wiener_deconv(rgb, 5 * k1), wiener_deconv(y1, k1).expand(2, 3, -1, -1), atol=1e-5)


def test_identity_and_alignment_with_fft_conv2d():
    img = _scene()[..., :64, :80]
    delta = torch.zeros(3, 3)
    delta[1, 1] = 1
    assert torch.allclose(wiener_deconv(img, delta, nsr=1e-9, prior="flat"), img, atol=1e-5)
    # an even, off-centre kernel: deconvolution must undo exactly the shift fft_conv2d applies
    k = torch.zeros(4, 4)
    k[2, 3] = 1.0
    y = fft_conv2d(img, k, mode="valid")
    x = wiener_deconv(y, k, nsr=1e-9, prior="flat", refill=0)
    # a 'valid' output starts kh // 2 pixels into the input when the centre is at (kh - 1) // 2
    ref = img[..., 2:2 + y.shape[-2], 2:2 + y.shape[-1]]
    assert torch.allclose(x[..., 4:-4, 4:-4], ref[..., 4:-4, 4:-4], atol=1e-4)


def test_helpers():
    assert fft_size(97) == 100 and fft_size(1) == 1 and fft_size(128) == 128
    x = torch.arange(4.0).view(1, 1, 1, 4)
    assert mirror_pad(x, 0, 0, 5, 5).flatten().tolist() == [1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2]


def test_bad_input_is_a_usage_error():
    k = torch.ones(3, 3)
    with pytest.raises(UsageError, match="B, C, H, W"):
        wiener_deconv(torch.rand(8, 8), k)
    with pytest.raises(UsageError, match="positive sum"):
        hqs_deconv(torch.rand(1, 1, 8, 8), torch.zeros(3, 3))
    with pytest.raises(UsageError, match="kernel"):
        richardson_lucy(torch.rand(2, 1, 8, 8), torch.ones(3, 1, 3, 3))
    with pytest.raises(UsageError, match="prior"):
        wiener_deconv(torch.rand(1, 1, 8, 8), k, prior="laplace")
    with pytest.raises(UsageError, match="float"):
        wiener_deconv(torch.zeros(1, 1, 8, 8, dtype=torch.uint8), k)
    with pytest.raises(UsageError, match="kernel"):
        prepare_kernel(torch.ones(2, 2, 3, 3), 2, torch.zeros(1))


def test_half_precision_input_keeps_its_dtype():
    y = torch.rand(1, 1, 24, 24).half()
    out = wiener_deconv(y, torch.ones(1, 3) / 3)
    assert out.dtype == torch.float16 and out.shape == y.shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(case):
    y, _, k = case
    for name, fn in METHODS.items():
        cpu = fn(y, k)
        gpu = fn(y.cuda(), k.cuda())
        assert gpu.is_cuda
        assert torch.allclose(gpu.cpu(), cpu, atol=2e-3), name
