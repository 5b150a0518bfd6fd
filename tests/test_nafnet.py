"""NAFNet (Chen et al. 2022) as the authors publish and run it: spandrel's module inside blurtools' wrapper,
checked against plain-torch references of the authors' formulas (one NAFBlock, the test-time local means,
zero padding to 16 and the crop, the global residual) and their file container."""

import pytest
import torch
import torch.nn.functional as F

from blurtools.models.files import strip_prefix
from blurtools.models.nafnet import LocalMean, NAFNet, nafnet_args_from_state_dict, unwrap_params

TINY = dict(width=4, enc_blocks=[1, 1, 1, 2], middle_blocks=1, dec_blocks=[1, 1, 1, 1])


def _randomise(module, seed=0, scale=0.2):
    """Seeded random values in every parameter (the published init leaves beta/gamma at 0: blocks inert)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return module.eval()


def _layer_norm(x, w, b, eps=1e-6):
    mu = x.mean(1, keepdim=True)
    var = ((x - mu) ** 2).mean(1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)


def _naf_block_reference(x, p, pool):
    """One NAFBlock from the paper's equations, with plain torch functions; ``p`` its state dict."""
    c = x.shape[1]
    t = F.conv2d(_layer_norm(x, p["norm1.weight"], p["norm1.bias"]), p["conv1.weight"], p["conv1.bias"])
    t = F.conv2d(t, p["conv2.weight"], p["conv2.bias"], padding=1, groups=2 * c)
    t = t[:, :c] * t[:, c:]                                                  # simple gate
    t = t * F.conv2d(pool(t), p["sca.1.weight"], p["sca.1.bias"])            # simplified channel attention
    y = x + F.conv2d(t, p["conv3.weight"], p["conv3.bias"]) * p["beta"]
    t = F.conv2d(_layer_norm(y, p["norm2.weight"], p["norm2.bias"]), p["conv4.weight"], p["conv4.bias"])
    t = t[:, :c] * t[:, c:]
    return y + F.conv2d(t, p["conv5.weight"], p["conv5.bias"]) * p["gamma"]


def _box_reference(x, k):
    """Mean over k x k boxes (clipped to the map), replicated back to the map's size, centred."""
    h, w = x.shape[-2:]
    k1, k2 = min(k, h), min(k, w)
    box = F.avg_pool2d(x, (k1, k2), stride=1)
    dh, dw = h - box.shape[-2], w - box.shape[-1]
    return F.pad(box, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), mode="replicate")


def test_one_block_matches_the_papers_equations():
    net = _randomise(NAFNet(**TINY, tlc_base=None))
    block = net.net.encoders[1][0]
    p = {k: v for k, v in block.state_dict().items()}
    x = torch.randn(2, 8, 12, 10)
    with torch.no_grad():
        got = block(x)
    want = _naf_block_reference(x, p, lambda t: t.mean((2, 3), keepdim=True))
    assert torch.allclose(got, want, atol=1e-5)


def test_local_block_uses_box_means_of_its_level():
    net = _randomise(NAFNet(**TINY, tlc_base=32))
    block = net.net.encoders[1][0]                  # level 1: box 32 / 2 = 16
    assert block.sca[0].size == 16
    x = torch.randn(1, 8, 24, 20)
    with torch.no_grad():
        got = block(x)
    want = _naf_block_reference(x, dict(block.state_dict()), lambda t: _box_reference(t, 16))
    assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("shape,k", [((1, 2, 20, 30), 5), ((2, 3, 9, 40), 12), ((1, 1, 7, 6), 8)])
def test_local_mean_is_a_clipped_box_mean(shape, k):
    x = torch.rand(shape)
    got = LocalMean(k)(x)
    want = _box_reference(x, k) if (k < shape[-2] or k < shape[-1]) else x.mean((2, 3), keepdim=True)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-5)


def test_zero_padding_to_16_crop_and_global_residual():
    net = _randomise(NAFNet(**TINY, tlc_base=None))
    x = torch.rand(1, 3, 37, 45)
    with torch.no_grad():
        got = net(x)
        padded = net(F.pad(x, (0, 3, 0, 11)))            # zeros right/bottom to 48 x 48
    assert got.shape == x.shape
    assert torch.allclose(got, padded[..., :37, :45], atol=1e-6)
    with torch.no_grad():
        net.net.ending.weight.zero_()
        net.net.ending.bias.zero_()
        assert torch.equal(net(x), x)                     # output = input + network


def test_local_statistics_only_change_inputs_larger_than_the_box():
    plain = _randomise(NAFNet(**TINY, tlc_base=None), seed=3)
    local = NAFNet(**TINY, tlc_base=32).eval()
    local.load_state_dict(plain.state_dict())
    small, large = torch.rand(1, 3, 32, 30), torch.rand(1, 3, 80, 64)
    with torch.no_grad():
        assert torch.allclose(plain(small), local(small), atol=1e-6)
        assert (plain(large) - local(large)).abs().max() > 1e-4


def _official_sd(width=8, enc=(1, 1, 1, 28), middle=1, dec=(1, 1, 1, 1), seed=0):
    net = _randomise(NAFNet(width=width, enc_blocks=enc, middle_blocks=middle, dec_blocks=dec), seed)
    return {k[len("net."):]: v for k, v in net.state_dict().items()}


def test_published_container_and_configuration():
    sd = _official_sd()
    obj = {"params": {f"module.{k}": v for k, v in sd.items()}}
    inner = strip_prefix(unwrap_params(obj))
    assert set(inner) == set(sd)
    args = nafnet_args_from_state_dict(inner)
    assert args == {"width": 8, "enc_blocks": [1, 1, 1, 28], "middle_blocks": 1, "dec_blocks": [1, 1, 1, 1],
                    "channels": 3, "tlc_base": 384}
    denoiser = nafnet_args_from_state_dict(_official_sd(width=4, enc=(2, 2, 4, 8), middle=12, dec=(2, 2, 2, 2)))
    assert denoiser["tlc_base"] is None and denoiser["enc_blocks"] == [2, 2, 4, 8]
    assert unwrap_params({"state_dict": sd}) is None
