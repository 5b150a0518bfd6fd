"""Order-invariant video scoring: order choice, invariance under reversal, middle frame, errors."""

import lpips
import pytest
import torch

from blurtools.errors import BlurtoolsError, UsageError
from blurtools.metrics.image import compute_image_metrics
from blurtools.metrics.lpips_metric import LpipsMetric
from blurtools.metrics.psnr import psnr
from blurtools.metrics.video import VideoScore, score_video


def sequence(n, h=24, w=28, seed=0):
    """A moving bright bar on a textured background (frames clearly differ), and a noisy prediction."""
    g = torch.Generator().manual_seed(seed)
    bg = torch.rand(3, h, w, generator=g) * 0.5
    gt = bg.repeat(n, 1, 1, 1)
    for i in range(n):
        gt[i, :, :, 2 + 3 * i : 5 + 3 * i] = 0.95
    pred = (gt + 0.03 * torch.randn(gt.shape, generator=g)).clamp(0, 1)
    return pred, gt


@pytest.mark.parametrize("n", [7, 6])
def test_reversed_prediction_chooses_reversed_with_same_scores(n):
    pred, gt = sequence(n)
    fwd = score_video(pred, gt, data_range=255)
    rev = score_video(pred.flip(0), gt, data_range=255)
    assert isinstance(fwd, VideoScore)
    assert fwd.order == "forward" and rev.order == "reversed"
    assert fwd.frames == rev.frames == n
    for field in ("psnr", "ssim", "middle_psnr", "middle_ssim", "frame_psnr"):
        assert getattr(fwd, field) == getattr(rev, field)
    assert fwd.lpips is None and fwd.middle_lpips is None


def test_means_and_middle_frame_match_per_image_metrics():
    pred, gt = sequence(7, seed=1)
    score = score_video(pred, gt, data_range=255, ssim_mode="matlab3d", crop_border=1)
    per = compute_image_metrics(pred, gt, data_range=255, ssim_mode="matlab3d", crop_border=1)
    assert score.psnr == pytest.approx(per["psnr"].mean().item(), abs=1e-12)
    assert score.ssim == pytest.approx(per["ssim"].mean().item(), abs=1e-12)
    assert score.middle_psnr == per["psnr"][3].item()
    assert score.middle_ssim == per["ssim"][3].item()
    assert score.frame_psnr == tuple(per["psnr"].tolist())
    assert score.as_dict()["frame_psnr"] == list(score.frame_psnr)


def test_order_is_picked_once_by_mean_psnr_not_per_frame():
    # Frame 0 matches better forwards, but the sequence as a whole is best reversed: every frame,
    # frame 0 included, must then be scored reversed.
    pred, gt = sequence(5, seed=2)
    mixed = pred.flip(0).clone()
    g = torch.Generator().manual_seed(9)
    mixed[0] = (gt[0] + 0.005 * torch.randn(gt[0].shape, generator=g)).clamp(0, 1)
    score = score_video(mixed, gt, data_range=255)
    fwd = psnr(mixed, gt, data_range=255)
    rev = psnr(mixed.flip(0), gt, data_range=255)
    assert fwd[0] > rev[0] and rev.mean() > fwd.mean()
    assert score.order == "reversed"
    assert score.frame_psnr == tuple(rev.tolist())


def test_even_length_middle_frame_aligns_with_chosen_order():
    pred, gt = sequence(4, seed=3)
    rev = score_video(pred.flip(0), gt, data_range=255)
    per = compute_image_metrics(pred, gt, data_range=255)
    assert rev.middle_psnr == per["psnr"][2].item()


def test_lpips_is_reported_under_the_chosen_order():
    torch.manual_seed(3)
    module = lpips.LPIPS(net="alex", version="0.1", verbose=False, pretrained=True, pnet_rand=True)
    metric = LpipsMetric.from_module(module)
    pred, gt = sequence(3, h=40, w=44, seed=4)
    fwd = score_video(pred, gt, data_range=255, lpips=metric)
    rev = score_video(pred.flip(0), gt, data_range=255, lpips=metric)
    assert rev.order == "reversed"
    assert fwd.lpips == pytest.approx(rev.lpips, abs=1e-9)
    assert fwd.middle_lpips == pytest.approx(rev.middle_lpips, abs=1e-9)
    assert fwd.lpips > 0


def test_frame_count_mismatch_and_bad_shapes():
    pred, gt = sequence(7)
    with pytest.raises(BlurtoolsError, match="7 frames.*6"):
        score_video(pred, gt[:6])
    with pytest.raises(UsageError, match=r"\(N, C, H, W\)"):
        score_video(pred[None], gt[None])
