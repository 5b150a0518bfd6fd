"""Carbajal et al. 2021's released two-head network and their restoration, against plain-torch references
of the authors' formulas written here: the network from its state dict (their key names), and the
saturation-aware Richardson-Lucy with direct (not FFT) correlations."""

import pytest
import torch
import torch.nn.functional as F

from blurtools.errors import BlurtoolsError
from blurtools.models.two_heads import TwoHeadsNet, two_heads_args_from_state_dict
from blurtools.ops.saturated_rl import saturated_rl


def _seeded_sd(width=2, basis=5, seed=0):
    net = TwoHeadsNet(basis=basis, width=width)
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) * 0.3 for k, v in net.state_dict().items()}


def _lrelu(x):
    return F.leaky_relu(x, 0.01)


def _conv(x, p, name, padding=1):
    return _lrelu(F.conv2d(x, p[f"{name}.weight"], p[f"{name}.bias"], padding=padding))


def _up(x, skip, p, name):
    x = F.conv_transpose2d(x, p[f"{name}.up.weight"], p[f"{name}.up.bias"], stride=2)
    x = _conv(_conv(x, p, f"{name}.double_conv.0"), p, f"{name}.double_conv.2")
    if skip is not None:
        dy, dx = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
        x = torch.cat([skip, F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])], 1)
    return _conv(x, p, f"{name}.feat.0")


def _reference(blurry, p, basis, ks=33):
    """The released network, layer by layer from the state dict."""
    x = _conv(blurry ** 2.2 - 0.5, p, "inc_rgb.0")
    feats = []
    for i in range(1, 6):
        f = _conv(_conv(x, p, f"down{i}.double_conv.0"), p, f"down{i}.double_conv.2")
        feats.append(f)
        x = F.max_pool2d(f, 2)
    bottom = _conv(x, p, "feat.0")
    k = bottom.mean((2, 3), keepdim=True)
    for i in range(1, 6):
        side = 2 ** i
        k = _up(k, feats[5 - i].mean((2, 3), keepdim=True).repeat(1, 1, side, side), p, f"kernel_up{i}")
    k = _conv(_conv(k, p, "kernels_end.0"), p, "kernels_end.2")
    k = F.conv2d(k, p["kernels_end.4.weight"], p["kernels_end.4.bias"], padding=1)
    k = torch.softmax(k.flatten(2), 2).reshape(-1, basis, ks, ks)
    m = bottom
    for i in range(1, 6):
        m = _up(m, feats[5 - i], p, f"up{i}")
    m = _conv(_conv(m, p, "masks_end.0"), p, "masks_end.2")
    m = F.conv2d(m, p["masks_end.4.weight"], p["masks_end.4.bias"], padding=1)
    return k, torch.softmax(m, 1)


@pytest.mark.parametrize("h,w", [(64, 64), (70, 45)])
def test_network_matches_the_layer_by_layer_reference(h, w):
    sd = _seeded_sd()
    args = two_heads_args_from_state_dict(sd)
    assert args == {"basis": 5, "width": 2, "kernel_size": 33}
    net = TwoHeadsNet(**args).eval()
    net.load_state_dict(sd)
    x = torch.rand(2, 3, h, w)
    with torch.no_grad():
        k, m = net.estimate(x)
        rk, rm = _reference(x, sd, 5)
    assert k.shape == (2, 5, 33, 33) and m.shape == (2, 5, h, w)
    assert torch.allclose(k, rk, atol=1e-6) and torch.allclose(m, rm, atol=1e-6)
    assert torch.allclose(k.sum((2, 3)), torch.ones(2, 5), atol=1e-5)
    assert torch.allclose(m.sum(1), torch.ones(2, h, w), atol=1e-5)


def test_released_key_names():
    keys = set(TwoHeadsNet(width=1, basis=25).state_dict())
    for name in ("inc_rgb.0.weight", "inc_gray.0.weight", "down5.double_conv.2.bias", "feat.0.weight",
                 "up1.up.weight", "up5.feat.0.weight", "masks_end.4.weight", "kernel_up3.double_conv.0.weight",
                 "kernels_end.0.weight", "kernels_end.4.bias"):
        assert name in keys
    assert TwoHeadsNet(width=64).kernel_up4.feat[0].weight.shape == (128, 128 + 128, 3, 3)


def test_too_small_image_is_refused():
    with pytest.raises(BlurtoolsError, match="at least 32"):
        TwoHeadsNet(width=1, basis=2).estimate(torch.rand(1, 3, 31, 80))


# ------------------------------------------------------------------------- the restoration, directly

def _reblur_direct(x, kernels, masks):
    """sum_k masks_k * (reflect-padded x correlated with kernels_k), by direct convolution."""
    p = kernels.shape[-1] // 2
    out = []
    for b in range(x.shape[0]):
        xp = F.pad(x[b:b + 1], (p, p, p, p), mode="reflect")
        per = torch.stack([F.conv2d(xp[:, c:c + 1], kernels[b][:, None]) for c in range(x.shape[1])], 2)
        out.append((per * masks[b:b + 1, :, None]).sum(1))
    return torch.cat(out)


def _sobel(x):
    a = torch.tensor([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]])[None, None]
    c = x.shape[1]
    gx = F.conv2d(x, a.repeat(c, 1, 1, 1), padding=1, groups=c)
    gy = F.conv2d(x, a.transpose(2, 3).repeat(c, 1, 1, 1), padding=1, groups=c)
    return gy, gx


def _rl_reference(blurry, kernels, masks, iters=30, g=2.2, thr=0.99, lam=1e-3):
    out, prev, target = blurry.clone(), 1000.0, blurry ** g
    flipped = torch.flip(kernels, (2, 3))
    ones = torch.ones(3, 1, 3, 3)
    for _ in range(iters):
        u = (out < thr).float()
        u = 1 - (F.conv2d(1 - u, ones, padding=1, groups=3) > 0).float()
        u = F.conv2d(u, ones / 9, padding=1, groups=3)
        f_u, f_s = u * out, out - u * out
        y = _reblur_direct(out ** g, kernels, masks).clamp(max=1.5)
        r = F.relu(y - torch.log(1 + torch.exp(50 * (y - 1))) / 50)
        dr = 1 / (1 + torch.exp(50 * (y - 1)))
        e_u = _reblur_direct(target * dr * u / (r + 1e-6) + 1 - dr * u, flipped, masks)
        e_s = _reblur_direct(target * dr / (r + 1e-6) + 1 - dr, flipped, masks)
        new = (f_u ** g * e_u) ** (1 / g) + (f_s ** g * e_s) ** (1 / g)
        gy, gx = _sobel(out)
        n = torch.sqrt(gx ** 2 + gy ** 2)
        nx = torch.where(n < 1e-9, torch.full_like(n, 1e-9), gx / n)
        ny = torch.where(n < 1e-9, torch.full_like(n, 1e-9), gy / n)
        new = new / (1 - lam * (_sobel(nx)[1] + _sobel(ny)[0]))
        loss = float(((y ** (1 / g) - blurry) ** 2).mean())
        if prev - loss < 1e-6:
            break
        out, prev = new, loss
    return out


def test_saturated_rl_matches_the_direct_reference():
    g = torch.Generator().manual_seed(1)
    blurry = torch.rand(1, 3, 48, 56, generator=g) ** 0.5
    blurry[..., 5:15, 10:30] = 1.0                                   # a saturated patch
    kernels = torch.softmax(torch.randn(1, 4, 33 * 33, generator=g) * 3, -1).reshape(1, 4, 33, 33)
    masks = torch.softmax(torch.randn(1, 4, 48, 56, generator=g) * 2, 1)
    got = saturated_rl(blurry, kernels, masks)
    want = _rl_reference(blurry, kernels, masks)
    assert (got - want).abs().max() < 1e-4
    assert (got - blurry).abs().mean() > 1e-2                        # it did restore something


def test_saturated_rl_images_of_a_batch_are_independent():
    g = torch.Generator().manual_seed(2)
    blurry = torch.rand(2, 3, 40, 40, generator=g)
    kernels = torch.softmax(torch.randn(2, 3, 33 * 33, generator=g), -1).reshape(2, 3, 33, 33)
    masks = torch.softmax(torch.randn(2, 3, 40, 40, generator=g), 1)
    both = saturated_rl(blurry, kernels, masks, iterations=8)
    one = saturated_rl(blurry[1:], kernels[1:], masks[1:], iterations=8)
    assert torch.allclose(both[1:], one, atol=1e-5)


def test_saturated_rl_rejects_bad_shapes():
    with pytest.raises(BlurtoolsError, match="too small"):
        saturated_rl(torch.rand(1, 3, 10, 40), torch.rand(1, 2, 33, 33), torch.rand(1, 2, 10, 40))
    with pytest.raises(BlurtoolsError, match="expected"):
        saturated_rl(torch.rand(3, 40, 40), torch.rand(1, 2, 33, 33), torch.rand(1, 2, 40, 40))


def test_mixed_correlation_both_orientations_match_direct_convolution():
    from blurtools.ops.saturated_rl import MixedCorrelation

    g = torch.Generator().manual_seed(5)
    x = torch.rand(2, 3, 37, 41, generator=g)
    kernels = torch.rand(2, 7, 9, 9, generator=g)                  # more than one chunk of 5
    masks = torch.rand(2, 7, 37, 41, generator=g)
    op = MixedCorrelation(kernels, masks)
    assert torch.allclose(op.apply(x), _reblur_direct(x, kernels, masks), atol=1e-4)
    assert torch.allclose(op.apply(x, flipped=True), _reblur_direct(x, torch.flip(kernels, (2, 3)), masks), atol=1e-4)
