"""PSNR and SSIM against skimage (and an independent scipy MATLAB-3D SSIM), 8/16-bit, gray/RGB, odd sizes."""

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from blurtools.errors import UsageError
from blurtools.metrics.image import compute_image_metrics
from blurtools.metrics.psnr import psnr
from blurtools.metrics.ssim import ssim

TOL = 1e-5


def sk_ssim(a, b, data_range):
    axis = -1 if a.ndim == 3 else None
    return structural_similarity(
        a, b, channel_axis=axis, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        data_range=data_range,
    )


def to_tensor(arrays, peak):
    """uint8/uint16 HxW(x3) arrays -> float32 (B, C, H, W) in [0, 1], as an image reader decodes them."""
    ts = []
    for a in arrays:
        t = torch.from_numpy(a.astype(np.float32) / np.float32(peak))
        ts.append(t[None] if t.dim() == 2 else t.permute(2, 0, 1))
    return torch.stack(ts)


def random_pair(rng, shape, peak, dtype, noise):
    a = rng.integers(0, peak + 1, shape).astype(dtype)
    b = np.clip(a.astype(np.int64) + rng.integers(-noise, noise + 1, shape), 0, peak).astype(dtype)
    return a, b


def structured_pair(rng, shape, peak, dtype):
    """Smooth gradients, a sharp edge and a blurred copy with noise: SSIM far from 0 and 1."""
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 0.5 + 0.3 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + 0.2 * (xx > w / 2)
    if len(shape) == 3:
        base = np.stack([base, np.roll(base, 3, axis=1), base[::-1]], axis=-1)
    a = np.clip(base, 0, 1)
    b = np.clip(gaussian_filter(a, sigma=(1.2, 1.2, 0)[: a.ndim]) + rng.normal(0, 0.03, a.shape), 0, 1)
    return np.round(a * peak).astype(dtype), np.round(b * peak).astype(dtype)


CASES = [
    (8, (37, 53, 3)), (8, (37, 53)), (16, (37, 53, 3)), (16, (41, 29)), (8, (11, 11, 3)),
]


@pytest.mark.parametrize("bits,shape", CASES)
@pytest.mark.parametrize("kind", ["random", "structured"])
def test_psnr_ssim_match_skimage_on_integer_images(bits, shape, kind):
    rng = np.random.default_rng(bits * 1000 + len(shape))
    peak, dtype = (255, np.uint8) if bits == 8 else (65535, np.uint16)
    pairs = []
    for _ in range(3):
        if kind == "random":
            pairs.append(random_pair(rng, shape, peak, dtype, noise=peak // 8))
        else:
            pairs.append(structured_pair(rng, shape, peak, dtype))
    pred = to_tensor([p for p, _ in pairs], peak)
    gt = to_tensor([g for _, g in pairs], peak)
    got_s = ssim(pred, gt, data_range=peak)
    got_p = psnr(pred, gt, data_range=peak)
    assert got_s.shape == (3,) and got_s.dtype == torch.float64
    for i, (p, g) in enumerate(pairs):
        assert abs(got_s[i].item() - sk_ssim(p, g, peak)) < TOL
        assert abs(got_p[i].item() - peak_signal_noise_ratio(g, p, data_range=peak)) < TOL


def test_float_inputs_with_unit_range_match_skimage_float64():
    rng = np.random.default_rng(1)
    a = rng.random((37, 53, 3))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    pred = torch.from_numpy(a).permute(2, 0, 1)[None]
    gt = torch.from_numpy(b).permute(2, 0, 1)[None]
    assert abs(ssim(pred, gt).item() - sk_ssim(a, b, 1.0)) < TOL
    assert abs(psnr(pred, gt).item() - peak_signal_noise_ratio(b, a, data_range=1.0)) < TOL


def test_quantize_recovers_integers_and_can_be_switched_off():
    rng = np.random.default_rng(2)
    a = rng.random((1, 3, 20, 24))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    pred, gt = torch.from_numpy(a), torch.from_numpy(b)
    qa, qb = np.round(a * 255).astype(np.uint8), np.round(b * 255).astype(np.uint8)
    exp_q = peak_signal_noise_ratio(qb, qa, data_range=255)
    assert abs(psnr(pred, gt, data_range=255).item() - exp_q) < TOL
    exp_f = peak_signal_noise_ratio(b * 255, a * 255, data_range=255)
    assert abs(psnr(pred, gt, data_range=255, quantize=False).item() - exp_f) < TOL
    sk_f = sk_ssim((a * 255)[0].transpose(1, 2, 0), (b * 255)[0].transpose(1, 2, 0), 255)
    assert abs(ssim(pred, gt, data_range=255, quantize=False).item() - sk_f) < TOL


def test_crop_border_equals_skimage_on_cropped_arrays():
    rng = np.random.default_rng(3)
    a, b = structured_pair(rng, (45, 51, 3), 255, np.uint8)
    pred, gt = to_tensor([a], 255), to_tensor([b], 255)
    c = 4
    ac, bc = a[c:-c, c:-c], b[c:-c, c:-c]
    assert abs(ssim(pred, gt, data_range=255, crop_border=c).item() - sk_ssim(ac, bc, 255)) < TOL
    assert abs(psnr(pred, gt, data_range=255, crop_border=c).item()
               - peak_signal_noise_ratio(bc, ac, data_range=255)) < TOL
    assert ssim(pred, gt, data_range=255, crop_border=c).item() != ssim(pred, gt, data_range=255).item()


def test_y_channel_matches_bt601_formula():
    rng = np.random.default_rng(4)
    a, b = structured_pair(rng, (33, 47, 3), 255, np.uint8)
    pred, gt = to_tensor([a], 255), to_tensor([b], 255)

    def y(x):
        x = x.astype(np.float64)
        return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0

    ya, yb = y(a), y(b)
    assert abs(ssim(pred, gt, data_range=255, y_channel=True).item() - sk_ssim(ya, yb, 255)) < TOL
    assert abs(psnr(pred, gt, data_range=255, y_channel=True).item()
               - peak_signal_noise_ratio(yb, ya, data_range=255)) < TOL
    # Gray input is luma already (as blurtools.ops.color.rgb_to_y takes it).
    assert torch.equal(psnr(pred[:, :1], gt[:, :1], data_range=255, y_channel=True),
                       psnr(pred[:, :1], gt[:, :1], data_range=255))
    with pytest.raises(UsageError, match="C=2"):
        psnr(pred[:, :2], gt[:, :2], data_range=255, y_channel=True)


def test_psnr_identical_is_inf():
    x = torch.rand(2, 3, 16, 16)
    out = psnr(x, x, data_range=255)
    assert torch.isinf(out).all() and (out > 0).all()
    y = x.clone()
    y[1, 0, 0, 0] = 1.0 - y[1, 0, 0, 0]
    out = psnr(x, y, data_range=255)
    assert torch.isinf(out[0]) and torch.isfinite(out[1])


def matlab3d_reference(a, b, peak):
    """Independent MATLAB-style SSIM: 3-D Gaussian (11 taps, sigma 1.5) with replicate ('nearest')
    padding on H, W and channel, full map averaged."""
    a, b = a.astype(np.float64), b.astype(np.float64)

    def f(x):
        return gaussian_filter(x, sigma=1.5, truncate=5 / 1.5, mode="nearest")

    ux, uy = f(a), f(b)
    vx, vy, vxy = f(a * a) - ux * ux, f(b * b) - uy * uy, f(a * b) - ux * uy
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return s.mean()


@pytest.mark.parametrize("bits,shape", [(8, (37, 53, 3)), (8, (29, 31)), (16, (23, 17, 3)), (8, (7, 9, 3))])
def test_matlab3d_matches_independent_scipy_version(bits, shape):
    rng = np.random.default_rng(5)
    peak, dtype = (255, np.uint8) if bits == 8 else (65535, np.uint16)
    pairs = [structured_pair(rng, shape, peak, dtype), random_pair(rng, shape, peak, dtype, peak // 6)]
    pred = to_tensor([p for p, _ in pairs], peak)
    gt = to_tensor([g for _, g in pairs], peak)
    got = ssim(pred, gt, data_range=peak, mode="matlab3d")
    for i, (p, g) in enumerate(pairs):
        assert abs(got[i].item() - matlab3d_reference(p, g, peak)) < TOL


def test_matlab3d_differs_from_skimage_on_colour():
    rng = np.random.default_rng(6)
    a, b = structured_pair(rng, (37, 53, 3), 255, np.uint8)
    pred, gt = to_tensor([a], 255), to_tensor([b], 255)
    d = ssim(pred, gt, data_range=255, mode="matlab3d") - ssim(pred, gt, data_range=255)
    assert abs(d.item()) > 1e-4


def test_compute_image_metrics_matches_individual_calls():
    torch.manual_seed(0)
    pred, gt = torch.rand(2, 3, 24, 30), torch.rand(2, 3, 24, 30)
    out = compute_image_metrics(pred, gt, data_range=255, ssim_mode="matlab3d", crop_border=2)
    assert set(out) == {"psnr", "ssim"}
    assert torch.equal(out["psnr"], psnr(pred, gt, data_range=255, crop_border=2))
    assert torch.equal(out["ssim"], ssim(pred, gt, data_range=255, mode="matlab3d", crop_border=2))


def test_bad_inputs_raise_clear_errors():
    x = torch.rand(1, 3, 20, 20)
    with pytest.raises(UsageError, match="differs"):
        psnr(x, torch.rand(1, 3, 20, 21))
    with pytest.raises(UsageError, match=r"\(B, C, H, W\)"):
        ssim(x[0], x[0])
    with pytest.raises(UsageError, match="float"):
        psnr((x * 255).to(torch.uint8), (x * 255).to(torch.uint8))
    with pytest.raises(UsageError, match="unknown mode"):
        ssim(x, x, mode="matlab")
    with pytest.raises(UsageError, match="11x11"):
        ssim(torch.rand(1, 3, 10, 30), torch.rand(1, 3, 10, 30))
    with pytest.raises(UsageError, match="crop_border"):
        psnr(x, x, crop_border=10)
    with pytest.raises(UsageError, match="data_range"):
        psnr(x, x, data_range=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    torch.manual_seed(1)
    pred, gt = torch.rand(3, 3, 45, 61), torch.rand(3, 3, 45, 61)
    for mode in ("skimage", "matlab3d"):
        cpu = ssim(pred, gt, data_range=255, mode=mode)
        gpu = ssim(pred.cuda(), gt.cuda(), data_range=255, mode=mode)
        assert gpu.device.type == "cuda"
        assert torch.allclose(cpu, gpu.cpu(), atol=1e-10, rtol=0)
    assert torch.allclose(psnr(pred, gt, 255), psnr(pred.cuda(), gt.cuda(), 255).cpu(), atol=1e-10, rtol=0)
