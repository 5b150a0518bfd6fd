"""blurtools.ops.fft: torch.fft semantics, pocketfft on the CPU, torch.fft for autograd."""

import pytest
import torch

from blurtools.ops.fft import irfft2, rfft2


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-3), (torch.float64, 1e-9)])
@pytest.mark.parametrize("s", [None, (40, 54), (33, 31)])
def test_rfft2_matches_torch(dtype, tol, s):
    x = torch.rand(2, 3, 33, 31, dtype=dtype, generator=torch.Generator().manual_seed(1))
    ours, ref = rfft2(x, s=s), torch.fft.rfft2(x, s=s)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    assert (ours - ref).abs().max().item() < tol


@pytest.mark.parametrize("fw", [30, 31])
def test_irfft2_round_trip_and_input_kept(fw):
    x = torch.rand(4, 20, fw, generator=torch.Generator().manual_seed(2))
    spec = torch.fft.rfft2(x)
    before = spec.clone()
    back = irfft2(spec, s=(20, fw))
    assert torch.equal(spec, before)
    assert (back - x).abs().max().item() < 1e-5
    assert (back - torch.fft.irfft2(spec, s=(20, fw))).abs().max().item() < 1e-5


def test_out_buffers_are_written_and_returned():
    x = torch.rand(3, 16, 24)
    out = torch.empty(3, 16, 13, dtype=torch.complex64)
    assert rfft2(x, out=out) is out
    assert (out - torch.fft.rfft2(x)).abs().max().item() < 1e-4
    img = torch.empty(3, 16, 24)
    assert irfft2(out, s=(16, 24), out=img) is img
    assert (img - x).abs().max().item() < 1e-5
    with pytest.raises(ValueError, match="out must be"):
        rfft2(x, out=torch.empty(3, 16, 12, dtype=torch.complex64))


def test_autograd_goes_through_torch():
    x = torch.rand(1, 8, 8, requires_grad=True)
    y = irfft2(rfft2(x) * 2, s=(8, 8)).sum()
    y.backward()
    assert torch.allclose(x.grad, torch.full_like(x, 2.0), atol=1e-5)
