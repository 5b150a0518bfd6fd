"""Camera responses, colour, filters, device selection."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as ss
import torch

from blurtools.errors import UsageError
from blurtools.ops.color import rgb_to_y
from blurtools.ops.crf import from_linear, parse_crf, to_linear
from blurtools.ops.device import resolve_device
from blurtools.ops.filters import fft_conv2d, gaussian_blur, gaussian_kernel1d, separable_conv2d


@pytest.mark.parametrize("crf", ["linear", "gamma", "gamma:2.4", "srgb"])
def test_crf_round_trip(crf):
    x = torch.linspace(0, 1, 1001, dtype=torch.float64)
    assert torch.allclose(from_linear(to_linear(x, crf), crf), x, atol=1e-9)


def test_srgb_matches_formula():
    x = torch.tensor([0.0, 0.02, 0.04045, 0.5, 1.0], dtype=torch.float64)
    ref = np.where(x.numpy() <= 0.04045, x.numpy() / 12.92, ((x.numpy() + 0.055) / 1.055) ** 2.4)
    assert np.allclose(to_linear(x, "srgb").numpy(), ref)
    assert parse_crf("gamma:1.8").gamma == 1.8
    with pytest.raises(UsageError):
        parse_crf("log")


def test_rgb_to_y_bt601():
    x = torch.tensor([255.0, 128.0, 0.0]).view(1, 3, 1, 1) / 255
    y = rgb_to_y(x).item() * 255
    assert abs(y - (16 + (65.481 * 255 + 128.553 * 128) / 255)) < 1e-4


@pytest.mark.parametrize("mode", ["same", "full", "valid"])
def test_fft_conv2d_matches_scipy(mode):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 23, 31, generator=g, dtype=torch.float64)
    k = torch.rand(3, 4, 7, generator=g, dtype=torch.float64)
    y = fft_conv2d(x, k, mode=mode, pad="zeros").numpy()
    ref = np.stack([np.stack([ss.fftconvolve(x[b, c].numpy(), k[c].numpy(), mode=mode) for c in range(3)]) for b in range(2)])
    assert np.abs(y - ref).max() < 1e-10


def test_fft_conv2d_reflect_preserves_constant_and_batches_psfs():
    x = torch.full((4, 3, 16, 20), 0.3)
    psf = torch.rand(4, 3, 5, 5)
    psf = psf / psf.sum(dim=(-1, -2), keepdim=True)
    y = fft_conv2d(x, psf)
    assert torch.allclose(y, x, atol=1e-5)


def test_separable_gaussian_matches_scipy():
    x = torch.rand(1, 2, 19, 23, dtype=torch.float64)
    y = gaussian_blur(x, 1.5, padding="reflect").numpy()
    ref = np.stack([ndi.gaussian_filter(x[0, c].numpy(), 1.5, mode="reflect", truncate=3.5) for c in range(2)])
    # scipy 'reflect' is half-sample symmetric (torch 'replicate'-like at the edge pixel); compare the interior
    assert np.abs(y[0][:, 6:-6, 6:-6] - ref[:, 6:-6, 6:-6]).max() < 1e-12
    k = gaussian_kernel1d(11, 1.5)
    assert abs(float(k.sum()) - 1) < 1e-6
    assert separable_conv2d(x, k.double(), padding="valid").shape == (1, 2, 9, 13)


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(UsageError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available"):
            resolve_device("cuda:0")
