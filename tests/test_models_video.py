"""The video-from-one-blurry-image models (jin, bringing-alive, niu): shapes, stages, overfitting, frame
multiplication. Tiny widths; the data are blobs moving over a flat background."""

import math

import pytest
import torch
import torch.nn.functional as F

from blurtools.infer.frame_multiply import multiply_frames, span_weights
from blurtools.losses.order_invariant import order_invariant_loss
from blurtools.losses.perceptual import VGGPerceptual
from blurtools.models.bringing_alive import BringingAlive, warp
from blurtools.models.convlstm import ConvLSTMCell
from blurtools.models.jin import Jin
from blurtools.models.niu import NiuDiscriminator, NiuNet
from blurtools.train.recipe import ObjectiveContext
from blurtools.train.recipes import bringing_alive as ba_recipe
from blurtools.train.recipes import jin as jin_recipe
from blurtools.train.recipes import niu as niu_recipe

TINY_JIN = dict(middle_width=8, middle_blocks=4, middle_tail=8, pair_width=8, first_pair_blocks=4,
                pair_blocks=4, pair_tail=8)
TINY_DM = dict(width=8, growth=4, rdb_layers=2, blocks=[1, 1, 1], bottleneck=1)
TINY_BA = dict(widths=[4, 8, 8, 16], hidden=16, bie_widths=[8, 8, 8, 16, 16, 16], dm_args=TINY_DM)
TINY_NIU = dict(width=8, blocks=2)


def moving_blobs(batch=2, frames=7, size=24, seed=0, speed=1.5, textured=False):
    """Two Gaussian blobs per sample moving in straight lines over a still background; blurry = mean.

    The background is flat, or with ``textured`` a smooth random texture (distinct patches everywhere,
    which the contextual loss needs: it cannot tell apart identical patches of a flat area).
    """
    g = torch.Generator().manual_seed(seed)
    ys = torch.arange(size, dtype=torch.float32).view(size, 1)
    xs = torch.arange(size, dtype=torch.float32).view(1, size)
    mid = (frames - 1) / 2
    seqs = []
    for _ in range(batch):
        if textured:
            coarse = torch.rand(1, 3, size // 4 + 2, size // 4 + 2, generator=g)
            bg = 0.15 + 0.4 * F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0]
        else:
            bg = 0.2 + 0.3 * torch.rand(3, 1, 1, generator=g)
        blobs = []
        for _ in range(2):
            colour = 0.2 + 0.5 * torch.rand(3, 1, 1, generator=g)
            cy, cx = ((0.25 + 0.5 * torch.rand(2, generator=g)) * size).tolist()
            ang = float(torch.rand(1, generator=g)) * 2 * math.pi
            blobs.append((colour, cy, cx, speed * math.sin(ang), speed * math.cos(ang)))
        frames_ = []
        for t in range(frames):
            img = bg.expand(3, size, size).clone()
            for colour, cy, cx, vy, vx in blobs:
                d2 = (ys - cy - vy * (t - mid)) ** 2 + (xs - cx - vx * (t - mid)) ** 2
                img = img + colour * torch.exp(-d2 / (2 * 2.5 ** 2))
            frames_.append(img.clamp(0, 1))
        seqs.append(torch.stack(frames_))
    sharp = torch.stack(seqs)
    return {"blurry": sharp.mean(1), "sharp": sharp}


def _trained_params(model, stage):
    if stage.train == ("*",):
        return list(model.parameters())
    return [p for name in stage.train for p in getattr(model, name).parameters()]


def _freeze_for(model, stage):
    """What the engine does: only the stage's sub-modules require gradients."""
    train = {id(p) for p in _trained_params(model, stage)}
    for p in model.parameters():
        p.requires_grad_(id(p) in train)


def _ctx(recipe, stage, critic=None, vgg=None, **weights):
    w = dict(recipe.default_weights)
    w.update(weights)
    return ObjectiveContext(weights=w, stage=stage, critic=critic, perceptual=vgg,
                            generator=torch.Generator().manual_seed(0))


def _run_stages(model, recipe, batch, steps, lr, critic=None, vgg=None, **weights):
    for stage in recipe.stages:
        _freeze_for(model, stage)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=lr if stage.lr is None else max(stage.lr, lr * stage.lr_scale))
        opt_c = torch.optim.Adam(critic.parameters(), lr=lr) if critic is not None else None
        ctx = _ctx(recipe, stage, critic, vgg, **weights)
        for _ in range(steps[stage.name] if isinstance(steps, dict) else steps):
            for _ in range(stage.critic_steps if critic is not None else 0):
                c_out = recipe.critic_objective(model, critic, batch, ctx)
                opt_c.zero_grad()
                c_out["loss"].backward()
                opt_c.step()
            out = recipe.objectives[stage.objective](model, batch, ctx)
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
    for p in model.parameters():
        p.requires_grad_(True)


def _oi_error(model, batch):
    with torch.no_grad():
        return float(order_invariant_loss(model(batch["blurry"]), batch["sharp"]))


# --- shapes ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("frames", [7, 9])
def test_jin_forward_shape_odd_sizes(frames):
    m = Jin(frames=frames, **TINY_JIN)
    assert m.frames == frames and len(m.pairs) == frames // 2 and m.kind == "video"
    out = m(torch.rand(2, 3, 23, 17))
    assert tuple(out.shape) == (2, frames, 3, 23, 17)
    assert torch.isfinite(out).all()
    assert Jin(**m.model_args).model_args == m.model_args
    with pytest.raises(Exception):
        Jin(frames=8)


@pytest.mark.parametrize("frames", [5, 7, 9])
def test_bringing_alive_forward_shape_any_frames(frames):
    m = BringingAlive(frames=frames, **TINY_BA).eval()
    out = m(torch.rand(1, 3, 21, 19))
    assert tuple(out.shape) == (1, frames, 3, 21, 19) and torch.isfinite(out).all()
    # the decoder unrolls any count, whatever forward() makes
    frames_, flows = m.animate(torch.rand(1, 3, 32, 16), torch.rand(1, 3, 32, 16), frames=3)
    assert tuple(frames_.shape) == (1, 3, 3, 32, 16)
    assert [tuple(f.shape[-2:]) for f in flows] == [(32, 16), (16, 8), (8, 4), (4, 2)]


@pytest.mark.parametrize("frames", [7, 9])
def test_niu_forward_shape_and_discriminator(frames):
    m = NiuNet(frames=frames, **TINY_NIU)
    assert tuple(m(torch.rand(2, 3, 15, 13)).shape) == (2, frames, 3, 15, 13)
    d = NiuDiscriminator(width=4)
    assert tuple(d(torch.rand(3, 3, 24, 20)).shape) == (3,)


def test_warp_and_convlstm_basics():
    img = torch.rand(1, 3, 8, 10)
    assert torch.allclose(warp(img, torch.zeros(1, 2, 8, 10)), img, atol=1e-6)
    flow = torch.zeros(1, 2, 8, 10)
    flow[:, 0] = 1.0  # sample one pixel to the right
    assert torch.allclose(warp(img, flow)[..., :-1], img[..., 1:], atol=1e-5)
    h, c = ConvLSTMCell(3, 5)(img)
    h2, _ = ConvLSTMCell(3, 5)(img, (h, c))
    assert h.shape == h2.shape == (1, 5, 8, 10)


# --- recipes: every trained parameter gets a gradient in its stage ---------------------------------------

def _assert_stage_gradients(model, recipe, batch, **ctx_kw):
    for stage in recipe.stages:
        assert all(hasattr(model, n) for n in stage.train if n != "*"), stage
        _freeze_for(model, stage)
        model.zero_grad(set_to_none=True)
        out = recipe.objectives[stage.objective](model, batch, _ctx(recipe, stage, **ctx_kw))
        assert out["loss"].dim() == 0 and torch.isfinite(out["loss"])
        out["loss"].backward()
        for name, p in model.named_parameters():
            if p.requires_grad:
                assert p.grad is not None, f"{stage.name}: {name} got no gradient"
                assert torch.isfinite(p.grad).all(), f"{stage.name}: {name}"
                assert p.grad.abs().sum() > 0, f"{stage.name}: {name} got a zero gradient"
            else:
                assert p.grad is None, f"{stage.name}: frozen {name} got a gradient"
    for p in model.parameters():
        p.requires_grad_(True)
    assert math.isclose(sum(s.steps_fraction for s in recipe.stages), 1.0, abs_tol=1e-6)


def test_jin_recipe_stage_gradients():
    torch.manual_seed(0)
    m = Jin(**TINY_JIN)
    vgg = VGGPerceptual(layers=("relu2_2", "relu3_3"), pretrained=False)
    _assert_stage_gradients(m, jin_recipe.RECIPE, moving_blobs(2, 7, 20), vgg=vgg)
    assert [s.name for s in jin_recipe.RECIPE.stages] == ["middle", "pair1", "pair2", "pair3", "joint"]
    assert jin_recipe.RECIPE.needs_vgg == ("perceptual",) and jin_recipe.RECIPE.frames == 7
    r9 = jin_recipe.make_recipe(9)
    assert [s.train for s in r9.stages][1:5] == [("pair1",), ("pair2",), ("pair3",), ("pair4",)]


def test_bringing_alive_recipe_stage_gradients():
    torch.manual_seed(0)
    m = BringingAlive(**TINY_BA)
    _assert_stage_gradients(m, ba_recipe.RECIPE, moving_blobs(2, 5, 20), latent=0.1)
    assert ba_recipe.RECIPE.stages[-1].lr == 2e-5 and ba_recipe.RECIPE.default_weights["tv"] == 0.02


def test_niu_recipe_stage_gradients_and_critic():
    torch.manual_seed(0)
    m = NiuNet(**TINY_NIU)
    critic = niu_recipe.RECIPE.critic(m.model_args)
    vgg = VGGPerceptual(layers=niu_recipe.RECIPE.vgg_layers, pretrained=False)
    batch = moving_blobs(2, 7, 24)
    _assert_stage_gradients(m, niu_recipe.RECIPE, batch, critic=critic, vgg=vgg)
    m.zero_grad(set_to_none=True)
    critic.zero_grad(set_to_none=True)
    c_out = niu_recipe.RECIPE.critic_objective(m, critic, batch, _ctx(niu_recipe.RECIPE, None))
    c_out["loss"].backward()
    assert all(p.grad is not None for p in critic.parameters())
    assert all(p.grad is None for p in m.parameters())
    w = niu_recipe.RECIPE.default_weights
    assert (w["adversarial"], w["contiguous"]) == (0.001, 0.1)


def test_recipes_reject_wrong_frame_count():
    batch = moving_blobs(1, 5, 16)
    with pytest.raises(Exception, match="7 frames"):
        niu_recipe.generator_objective(NiuNet(**TINY_NIU), batch, _ctx(niu_recipe.RECIPE, None, contiguous=0.0))
    with pytest.raises(Exception, match="7 frames"):
        jin_recipe.middle_objective(Jin(**TINY_JIN), batch, _ctx(jin_recipe.RECIPE, None, perceptual=0.0))


# --- overfitting a fixed small set: the order-invariant error falls >= 10x -------------------------------

def test_niu_overfits_small_set():
    torch.manual_seed(0)
    batch = moving_blobs(2, 7, 16)
    m = NiuNet(width=12, blocks=1)
    e0 = _oi_error(m, batch)
    _run_stages(m, niu_recipe.RECIPE, batch, steps=150, lr=3e-3, adversarial=0.0, contiguous=0.0)
    assert _oi_error(m, batch) < e0 / 10


@pytest.mark.slow
def test_niu_overfits_with_contiguous_loss():
    # Content + contiguous blurry loss (beta = 0.1) on a textured background: the contextual loss needs
    # distinct patches. The adversarial term stays off: with two samples the discriminator wins at once
    # and the GAN game, not the fit, decides the outcome (its gradients are tested above).
    torch.manual_seed(0)
    batch = moving_blobs(2, 7, 24, textured=True)
    m = NiuNet(width=12, blocks=1)
    e0 = _oi_error(m, batch)
    _run_stages(m, niu_recipe.RECIPE, batch, steps=700, lr=3e-3, adversarial=0.0)
    assert _oi_error(m, batch) < e0 / 10


@pytest.mark.slow
def test_jin_overfits_small_set_stage_by_stage():
    torch.manual_seed(0)
    batch = moving_blobs(2, 7, 20)
    m = Jin(**TINY_JIN)
    e0 = _oi_error(m, batch)
    steps = dict(middle=200, pair1=200, pair2=150, pair3=150, joint=300)
    _run_stages(m, jin_recipe.RECIPE, batch, steps=steps, lr=5e-3, perceptual=0.0)
    assert _oi_error(m, batch) < e0 / 10


@pytest.mark.slow
def test_bringing_alive_overfits_small_set_stage_by_stage():
    torch.manual_seed(0)
    batch = moving_blobs(2, 5, 32)
    m = BringingAlive(frames=5, **TINY_BA)
    e0 = _oi_error(m.eval(), batch)
    m.train()
    steps = dict(deblur=300, autoencoder=300, blur_encoder=300, finetune=150)
    _run_stages(m, ba_recipe.RECIPE, batch, steps=steps, lr=3e-3)
    assert _oi_error(m.eval(), batch) < e0 / 10


# --- frame multiplication --------------------------------------------------------------------------------

def test_span_weights_rows_average_the_right_frames():
    w = span_weights(7, 4)
    assert w.shape == (4, 7)
    assert torch.allclose(w.sum(1), torch.ones(4))
    assert torch.allclose(w[0], torch.tensor([4, 3, 0, 0, 0, 0, 0]) / 7.0)  # [0, 1.75): frame 0, 3/4 of 1


@pytest.mark.parametrize("target", [28, 7, 5, 20])
def test_frame_multiplication_count(target):
    m = NiuNet(**TINY_NIU).eval()
    out = multiply_frames(m, torch.rand(2, 3, 13, 11), target)
    assert tuple(out.shape) == (2, target, 3, 13, 11)


def test_frame_multiplication_keeps_time_order_of_an_oracle():
    # An oracle for a scene whose brightness falls linearly in time (0.01 per first-pass frame). The first
    # pass returns 7 frames; the second gets 4 quarter-exposure blurry images and returns 7 frames inside
    # each quarter, every other one in reversed order: the result must fall steadily over all 28 frames.
    calls = []

    def oracle(blurry):
        calls.append(blurry.shape[0])
        level = blurry.mean(dim=(1, 2, 3)).view(-1, 1)
        step = 0.01 if len(calls) == 1 else 0.01 * 1.75 / 7
        frames = level - step * torch.arange(-3.0, 4.0).view(1, 7)
        if len(calls) > 1:
            frames[1::2] = frames[1::2].flip(1)
        return frames.view(-1, 7, 1, 1, 1).expand(-1, 7, *blurry.shape[1:]).contiguous()

    out = multiply_frames(oracle, torch.full((1, 3, 4, 4), 0.5), 28)
    assert calls == [1, 4]
    values = out.mean(dim=(2, 3, 4))[0]
    diffs = values[1:] - values[:-1]
    assert (diffs < 0).all(), diffs
    # span 0 averages 4/7 of frame 0 (0.53) and 3/7 of frame 1 (0.52); its first sub-frame is 3 steps above
    assert float(values[0]) == pytest.approx((4 * 0.53 + 3 * 0.52) / 7 + 3 * 0.0025, abs=1e-5)
