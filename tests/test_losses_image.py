"""Losses used by the image deblurring models: pixel, VGG perceptual, adversarial, reblur."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from blurtools.errors import BlurtoolsError
from blurtools.losses import adversarial as adv
from blurtools.losses.perceptual import VGG16_FILE, VGG16_LAYERS, VGGPerceptual, vgg16_features
from blurtools.losses.pixel import PIXEL_LOSSES, charbonnier, l1, mse
from blurtools.losses.reblur import reblur_loss
from blurtools.ops.kernel_basis import KernelBasisOperator, reblur


# ---------------------------------------------------------------- pixel

def test_pixel_values():
    p, t = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    assert l1(p, t).item() == pytest.approx(0.5)
    assert mse(p, t).item() == pytest.approx(0.25)
    assert charbonnier(p, t, eps=1e-3).item() == pytest.approx(math.sqrt(0.25 + 1e-6))
    assert charbonnier(t, t, eps=1e-3).item() == pytest.approx(1e-3)
    assert set(PIXEL_LOSSES) >= {"l1", "l2", "mse", "charbonnier"}


def test_pixel_shape_mismatch():
    with pytest.raises(BlurtoolsError, match="differ in shape"):
        l1(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))


# ---------------------------------------------------------------- perceptual

def test_perceptual_missing_weights_names_file_and_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(BlurtoolsError) as err:
        VGGPerceptual(layers=("relu3_3",), pretrained=True)
    msg = str(err.value)
    assert VGG16_FILE in msg and str(tmp_path / "hub" / "checkpoints") in msg


def test_perceptual_loads_weights_from_hub_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    torch.manual_seed(3)
    feats = vgg16_features(VGG16_LAYERS["relu2_2"])  # the file holds more layers than the loss needs
    state = {f"features.{k}": v for k, v in feats.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(state, tmp_path / "checkpoints" / VGG16_FILE)
    vgg = VGGPerceptual(layers=("relu1_2",), pretrained=True)
    assert torch.equal(vgg.features[0].weight, feats[0].weight)
    (tmp_path / "checkpoints" / VGG16_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(BlurtoolsError, match="cannot load"):
        VGGPerceptual(layers=("relu1_2",), pretrained=True)


def test_vgg16_features_match_torchvision_layout():
    from torchvision.models.vgg import cfgs, make_layers
    ours, theirs = vgg16_features(), make_layers(cfgs["D"])
    assert [type(m) for m in ours] == [type(m) for m in theirs]
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


def test_perceptual_random_trunk():
    torch.manual_seed(0)
    vgg = VGGPerceptual(layers=("relu1_2", "relu2_2"), pretrained=False)
    assert len(vgg.features) == VGG16_LAYERS["relu2_2"] + 1
    assert all(not p.requires_grad for p in vgg.parameters())
    x = torch.rand(2, 3, 24, 24)
    assert vgg(x, x).item() == pytest.approx(0.0, abs=1e-10)
    pred = torch.rand(2, 3, 24, 24, requires_grad=True)
    loss = vgg(pred, x)
    loss.backward()
    assert loss.item() > 0 and pred.grad is not None and pred.grad.abs().sum() > 0
    vgg.train()
    assert not vgg.features.training
    conv_tap = VGGPerceptual(layers=("conv1_2", "relu1_2"), pretrained=False)
    f_conv, f_relu = conv_tap.extract(x)
    assert f_conv.min() < 0 and torch.equal(f_relu, f_conv.clamp_min(0))
    with pytest.raises(BlurtoolsError, match="unknown VGG16 layer"):
        VGGPerceptual(layers=("relu9_9",), pretrained=False)


# ---------------------------------------------------------------- adversarial

class _Linear(nn.Module):
    """D(x) = <w, x> per sample: its input gradient has norm ||w|| everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


def test_gradient_penalty_of_linear_critic():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 4, 4, generator=g)
    real, fake = torch.rand(5, 3, 4, 4, generator=g), torch.rand(5, 3, 4, 4, generator=g)
    unit = _Linear(w / w.norm())
    assert adv.gradient_penalty(unit, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    double = _Linear(2 * w / w.norm())
    gp = adv.gradient_penalty(double, real, fake)
    assert gp.item() == pytest.approx(1.0, rel=1e-5)
    gp.backward()  # the penalty trains the critic
    assert double.w.grad is not None and double.w.grad.abs().sum() > 0


def test_wgan_gp_critic_loss_and_label_noise():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(3, 4, 4, generator=g)
    critic = _Linear(w / w.norm())
    real, fake = torch.rand(6, 3, 4, 4, generator=g), torch.rand(6, 3, 4, 4, generator=g)
    d_real, d_fake = critic(real).mean(), critic(fake).mean()
    out = adv.wgan_gp_critic_loss(critic, real, fake, gp_weight=10.0)
    assert out["loss"].item() == pytest.approx((d_fake - d_real).item(), abs=1e-5)  # gp = 0 for a unit critic
    assert out["wasserstein"].item() == pytest.approx((d_real - d_fake).item(), abs=1e-5)
    swapped = adv.wgan_gp_critic_loss(critic, real, fake, gp_weight=10.0, label_noise=1.0)
    assert swapped["loss"].item() == pytest.approx((d_real - d_fake).item(), abs=1e-5)
    assert swapped["wasserstein"].item() == pytest.approx(out["wasserstein"].item(), abs=1e-5)
    fake_g = fake.clone().requires_grad_(True)
    adv.wgan_gp_critic_loss(critic, real, fake_g)["loss"].backward()
    assert fake_g.grad is None  # the critic loss never reaches the generator


def test_label_swap_mask_is_seeded_and_has_the_right_rate():
    a = adv.label_swap_mask(20000, 0.1, torch.device("cpu"), torch.Generator().manual_seed(5))
    b = adv.label_swap_mask(20000, 0.1, torch.device("cpu"), torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert 0.09 < a.float().mean().item() < 0.11
    with pytest.raises(BlurtoolsError):
        adv.label_swap_mask(4, 1.5, torch.device("cpu"))


def test_generator_losses_flow_into_fake():
    critic = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3, padding=1))
    fake = torch.rand(2, 3, 8, 8, requires_grad=True)
    adv.wgan_generator_loss(critic, fake).backward()
    assert fake.grad.abs().sum() > 0
    fake.grad = None
    adv.bce_generator_loss(critic, fake).backward()
    assert fake.grad.abs().sum() > 0


def test_bce_losses_for_an_undecided_discriminator():
    zero = _Linear(torch.zeros(3, 4, 4))  # logit 0 for everything
    real, fake = torch.rand(3, 3, 4, 4), torch.rand(3, 3, 4, 4)
    out = adv.bce_discriminator_loss(zero, real, fake)
    assert out["loss"].item() == pytest.approx(2 * math.log(2), rel=1e-6)
    assert out["d_real"].item() == pytest.approx(0.5)
    assert adv.bce_generator_loss(zero, fake).item() == pytest.approx(math.log(2), rel=1e-6)


# ---------------------------------------------------------------- reblur

def _direct_blur(x, k):
    """True convolution of (B, C, H, W) with one (ks, ks) kernel per image, reflect borders, via conv2d."""
    p = k.shape[-1] // 2
    xp = F.pad(x, (p, p, p, p), mode="reflect")
    out = []
    for i in range(x.shape[0]):
        w = torch.flip(k[i], (-2, -1)).expand(x.shape[1], 1, -1, -1)
        out.append(F.conv2d(xp[i:i + 1], w, groups=x.shape[1]))
    return torch.cat(out)


def test_reblur_matches_direct_convolution():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 21, 26, dtype=torch.float64, generator=g)
    k = torch.rand(2, 2, 7, 7, dtype=torch.float64, generator=g)
    k = k / k.sum((-2, -1), keepdim=True)
    m = torch.rand(2, 2, 21, 26, dtype=torch.float64, generator=g)
    m = m / m.sum(1, keepdim=True)
    expected = m[:, :1] * _direct_blur(x, k[:, 0]) + m[:, 1:] * _direct_blur(x, k[:, 1])
    assert torch.allclose(reblur(x, k, m), expected, atol=1e-10)


def test_reblur_identity_and_constant():
    x = torch.rand(1, 3, 16, 12)
    k = torch.zeros(1, 3, 5, 5)
    k[:, :, 2, 2] = 1
    m = torch.full((1, 3, 16, 12), 1 / 3)
    assert torch.allclose(reblur(x, k, m), x, atol=1e-5)
    kr = torch.softmax(torch.randn(1, 3, 25), -1).view(1, 3, 5, 5)
    c = torch.full((1, 3, 16, 12), 0.37)
    assert torch.allclose(reblur(c, kr, m), c, atol=1e-5)


def test_reblur_adjoint_in_the_interior():
    # Where x and y vanish near the border, the border extension plays no part and A^T is exact.
    g = torch.Generator().manual_seed(2)
    x = torch.zeros(1, 2, 30, 30, dtype=torch.float64)
    y = torch.zeros_like(x)
    x[..., 8:22, 8:22] = torch.rand(1, 2, 14, 14, generator=g, dtype=torch.float64)
    y[..., 8:22, 8:22] = torch.rand(1, 2, 14, 14, generator=g, dtype=torch.float64)
    k = torch.rand(1, 3, 7, 7, generator=g, dtype=torch.float64)
    m = torch.rand(1, 3, 30, 30, generator=g, dtype=torch.float64)
    op = KernelBasisOperator(k, m)
    assert (op.apply(x) * y).sum().item() == pytest.approx((x * op.adjoint(y)).sum().item(), rel=1e-10)


def test_reblur_loss():
    x = torch.rand(1, 3, 20, 20)
    k = torch.softmax(torch.randn(1, 2, 25), -1).view(1, 2, 5, 5).requires_grad_(True)
    m = torch.full((1, 2, 20, 20), 0.5)
    b = reblur(x, k, m).detach()
    assert reblur_loss(x, b, k, m).item() == pytest.approx(0.0, abs=1e-10)
    loss = reblur_loss(x, b + 0.1, k, m, border="same")
    assert loss.item() == pytest.approx(0.01, rel=1e-4)
    loss.backward()
    assert k.grad is not None
    with pytest.raises(BlurtoolsError, match="no valid region"):
        reblur_loss(x[..., :4, :4], b[..., :4, :4], k, m[..., :4, :4])
    with pytest.raises(BlurtoolsError, match="mixing"):
        reblur(x, k, m[..., :10])
