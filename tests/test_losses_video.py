"""Losses of the video-from-one-blurry-image models: order-invariant, total variation, contextual."""

import pytest
import torch
import torch.nn.functional as F

from blurtools.errors import BlurtoolsError
from blurtools.losses.contextual import (contextual_image_loss, contextual_loss, contiguous_blurry_loss,
                                         contiguous_windows, image_patches)
from blurtools.losses.order_invariant import best_order, order_invariant_loss, pair_loss
from blurtools.losses.smoothness import multiscale_total_variation, total_variation


def _smooth(shape, seed):
    # Smooth random images: natural-image-like, so a small shift changes patches only a little.
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(*shape[:-2], shape[-2] // 4 + 2, shape[-1] // 4 + 2, generator=g)
    x = F.interpolate(x.reshape(-1, 3, *x.shape[-2:]), size=shape[-2:], mode="bicubic", align_corners=False)
    return x.reshape(shape).clamp(0, 1)


# --- order-invariant -------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [7, 9, 6])
def test_order_invariant_unchanged_when_target_reversed(n):
    g = torch.Generator().manual_seed(n)
    pred = torch.rand(2, n, 3, 8, 9, generator=g)
    gt = torch.rand(2, n, 3, 8, 9, generator=g)
    a = order_invariant_loss(pred, gt)
    b = order_invariant_loss(pred, gt.flip(1))
    assert a > 0.05
    assert torch.allclose(a, b, atol=1e-7)
    assert torch.allclose(order_invariant_loss(pred.flip(1), gt), a, atol=1e-7)


def test_order_invariant_zero_for_either_direction_and_positive_for_a_shuffle():
    gt = torch.rand(1, 7, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    assert float(order_invariant_loss(gt, gt)) == 0.0
    assert float(order_invariant_loss(gt.flip(1), gt)) == 0.0
    shuffled = gt[:, [1, 0, 2, 3, 4, 5, 6]]  # a non-symmetric swap is an error
    assert float(order_invariant_loss(shuffled, gt)) > 0.01


def test_pair_loss_symmetric_and_offsets_select_pairs():
    g = torch.Generator().manual_seed(2)
    pa, pb, ta, tb = (torch.rand(2, 3, 5, 5, generator=g) for _ in range(4))
    assert torch.allclose(pair_loss(pa, pb, ta, tb), pair_loss(pb, pa, ta, tb))
    assert torch.allclose(pair_loss(pa, pb, ta, tb), pair_loss(pa, pb, tb, ta))
    pred = torch.rand(1, 7, 3, 4, 4, generator=g)
    gt = pred.clone()
    gt[:, 0] += 0.5  # only the outer pair differs
    assert float(order_invariant_loss(pred, gt, offsets=[1, 2])) == 0.0
    assert float(order_invariant_loss(pred, gt, offsets=[3])) > 0
    with pytest.raises(BlurtoolsError):
        order_invariant_loss(pred, gt, offsets=[4])
    with pytest.raises(BlurtoolsError):
        order_invariant_loss(pred, gt[:, :5])


def test_order_invariant_gradient_reaches_prediction():
    pred = torch.rand(1, 5, 3, 4, 4, requires_grad=True)
    order_invariant_loss(pred, torch.rand(1, 5, 3, 4, 4)).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_best_order_picks_the_closer_direction_per_sample():
    gt = torch.rand(2, 5, 3, 4, 4, generator=torch.Generator().manual_seed(3))
    pred = torch.stack((gt[0].flip(0), gt[1]))
    assert torch.equal(best_order(pred, gt), gt)


# --- total variation -------------------------------------------------------------------------------------

def test_tv_zero_on_constant_flow_and_positive_otherwise():
    const = torch.ones(2, 2, 9, 7) * torch.tensor([1.5, -3.0]).view(1, 2, 1, 1)
    assert float(total_variation(const)) == 0.0
    assert float(total_variation(torch.ones(2, 5, 2, 8, 8))) == 0.0
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 2, 8, 8)
    assert float(total_variation(ramp)) == pytest.approx(1.0)  # unit steps along x, none along y
    pyramid = [ramp, F.avg_pool2d(ramp, 2)]
    assert float(multiscale_total_variation(pyramid, (1.0, 0.0))) == pytest.approx(1.0)
    with pytest.raises(BlurtoolsError):
        multiscale_total_variation(pyramid, (1.0,))


# --- contextual ------------------------------------------------------------------------------------------

def test_contextual_lower_for_shifted_copy_than_for_different_image():
    x = _smooth((2, 3, 32, 32), 0)
    other = _smooth((2, 3, 32, 32), 1)
    shifted = torch.roll(x, shifts=(1, 2), dims=(2, 3))
    near = contextual_image_loss(shifted, x)
    far = contextual_image_loss(other, x)
    assert float(contextual_image_loss(x, x)) == pytest.approx(0.0, abs=1e-5)
    assert near < 0.5 * far
    # the same holds on feature maps (no patches) and without the spatial term
    assert contextual_loss(shifted, x, spatial_weight=0.0) < contextual_loss(other, x, spatial_weight=0.0)


def test_contextual_spatial_term_penalises_displacement():
    x = _smooth((1, 3, 24, 24), 4)
    shifted = torch.roll(x, shifts=6, dims=3)
    no_sp = contextual_image_loss(shifted, x, spatial_weight=0.0)
    with_sp = contextual_image_loss(shifted, x, spatial_weight=1.0)
    assert with_sp > no_sp


def test_contextual_shapes_pooling_and_gradient():
    x = torch.rand(1, 4, 40, 40, requires_grad=True)
    y = torch.rand(1, 4, 40, 40)
    loss = contextual_loss(x, y, max_positions=100)  # pooled 40 -> 20 -> 10
    loss.backward()
    assert loss.dim() == 0 and x.grad.abs().sum() > 0
    assert tuple(image_patches(torch.rand(2, 3, 11, 9), 5, 2).shape) == (2, 75, 4, 3)
    with pytest.raises(BlurtoolsError):
        contextual_loss(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5))


def test_contiguous_windows_and_loss():
    assert contiguous_windows(7, 3, 2) == [(0, 3), (2, 5), (4, 7)]
    assert contiguous_windows(8, 3, 2) == [(0, 3), (2, 5), (4, 7), (5, 8)]
    assert contiguous_windows(2, 3, 2) == [(0, 2)]
    seq = _smooth((1, 7, 3, 24, 24), 5)
    other = _smooth((1, 7, 3, 24, 24), 6)
    assert float(contiguous_blurry_loss(seq, seq)) == pytest.approx(0.0, abs=1e-5)
    assert contiguous_blurry_loss(torch.roll(seq, 1, dims=4), seq) < contiguous_blurry_loss(other, seq)
    feats = lambda img: (img, F.avg_pool2d(img, 2))  # noqa: E731 - any feature extractor works
    assert float(contiguous_blurry_loss(other, seq, features=feats)) > 0
