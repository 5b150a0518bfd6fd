"""Single-image deblurring models (dm, deblurgan, kernel-basis) and their training recipes."""

import json
import math

import pytest
import torch

from blurtools.errors import BlurtoolsError
from blurtools.losses.perceptual import VGGPerceptual
from blurtools.ops.kernel_basis import reblur
from blurtools.models.deblurgan import DeblurGANCritic, DeblurGANGenerator, laplacian
from blurtools.models.dm import DenseDeblurModule, param_count
from blurtools.models.kernel_basis import KernelBasisNet, richardson_lucy
from blurtools.train.recipe import ObjectiveContext
from blurtools.train.recipes import deblurgan as r_gan
from blurtools.train.recipes import dm as r_dm
from blurtools.train.recipes import kernel_basis as r_kb


def tiny_dm():
    return DenseDeblurModule(width=8, growth=4, rdb_layers=2, blocks=(1, 1, 1), bottleneck=1)


def tiny_gan():
    return DeblurGANGenerator(width=8, n_blocks=2, dropout=0.0)


def tiny_kb():
    return KernelBasisNet(basis=4, kernel_size=9, width=8, depth=2, rl_iters=3)


TINY = {"dm": tiny_dm, "deblurgan": tiny_gan, "kernel-basis": tiny_kb}


def make_batch(n_frames=3, size=32, seed=0):
    """Piecewise-constant sharp images and their horizontal 5-px motion blur, in the batch layout of recipes."""
    g = torch.Generator().manual_seed(seed)
    sharp = torch.rand(2, 3, size // 4, size // 4, generator=g)
    sharp = torch.nn.functional.interpolate(sharp, scale_factor=4, mode="nearest")
    k = torch.zeros(2, 1, 9, 9)
    k[:, 0, 4, 2:7] = 0.2
    blurry = reblur(sharp, k, torch.ones(2, 1, size, size))
    frames = sharp[:, None].repeat(1, n_frames, 1, 1, 1)
    frames[:, 0] = blurry  # the other frames differ from the middle one: the target must be sharp[:, N//2]
    return {"blurry": blurry, "sharp": frames}


# ---------------------------------------------------------------- shapes and construction

@pytest.mark.parametrize("name", sorted(TINY))
def test_forward_shape_on_odd_sizes(name):
    torch.manual_seed(0)
    model = TINY[name]()
    assert model.kind == "image"
    x = torch.rand(1, 3, 37, 53)
    for mode in (True, False):
        model.train(mode)
        with torch.no_grad():
            y = model(x)
        assert y.shape == x.shape and torch.isfinite(y).all()
    assert 0 <= y.min() and y.max() <= 1  # eval mode output is an image
    with pytest.raises(BlurtoolsError, match="expected"):
        model(torch.rand(1, 4, 16, 16))


@pytest.mark.parametrize("name", sorted(TINY))
def test_model_args_rebuild_the_model(name):
    model = TINY[name]()
    args = json.loads(json.dumps(model.model_args))
    clone = type(model)(**args)
    assert {k: v.shape for k, v in clone.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


def test_dm_default_size_is_the_published_one():
    n = param_count()
    # Purohit et al.: 17.9 MB of float32 weights; ours is 18.9 MB (18.0 MiB).
    assert 4.2e6 < n < 5.0e6
    assert param_count(tiny_dm()) < 50_000


def test_dm_starts_near_identity():
    torch.manual_seed(0)
    model = DenseDeblurModule(width=8, growth=4, rdb_layers=2, blocks=(1, 1, 1), bottleneck=1).eval()
    x = torch.rand(1, 3, 24, 40) * 0.8 + 0.1
    with torch.no_grad():
        assert (model(x) - x).abs().mean() < 0.05


def test_deblurgan_laplacian_channel():
    ramp = torch.linspace(0, 1, 16).view(1, 1, 1, 16).expand(1, 3, 8, 16)
    assert laplacian(ramp)[..., 1:-1, 1:-1].abs().max() < 1e-6
    quad = (torch.arange(16.0) ** 2).view(1, 1, 1, 16).expand(1, 3, 8, 16)
    assert torch.allclose(laplacian(quad)[..., 1:-1, 1:-1], torch.full((1, 1, 6, 14), 2.0), atol=1e-4)
    g = DeblurGANGenerator(width=4, n_blocks=1, dropout=0.0)
    assert g.body[1].in_channels == 4
    assert DeblurGANGenerator(width=4, n_blocks=1, laplacian=False).body[1].in_channels == 3


def test_deblurgan_critic():
    critic = DeblurGANCritic(width=4)
    assert critic(torch.rand(2, 3, 32, 32)).shape[:2] == (2, 1)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())
    with pytest.raises(BlurtoolsError, match="batch norm"):
        DeblurGANCritic(norm="batch")
    assert DeblurGANGenerator().model_args["dropout"] == 0.5


# ---------------------------------------------------------------- kernel basis

def test_kernel_basis_estimate_is_normalised():
    torch.manual_seed(0)
    model = tiny_kb()
    x = torch.rand(2, 3, 37, 53)
    kernels, mixing = model.estimate(x)
    assert kernels.shape == (2, 4, 9, 9) and mixing.shape == (2, 4, 37, 53)
    assert (kernels >= 0).all() and (mixing >= 0).all()
    assert torch.allclose(kernels.sum((-2, -1)), torch.ones(2, 4), atol=1e-5)
    assert torch.allclose(mixing.sum(1), torch.ones(2, 37, 53), atol=1e-5)
    const = torch.full((2, 3, 37, 53), 0.42)
    assert torch.allclose(model.reblur(const, kernels, mixing), const, atol=1e-5)


def test_kernel_basis_kernel_sizes():
    for ks in (5, 9, 13):  # 13 is not 2^n + 1
        k, _ = KernelBasisNet(basis=2, kernel_size=ks, width=4, depth=1, rl_iters=1).estimate(torch.rand(1, 3, 8, 8))
        assert k.shape == (1, 2, ks, ks)
    with pytest.raises(BlurtoolsError, match="odd"):
        KernelBasisNet(kernel_size=32)


def test_richardson_lucy_with_true_kernels_sharpens():
    batch = make_batch()
    sharp, blurry = batch["sharp"][:, 1], batch["blurry"]
    k = torch.zeros(2, 1, 9, 9)
    k[:, 0, 4, 2:7] = 0.2
    m = torch.ones(2, 1, 32, 32)
    restored = richardson_lucy(blurry, k, m, iters=20)
    err0 = (blurry - sharp).abs().mean()
    assert (restored - sharp).abs().mean() < 0.6 * err0


def test_kernel_basis_hqs_restore_with_true_kernels_sharpens():
    """restore="hqs": the mixing-weighted mean kernel, deconvolved in linear light, as the paper's split."""
    from blurtools.ops.crf import from_linear, to_linear

    g = torch.Generator().manual_seed(3)
    sharp = torch.nn.functional.interpolate(torch.rand(1, 3, 12, 12, generator=g), scale_factor=4, mode="nearest")
    k = torch.zeros(1, 2, 9, 9)
    k[0, 0, 4, 2:7] = 0.2               # two basis kernels, mixed half and half everywhere:
    k[0, 1, 2:7, 4] = 0.2               # the image's blur is their mean, a cross
    m = torch.full((1, 2, 48, 48), 0.5)
    mean = KernelBasisNet.mean_kernel(k, m)
    assert mean.shape == (1, 1, 9, 9) and abs(float(mean.sum()) - 1) < 1e-6
    blurry = from_linear(reblur(to_linear(sharp, "gamma:2.2"), mean, torch.ones(1, 1, 48, 48)), "gamma:2.2")
    net = KernelBasisNet(basis=2, kernel_size=9, width=8, depth=2, restore="hqs", hqs_lam=1e-4).eval()
    assert net.model_args["restore"] == "hqs" and "restore" not in tiny_kb().model_args
    restored = net.restore(blurry, k, m)
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    assert (restored - sharp)[inner].abs().mean() < 0.5 * (blurry - sharp)[inner].abs().mean()
    with pytest.raises(BlurtoolsError, match="restore"):
        KernelBasisNet(basis=2, kernel_size=9, width=8, depth=2, restore="wiener")


# ---------------------------------------------------------------- recipes

def _ctx(weights, critic=None, perceptual=None):
    return ObjectiveContext(weights=dict(weights), critic=critic, perceptual=perceptual,
                            generator=torch.Generator().manual_seed(0))


def _assert_all_grads(module, what):
    missing = [n for n, p in module.named_parameters() if p.grad is None]
    assert not missing, f"{what}: no gradient for {missing}"
    bad = [n for n, p in module.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"{what}: non-finite gradient for {bad}"
    assert sum(p.grad.abs().sum() for p in module.parameters()) > 0


def test_recipes_are_well_formed():
    for rec in (r_dm.RECIPE, r_gan.RECIPE, r_kb.RECIPE):
        assert math.isclose(sum(s.steps_fraction for s in rec.stages), 1.0)
        assert all(s.objective in rec.objectives for s in rec.stages)
    assert r_gan.RECIPE.stages[0].critic_steps == 5
    assert r_gan.RECIPE.default_weights["perceptual"] == 100 and r_gan.RECIPE.default_weights["gp"] == 10
    assert isinstance(r_gan.RECIPE.critic(tiny_gan().model_args), DeblurGANCritic)


def test_dm_recipe_gradients():
    torch.manual_seed(0)
    model, batch = tiny_dm().train(), make_batch()
    vgg = VGGPerceptual(layers=("relu2_2",), pretrained=False)
    out = r_dm.objective(model, batch, _ctx({**r_dm.RECIPE.default_weights, "perceptual": 0.1}, perceptual=vgg))
    assert set(out) >= {"loss", "l1", "perceptual"}
    out["loss"].backward()
    _assert_all_grads(model, "dm")


def test_deblurgan_recipe_gradients_and_critic_step():
    torch.manual_seed(0)
    model, batch = tiny_gan().train(), make_batch()
    critic = r_gan.RECIPE.critic(model.model_args)
    vgg = VGGPerceptual(layers=("relu3_3",), pretrained=False)
    ctx = _ctx(r_gan.RECIPE.default_weights, critic=critic, perceptual=vgg)
    out = r_gan.generator_objective(model, batch, ctx)
    assert set(out) >= {"loss", "adv", "perceptual"}
    out["loss"].backward()
    _assert_all_grads(model, "deblurgan generator")
    assert all(p.grad is None for p in critic.parameters())  # the generator step leaves the critic alone
    assert all(p.requires_grad for p in critic.parameters())
    model.zero_grad()
    c_out = r_gan.RECIPE.critic_objective(model, critic, batch, ctx)
    assert set(c_out) >= {"loss", "wasserstein", "gp"}
    c_out["loss"].backward()
    _assert_all_grads(critic, "deblurgan critic")
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(BlurtoolsError, match="no VGG"):
        r_gan.generator_objective(model, batch, _ctx(r_gan.RECIPE.default_weights, critic=critic))


def test_kernel_basis_recipe_gradients():
    torch.manual_seed(0)
    model, batch = tiny_kb().train(), make_batch()
    for name in ("reblur", "joint"):
        model.zero_grad()
        out = r_kb.RECIPE.objectives[name](model, batch, _ctx(r_kb.RECIPE.default_weights))
        out["loss"].backward()
        _assert_all_grads(model, f"kernel-basis {name}")
    assert set(out) >= {"loss", "reblur", "l1"}


def test_objectives_check_the_batch():
    bad = {"blurry": torch.rand(2, 3, 16, 16), "sharp": torch.rand(2, 3, 16, 16)}
    with pytest.raises(BlurtoolsError, match="sharp"):
        r_dm.objective(tiny_dm(), bad, _ctx(r_dm.RECIPE.default_weights))


# ---------------------------------------------------------------- overfitting a fixed batch

def _overfit(model, objective, weights, steps, lr):
    torch.manual_seed(0)
    batch, ctx = make_batch(), _ctx(weights)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    first = None
    for _ in range(steps):
        out = objective(model, batch, ctx)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        first = out["loss"].item() if first is None else first
    return first, out["loss"].item()


def test_dm_overfits_a_batch():
    torch.manual_seed(0)
    first, last = _overfit(tiny_dm(), r_dm.objective, r_dm.RECIPE.default_weights, steps=150, lr=5e-3)
    assert last < first / 10, (first, last)


def test_deblurgan_generator_overfits_a_batch():
    torch.manual_seed(0)
    weights = {"adv": 0.0, "perceptual": 0.0, "l1": 1.0}
    first, last = _overfit(tiny_gan(), r_gan.generator_objective, weights, steps=150, lr=5e-3)
    assert last < first / 10, (first, last)


def test_kernel_basis_overfits_a_batch():
    torch.manual_seed(0)
    first, last = _overfit(tiny_kb(), r_kb.reblur_objective, r_kb.RECIPE.default_weights, steps=60, lr=5e-3)
    assert last < first / 10, (first, last)
