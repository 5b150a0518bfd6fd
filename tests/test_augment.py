"""Joint augmentation: alignment of input and targets, determinism, input-only corruptions."""

import itertools

import numpy as np
import pytest
import torch

from blurtools.data.augment import Augment, Plan, center_crop_box, random_crop_box, sample_rng
from blurtools.errors import BlurtoolsError


def scene(n=5, h=12, w=12, seed=0):
    """A blurry image that is exactly the mean of its frames (the property augmentation must keep)."""
    g = torch.Generator().manual_seed(seed)
    sharp = torch.rand(n, 3, h, w, generator=g)
    return sharp.mean(0), sharp


ALL_PLANS = [Plan(hflip=a, vflip=b, rot90=k, reverse=r)
             for a, b, k, r in itertools.product([False, True], [False, True], range(4), [False, True])]


@pytest.mark.parametrize("plan", ALL_PLANS, ids=lambda p: f"h{int(p.hflip)}v{int(p.vflip)}r{p.rot90}t{int(p.reverse)}")
def test_every_joint_transform_keeps_blurry_the_mean_of_its_frames(plan):
    blurry, sharp = scene()
    b, s = plan.apply_joint(blurry, sharp)
    assert b.shape == blurry.shape and s.shape == sharp.shape
    assert torch.allclose(b, s.mean(0), atol=1e-6)
    # and the transform is a real one: content moved unless it is the identity
    if (plan.hflip, plan.vflip, plan.rot90 % 4) not in ((False, False, 0), (True, True, 2)):
        assert not torch.equal(b, blurry)


def test_mean_property_survives_random_augmentation_with_crops():
    blurry, sharp = scene(n=7, h=20, w=16)
    aug = Augment()
    seen = set()
    for i in range(40):
        b, s = aug(blurry, sharp, sample_rng(3, 0, i), patch=8)
        assert b.shape == (3, 8, 8) and s.shape == (7, 3, 8, 8)
        assert torch.allclose(b, s.mean(0), atol=1e-6)
        plan = aug.draw(sample_rng(3, 0, i), 8, 8)
        seen.add((plan.hflip, plan.vflip, plan.rot90, plan.reverse))
    assert len(seen) > 10  # the draws cover many combinations


def test_a_marker_stays_at_the_same_place_in_input_and_every_frame():
    blurry = torch.zeros(3, 9, 9)
    sharp = torch.zeros(4, 3, 9, 9)
    blurry[:, 2, 6] = 1
    sharp[:, :, 2, 6] = 1
    for plan in ALL_PLANS:
        b, s = plan.apply_joint(blurry, sharp)
        where = (b[0] == 1).nonzero().tolist()
        assert len(where) == 1
        for k in range(4):
            assert (s[k, 0] == 1).nonzero().tolist() == where


@pytest.mark.parametrize("plan", ALL_PLANS[::3])
def test_numpy_views_match_torch_transforms(plan):
    blurry, sharp = scene(n=3, h=6, w=6)
    bt, st = plan.apply_joint(blurry, sharp)
    bn, sn = plan.apply_joint_hwc(blurry.permute(1, 2, 0).numpy(), sharp.permute(0, 2, 3, 1).numpy())
    assert torch.equal(torch.from_numpy(np.ascontiguousarray(bn)).permute(2, 0, 1), bt)
    assert torch.equal(torch.from_numpy(np.ascontiguousarray(sn)).permute(0, 3, 1, 2), st)


def test_time_reversal_reverses_targets_only():
    blurry, sharp = scene()
    b, s = Plan(reverse=True).apply_joint(blurry, sharp)
    assert torch.equal(b, blurry)
    assert torch.equal(s, sharp.flip(0))


def test_input_corruptions_touch_the_input_alone_and_come_after_the_joint_ones():
    blurry, sharp = scene(h=32, w=32)
    aug = Augment(noise_sigma=0.05)
    rng_a, rng_b = sample_rng(0, 0, 1), sample_rng(0, 0, 1)
    b, s = aug(blurry, sharp, rng_a)
    plan = aug.draw(rng_b, 32, 32)
    jb, js = plan.apply_joint(blurry, sharp)
    assert torch.equal(s, js)  # targets: joint transforms only
    noise = b - jb
    assert 0.02 < noise.std() < 0.08
    assert b.min() >= 0 and b.max() <= 1


def test_noise_is_deterministic_per_sample_and_epoch():
    blurry, sharp = scene(h=16, w=16)
    aug = Augment(noise_sigma=(0.01, 0.05), shot=(0, 0.01), quantize=8)
    a = aug(blurry, sharp, sample_rng(7, 2, 5))
    b = aug(blurry, sharp, sample_rng(7, 2, 5))
    c = aug(blurry, sharp, sample_rng(7, 3, 5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert torch.equal((a[0] * 255).round() / 255, a[0])  # quantised back to 8-bit levels


def test_switching_noise_off_keeps_the_geometric_draws():
    for i in range(20):
        p1 = Augment().draw(sample_rng(0, 0, i), 8, 8)
        p2 = Augment(noise_sigma=0.1, noise_prob=0.5).draw(sample_rng(0, 0, i), 8, 8)
        assert (p1.hflip, p1.vflip, p1.rot90, p1.reverse) == (p2.hflip, p2.vflip, p2.rot90, p2.reverse)


def test_non_square_images_only_turn_by_half_turns():
    blurry, sharp = scene(h=6, w=10)
    for i in range(30):
        plan = Augment().draw(sample_rng(0, 0, i), 6, 10)
        assert plan.rot90 in (0, 2)
        b, s = plan.apply(blurry, sharp)
        assert b.shape == (3, 6, 10) and s.shape[-2:] == (6, 10)


def test_none_draws_nothing():
    blurry, sharp = scene()
    b, s = Augment.none()(blurry, sharp, sample_rng(0, 0, 0))
    assert torch.equal(b, blurry) and torch.equal(s, sharp)


def test_crop_boxes():
    rng = sample_rng(0, 0, 0)
    boxes = {random_crop_box(rng, 10, 12, 4) for _ in range(50)}
    assert all(0 <= y <= 6 and 0 <= x <= 8 and (h, w) == (4, 4) for y, x, h, w in boxes)
    assert len(boxes) > 10
    assert center_crop_box(10, 12, (4, 6)) == (3, 3, 4, 6)
    assert random_crop_box(rng, 10, 12, None) == (0, 0, 10, 12)
    with pytest.raises(BlurtoolsError, match="smaller than the patch"):
        random_crop_box(rng, 10, 12, 16)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(BlurtoolsError, match="sharp frames"):
        Plan().apply_joint(torch.rand(3, 4, 4), torch.rand(2, 3, 5, 4))
    with pytest.raises(BlurtoolsError, match="expected blurry"):
        Plan().apply_joint(torch.rand(4, 4), torch.rand(2, 3, 4, 4))
    with pytest.raises(BlurtoolsError, match="noise_sigma"):
        Augment(noise_sigma=(0.2, 0.1))
    with pytest.raises(BlurtoolsError, match="quantize"):
        Augment(quantize=7)
