"""The default extract-video's frames: exact sub-pixel shifts, the path read off a known blur, centring, the
physics check (the frames re-blur to the input), a still video without blur, and the whole pipeline on a
photo blurred along a known straight path with the shipped weights."""

import sys
from pathlib import Path

import pytest
import torch

from blurtools.infer.classical import linear_motion_kernel
from blurtools.infer.motion_video import kernel_offset, motion_positions, place_frames, reblur_psnr
from blurtools.ops.crf import from_linear, to_linear
from blurtools.ops.filters import fft_conv2d
from blurtools.ops.fourier_shift import fourier_shift
from blurtools.ops.warp import shift

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from motion_measures import extent, frame_positions, gradient_ratio  # noqa: E402


def _photo(size=192):
    """A central crop of scikit-image's camera (a sharp photo), (1, 3, size, size) in [0, 1]."""
    from skimage.data import camera

    a = torch.from_numpy(camera()).float() / 255
    t = (a.shape[0] - size) // 2
    return a[t:t + size, t:t + size][None, None].expand(1, 3, -1, -1).contiguous()


def _blur(sharp, kernel):
    return from_linear(fft_conv2d(to_linear(sharp, "gamma:2.2"), kernel), "gamma:2.2")


def test_fourier_shift_is_exact_on_whole_pixels_and_keeps_detail_on_half_pixels():
    x = _photo(96)
    moved = fourier_shift(x, [[3.0, -2.0], [0.5, 0.5]])
    assert moved.shape == (2, 3, 96, 96)
    assert torch.allclose(moved[0, :, 12:-12, 12:-12], x[0, :, 14:-10, 9:-15], atol=1e-4)
    xs = torch.arange(96, dtype=torch.float64)
    wave = lambda d: torch.cos(2 * torch.pi * 0.37 * (xs - d))[None, None, None].expand(1, 1, 96, 96)   # noqa: E731
    fine = fourier_shift(wave(0.0), [[0.5, 0.0]])[0, 0, 20:-20, 20:-20]
    cubic = shift(wave(0.0), 0.5, 0.0, mode="bicubic")[0, 0, 20:-20, 20:-20]
    truth = wave(0.5)[0, 0, 20:-20, 20:-20]
    # a fine pattern (0.37 cycles/px) moved by half a pixel: exact, where bicubic loses a quarter of it
    assert (fine - truth).abs().max() < 0.02 and (cubic - truth).abs().max() > 0.1
    exact = min(gradient_ratio(moved[1:], x))
    bilinear = min(gradient_ratio(shift(x, 0.5, 0.5), x))
    assert exact > 0.98 and bilinear < 0.9          # bilinear interpolation halves the finest detail


def test_positions_follow_a_straight_blur_left_to_right_and_stand_still_without_evidence():
    k = linear_motion_kernel(14, 0)                 # 14 px, horizontal
    pos = motion_positions(k, 7, 1.0)
    assert pos.shape == (7, 2)
    assert torch.all(pos[1:, 0] > pos[:-1, 0]) and pos[:, 1].abs().max() < 0.3
    assert abs(float(pos[-1, 0] - pos[0, 0]) - 14 * 6 / 7) < 1.0 and abs(float(pos[:, 0].mean())) < 0.3
    diagonal = motion_positions(linear_motion_kernel(14, 45), 7, 1.0)   # 45 deg: up and to the right
    assert torch.all(diagonal[1:, 0] > diagonal[:-1, 0]) and torch.all(diagonal[1:, 1] < diagonal[:-1, 1])
    assert motion_positions(k, 7, 0.0).abs().max() == 0
    half = motion_positions(k, 7, 0.5, offset=(2.0, 0.0))
    assert torch.allclose(half, pos * 0.5 - torch.tensor([1.0, 0.0], dtype=half.dtype))


def test_offset_of_a_moved_sharp_image_is_measured_through_the_blur():
    x = _photo()
    k = linear_motion_kernel(11, 30)
    blurry = _blur(x, k)
    dx, dy = kernel_offset(fourier_shift(x, [[2.0, -1.0]]).clamp(0, 1), blurry, k, "gamma:2.2")
    assert abs(dx - 2.0) < 0.3 and abs(dy + 1.0) < 0.3


def test_frames_along_the_true_path_reblur_to_the_input_and_stay_sharp():
    x = _photo()
    k = linear_motion_kernel(12, 0)
    blurry = _blur(x, k)
    frames = place_frames(x, motion_positions(k, 7, 1.0))
    still = place_frames(x, motion_positions(k, 7, 0.0))
    # 7 sharp copies 2 px apart approximate the continuous 12 px blur, far closer than the sharp image does
    assert reblur_psnr(frames, blurry, "gamma:2.2") > reblur_psnr(still, blurry, "gamma:2.2") + 5
    assert min(gradient_ratio(frames, x)) > 0.97
    assert torch.equal(still[0], still[-1])
    pos = frame_positions(frames)                   # registration sees the motion the positions asked for
    assert torch.all(pos[1:, 0] > pos[:-1, 0]) and abs(extent(frames) - 12 * 6 / 7) < 1.0


@pytest.mark.slow
def test_default_video_moves_along_a_known_blur_with_the_shipped_weights(tmp_path):
    """The whole default pipeline: a 16 px horizontal blur gives frames spanning most of it, left to right,
    each as sharp as the default deblur's output; the sharp photo itself gives a video that moves far
    less."""
    from blurtools.infer.predict import InferOptions, deblur_image
    from blurtools.infer.extract import extract_video
    from blurtools.infer.loading import load_predictor

    x = _photo(256)
    k = linear_motion_kernel(16, 0)
    blurry = _blur(x, k)[0]
    video = load_predictor("video")
    record = {}
    frames = extract_video(video, blurry, out_dtype=torch.float32, record=record)
    assert frames.shape == (7, 3, 256, 256) and record["motion"]["evidence"] > 0.5
    pos = frame_positions(frames)
    assert torch.all(pos[1:, 0] > pos[:-1, 0]) and pos[:, 1].abs().max() < 1.5
    assert extent(frames) > 0.6 * 16 * 6 / 7
    deblurred = deblur_image(load_predictor("image"), blurry, InferOptions())[None]
    assert min(gradient_ratio(frames, deblurred)) > 0.9
    assert record["motion"]["reblur_psnr_db"] > 30
    still = extract_video(video, x[0], out_dtype=torch.float32, record=record)
    assert extent(still) < 0.3 * extent(frames)
