"""losses.shift_tolerant: the target moved by the best integer shift, per sample, without gradient."""

import pytest
import torch

from blurtools.errors import BlurtoolsError
from blurtools.losses.shift_tolerant import align_target
from blurtools.train.recipe import ObjectiveContext
from blurtools.train.recipes import dm as r_dm


def test_each_sample_gets_its_own_shift_and_frames_move_together():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 3, 40, 36, generator=g)            # (B, N, C, H, W)
    pred = torch.stack([torch.roll(target[0], (2, -3), (-2, -1)), torch.roll(target[1], (-1, 4), (-2, -1))])
    aligned, inner = align_target(pred, target, radius=4)
    assert aligned.shape == inner.shape == (2, 3, 3, 32, 28)
    assert torch.equal(aligned, inner)
    plain = (pred - target)[..., 4:-4, 4:-4].abs().mean()
    assert plain > 0.1                                           # unaligned, the two differ a lot


def test_gradient_reaches_the_prediction_only_and_radius_zero_is_plain():
    target = torch.rand(1, 3, 20, 20)
    pred = torch.rand(1, 3, 20, 20, requires_grad=True)
    aligned, inner = align_target(pred, target, 2)
    (inner - aligned).abs().mean().backward()
    assert pred.grad is not None and pred.grad[..., :2, :].abs().sum() == 0
    t0, p0 = align_target(pred, target, 0)
    assert t0 is target and p0 is pred
    with pytest.raises(BlurtoolsError, match="radius"):
        align_target(pred, target, 10)
    with pytest.raises(BlurtoolsError, match="shape"):
        align_target(pred, target[..., 1:], 1)


def test_dm_recipe_with_shift_ignores_a_translated_target():
    """A model that outputs the sharp frame moved by 2 px has zero shift-tolerant loss, but not a plain one."""
    g = torch.Generator().manual_seed(1)
    sharp = torch.rand(2, 3, 3, 24, 24, generator=g)
    batch = {"blurry": torch.rand(2, 3, 24, 24, generator=g), "sharp": sharp}

    def model(_):
        return torch.roll(sharp[:, 1], (2, 0), (-2, -1))

    def ctx(**w):
        return ObjectiveContext(weights={"l1": 1.0, **w}, critic=None, perceptual=None,
                                generator=torch.Generator().manual_seed(0))
    assert float(r_dm.objective(model, batch, ctx(shift=3))["l1"]) == 0.0
    assert float(r_dm.objective(model, batch, ctx())["l1"]) > 0.1
