"""LpipsMetric: equals the lpips package on the same module; never downloads; clear missing-file error."""

import lpips
import pytest
import torch
import torchvision

from blurtools.errors import BlurtoolsError
from blurtools.metrics.image import compute_image_metrics
from blurtools.metrics.lpips_metric import TRUNK_FILES, LpipsMetric, trunk_path


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path


def images(b=2, h=48, w=56, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 3, h, w, generator=g)
    y = (x + 0.2 * torch.rand(b, 3, h, w, generator=g)).clamp(0, 1)
    return x, y


def test_wrapped_module_equals_direct_lpips_call():
    torch.manual_seed(3)
    module = lpips.LPIPS(net="alex", version="0.1", verbose=False, pretrained=True, pnet_rand=True)
    metric = LpipsMetric.from_module(module, device="cpu")
    x, y = images()
    got = metric(x, y)
    with torch.no_grad():
        ref = module(x, y, normalize=True).flatten().double()
    assert got.shape == (2,) and got.dtype == torch.float64
    assert torch.allclose(got, ref, atol=1e-7, rtol=0)
    assert torch.allclose(metric(x, x), torch.zeros(2, dtype=torch.float64), atol=1e-7)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_random_trunk_constructor_equals_lpips_with_same_seed(net, empty_torch_home):
    x, y = images(b=1, h=40, w=40)
    torch.manual_seed(11)
    metric = LpipsMetric(net=net, device="cpu", random_trunk=True)
    torch.manual_seed(11)
    ref_module = lpips.LPIPS(net=net, version="0.1", verbose=False, pretrained=True, pnet_rand=True)
    with torch.no_grad():
        ref = ref_module(x, y, normalize=True).flatten().double()
    assert torch.allclose(metric(x, y), ref, atol=1e-7, rtol=0)
    assert not any(empty_torch_home.rglob("*.pth"))


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_missing_trunk_names_file_and_directory(net, empty_torch_home):
    with pytest.raises(BlurtoolsError) as err:
        LpipsMetric(net=net, device="cpu")
    msg = str(err.value)
    assert TRUNK_FILES[net] in msg
    assert str(empty_torch_home / "hub" / "checkpoints") in msg
    assert "never downloads" in msg
    assert trunk_path(net) == empty_torch_home / "hub" / "checkpoints" / TRUNK_FILES[net]


def test_pretrained_trunk_loads_from_cache_without_network(empty_torch_home):
    ckpt_dir = empty_torch_home / "hub" / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    torch.manual_seed(5)
    trunk = torchvision.models.alexnet()
    torch.save(trunk.state_dict(), ckpt_dir / TRUNK_FILES["alex"])
    metric = LpipsMetric(net="alex", device="cpu")  # download_url_to_file would raise
    assert torch.equal(metric.module.net.slice1[0].weight, trunk.features[0].weight)
    assert torch.equal(metric.module.net.slice5[0].weight, trunk.features[10].weight)


def test_gray_input_is_repeated_to_rgb():
    torch.manual_seed(3)
    module = lpips.LPIPS(net="alex", version="0.1", verbose=False, pretrained=True, pnet_rand=True)
    metric = LpipsMetric.from_module(module)
    x, y = images(b=1)
    xg, yg = x[:, :1], y[:, :1]
    assert torch.allclose(metric(xg, yg), metric(xg.repeat(1, 3, 1, 1), yg.repeat(1, 3, 1, 1)))


def test_compute_image_metrics_adds_lpips_on_quantized_cropped_rgb():
    torch.manual_seed(3)
    metric = LpipsMetric(net="alex", random_trunk=True)
    x, y = images(b=2, h=52, w=60)
    out = compute_image_metrics(x, y, data_range=255, y_channel=True, crop_border=3, lpips=metric)
    assert set(out) == {"psnr", "ssim", "lpips"}
    xq, yq = (torch.round(x.double() * 255) / 255), (torch.round(y.double() * 255) / 255)
    ref = metric(xq[..., 3:-3, 3:-3], yq[..., 3:-3, 3:-3])
    assert torch.allclose(out["lpips"], ref, atol=1e-7, rtol=0)
