"""Still photos on camera-shake trajectories (blurtools.synth.stills) through blur-synth."""

from __future__ import annotations

import json

import numpy as np
import torch

from _synth_data import invoke, smooth_texture
from blurtools.io.images import read_array
from blurtools.io.sampleset import SampleSet
from blurtools.ops.crf import from_linear, to_linear
from blurtools.synth.output import encode_png8
from blurtools.synth.pipeline import SynthConfig
from blurtools.synth.stills import StillMaker


def _photo(path, h=40, w=56, seed=3):
    img = smooth_texture(h, w, seed)
    path.write_bytes(encode_png8(img, 1))
    return img


def test_kernels_sum_to_one_and_sharp_mean_matches_blurry(tmp_path):
    img = _photo(tmp_path / "photo.png")
    out = tmp_path / "set"
    r = invoke("blur-synth", tmp_path / "photo.png", "-o", out, "--frames", "7", "--per-still", "3",
               "--trajectory-length", "12", "--seed", "4", "--quiet")
    assert r.returncode == 0, r.stderr
    s = SampleSet(out)
    assert s.ids() == ["photo_000000", "photo_000001", "photo_000002"]
    kernels = []
    for smp in s.samples:
        kernel = np.load(out / smp.extra["kernel"])
        kernels.append(kernel)
        assert kernel.min() >= 0 and abs(kernel.sum() - 1) < 1e-5
        sharp = np.stack([read_array(p) for p in smp.sharp]).astype(np.float64) / 255
        assert np.array_equal(read_array(smp.middle), img)  # the middle frame is the photo itself
        mean = from_linear(torch.from_numpy(sharp ** 2.2).mean(0), "gamma").numpy()
        blurry = read_array(smp.blurry).astype(np.float64) / 255
        diff = np.abs(mean - blurry)[4:-4, 4:-4]
        assert diff.max() < 3 / 255 and diff.mean() < 0.6 / 255
        assert kernel.max() < 0.3 and not np.array_equal(sharp[0], sharp[-1])  # the camera did move
    assert not np.array_equal(kernels[0], kernels[1])  # each sample its own trajectory


def test_same_seed_same_trajectory_and_exposure_fraction():
    cfg = SynthConfig(frames=5, seed=9)
    full = StillMaker(cfg, {"max_length": 20}).trajectory("a_000000")
    again = StillMaker(cfg, {"max_length": 20}).trajectory("a_000000")
    other = StillMaker(cfg, {"max_length": 20}).trajectory("a_000001")
    short = StillMaker(cfg, {"max_length": 20, "exposure": 0.1}).trajectory("a_000000")
    assert torch.equal(full, again) and not torch.equal(full, other)
    length = lambda t: float((t[1:] - t[:-1]).norm(dim=1).sum())
    assert abs(length(full) - 20) < 1e-6 and abs(length(short) - 2) < 0.1


def test_dense_exposure_mean_is_the_blur():
    """phase-code's sub-exposures of a still average to blur-synth's blurry image."""
    cfg = SynthConfig(frames=5, interp=2)
    img = smooth_texture(32, 40, 1)
    maker = StillMaker(cfg, {"max_length": 10})
    dense = maker.exposure_dense(img, "x_000000", 0)
    assert dense.length == 9
    blur = StillMaker(SynthConfig(frames=5), {"max_length": 10}).exposure_for_blur(img, "x_000000", 0)
    mean = torch.stack(list(dense.dense())).mean(0)
    assert (mean - blur.average()).abs().max() < 1e-5
    assert all(np.array_equal(a, b) for a, b in zip(dense.sharp, blur.sharp))


def test_folder_of_photos_with_stills_flag(tmp_path):
    (tmp_path / "photos").mkdir()
    for i in range(2):
        _photo(tmp_path / "photos" / f"p{i}.png", seed=i)
    r = invoke("blur-synth", tmp_path / "photos", "--stills", "-o", tmp_path / "set", "--frames", "3",
               "--trajectory-length", "6", "--json", "--quiet")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["written"] == 2
    assert SampleSet(tmp_path / "set").ids() == ["photos-p0_000000", "photos-p1_000000"]


def test_shifted_frames_keep_the_photos_detail():
    """Frames away from the middle are moved by sub-pixel amounts without low-passing the ground truth.

    Against an exact (Fourier) shift of the photo by the frame's own offset, bicubic frames stay within
    about one level rms on a fine texture; a bilinear shift, which this guards against, is 3x as far off.
    """
    import math

    from scipy.ndimage import gaussian_filter

    from blurtools.ops.trajectory import trajectory_offsets

    rng = np.random.default_rng(5)
    h = w = 64
    texture = gaussian_filter(rng.normal(0.5, 0.3, (h, w, 3)), (1.0, 1.0, 0))   # detail up to ~1/4 cycle/px
    img = (np.clip(texture, 0, 1) * 255).round().astype(np.uint8)
    cfg = SynthConfig(frames=7, seed=2, crf="linear")
    maker = StillMaker(cfg, {"max_length": 6})
    exp = maker.exposure_for_blur(img, "t_000000", 0)
    off = trajectory_offsets(maker.trajectory("t_000000"), 7).double()
    spec = np.fft.fft2(img.astype(np.float64) / 255, axes=(0, 1))
    fy, fx = np.fft.fftfreq(h)[:, None, None], np.fft.fftfreq(w)[None, :, None]
    errors = []
    for j in (0, 1, 5, 6):
        dx, dy = float(off[j, 0]), float(off[j, 1])
        if min(abs(dx - round(dx)), abs(dy - round(dy))) < 0.1:
            continue   # nearly whole-pixel shifts say nothing about interpolation
        exact = np.real(np.fft.ifft2(spec * np.exp(-2j * math.pi * (fx * dx + fy * dy)), axes=(0, 1)))
        frame = exp.sharp[j].astype(np.float64) / 255
        m = 8  # away from the borders (the Fourier shift wraps around, the frame repeats its edge)
        errors.append(np.sqrt(np.mean((frame - exact)[m:-m, m:-m] ** 2)))
    assert errors, "no frame with a clearly fractional shift; pick another seed"
    assert max(errors) < 0.007, errors   # bicubic ~0.004, bilinear ~0.013
