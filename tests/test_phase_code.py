"""phase-code: the coded acquisition, its reductions and properties, the PSF subcommand, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _synth_data import invoke, moving, write_folder
from blurtools.io.images import read_array
from blurtools.io.sampleset import SampleSet
from blurtools.ops.phase_psf import phase_psf_stack, psf_radius, sweep_psis
from blurtools.synth.phase_coding import CodedExposure, coded_exposure_reference


@pytest.mark.parametrize("pad", ["reflect", "zeros", "replicate"])
@pytest.mark.parametrize("h, w, kh, kw", [(29, 41, 7, 9), (64, 80, 6, 8), (5, 6, 7, 7)])
def test_fourier_sum_equals_batched_fft_conv2d(pad, h, w, kh, kw):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, h, w, generator=g)
    psf = torch.rand(5, 3, kh, kw, generator=g)
    psf = psf / psf.sum(dim=(-2, -1), keepdim=True)
    ref = coded_exposure_reference(x, psf, pad=pad)
    for chunk in (16, 2):
        assert (CodedExposure(psf, pad=pad, chunk=chunk)(x) - ref).abs().max() < 1e-5
    with pytest.raises(Exception, match="instants"):
        CodedExposure(psf)(x[:4])


def test_psfs_sum_to_one_and_image_mean_is_preserved():
    stack = phase_psf_stack(sweep_psis(-4, 10, 7))
    assert torch.allclose(stack.sum(dim=(-2, -1)), torch.ones(7, 3), atol=1e-5)
    x = torch.zeros(7, 3, 60, 70)
    x[..., 15:-15, 15:-15] = torch.rand(7, 3, 30, 40, generator=torch.Generator().manual_seed(1))
    y = CodedExposure(stack, pad="zeros")(x)  # the dark margin catches every PSF's spread
    assert torch.allclose(y.sum(dim=(-2, -1)), x.mean(0).sum(dim=(-2, -1)), rtol=1e-4)
    assert y.min() > -1e-6


def test_psf_sizes_differ_by_channel_and_grow_with_psi():
    r = psf_radius(phase_psf_stack(torch.tensor([0.0, 3.0, 6.0]), mask="none").double())  # (3 psi, 3 ch)
    assert (r[1] > r[0]).all() and (r[2] > r[1]).all()
    coded = psf_radius(phase_psf_stack(torch.tensor([0.0]), mask="ring").double())[0]
    assert coded.max() - coded.min() > 0.5  # the ring mask makes colours focus differently


def _dot_streak(direction: int, stack: torch.Tensor) -> torch.Tensor:
    x = torch.zeros(7, 3, 41, 81)
    for k in range(7):
        x[k, :, 20, 40 + direction * 4 * (k - 3)] = 1.0
    return CodedExposure(stack, pad="zeros")(x)


def _centroids(y: torch.Tensor) -> torch.Tensor:
    """Per-channel x centroid of the squared streak: where each colour is concentrated (in focus)."""
    w = (y ** 2).sum(dim=1)  # (3, W)
    xs = torch.arange(y.shape[-1], dtype=y.dtype)
    return (w * xs).sum(-1) / w.sum(-1)


def test_moving_dot_colour_order_reverses_with_motion():
    stack = phase_psf_stack(sweep_psis(-4, 10, 7))
    fwd, back = _centroids(_dot_streak(1, stack)), _centroids(_dot_streak(-1, stack))
    assert (fwd - fwd.mean()).abs().max() > 1.0  # the colours separate along the streak
    assert torch.argsort(fwd).tolist() == torch.argsort(back).flip(0).tolist()
    # the plain-intensity centroids coincide: every PSF keeps the light, it only spreads it differently
    w = _dot_streak(1, stack).sum(dim=1)
    c = (w * torch.arange(81.0)).sum(-1) / w.sum(-1)
    assert (c - 40).abs().max() < 1e-3


def _run_both(tmp_path, extra_phase, frames=7, size=(32, 40)):
    src = write_folder(tmp_path / "f", moving(frames, h=size[0], w=size[1], step=1))
    r1 = invoke("blur-synth", src, "-o", tmp_path / "plain", "--frames", frames, "--quiet")
    r2 = invoke("phase-code", src, "-o", tmp_path / "coded", "--frames", frames, "--quiet", *extra_phase)
    assert r1.returncode == 0, r1.stderr
    assert r2.returncode == 0, r2.stderr
    a = read_array(tmp_path / "plain" / "blurry" / "f_000000.png").astype(int)
    b = read_array(tmp_path / "coded" / "blurry" / "f_000000.png").astype(int)
    return a, b


def test_delta_stack_reduces_exactly_to_blur_synth(tmp_path):
    delta = np.zeros((4, 5, 5, 3), np.float32)
    delta[:, 2, 2, :] = 1.0
    np.save(tmp_path / "delta.npy", delta)  # 4 instants, resampled in time to the 7 of the window
    a, b = _run_both(tmp_path, ["--psf-stack", tmp_path / "delta.npy"])
    assert np.abs(a - b).max() <= 1 and (a == b).mean() > 0.99


def test_clear_pupil_without_sweep_is_nearly_blur_synth(tmp_path):
    # --mask none, psi 0: the diffraction-limited PSF; with 8 um pixels it is under a pixel wide
    a, b = _run_both(tmp_path, ["--mask", "none", "--psi0", "0", "--psi1", "0", "--pixel-pitch", "8"])
    inner = np.abs(a - b)[13:-13, 13:-13]
    assert inner.max() <= 2 and inner.mean() < 0.5


def test_set_layout_shared_psf_and_meta(tmp_path):
    src = write_folder(tmp_path / "f", moving(10, h=24, w=32))
    out = tmp_path / "set"
    r = invoke("phase-code", src, "-o", out, "--frames", "5", "--psf-size", "15", "--json", "--quiet",
               "--png", tmp_path / "strip.png")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["written"] == 2
    stack = np.load(out / "psf" / "stack.npy")
    assert stack.shape == (5, 15, 15, 3) and np.allclose(stack.sum(axis=(1, 2)), 1, atol=1e-5)
    assert (out / "psf" / "stack.png").is_file() and (tmp_path / "strip.png").is_file()
    s = SampleSet(out)
    assert all(smp.extra["psf"] == "psf/stack.npy" for smp in s.samples)
    meta = json.loads((out / "meta.json").read_text())
    opts = meta["options"]
    assert meta["tool"] == "phase-code" and opts["optics"]["psi0"] == 1.0 and opts["optics"]["mask"] == "ring"
    assert opts["instants"] == 5 and len(opts["psf_sha256"]) == 64
    # the written stack fed back gives the same blurry images
    r = invoke("phase-code", src, "-o", tmp_path / "again", "--frames", "5", "--psf-stack", out / "psf" / "stack.npy", "--quiet")
    assert r.returncode == 0, r.stderr
    for smp in s.samples:
        assert np.array_equal(read_array(smp.blurry), read_array(tmp_path / "again" / "blurry" / f"{smp.id}.png"))


def test_psf_subcommand_writes_stack_and_strip(tmp_path):
    r = invoke("phase-code", "psf", "-o", tmp_path / "stack.npy", "--png", tmp_path / "strip.png", "--frames", "5",
               "--psf-size", "21", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    stack = np.load(tmp_path / "stack.npy")
    assert stack.shape == (5, 21, 21, 3) and stack.dtype == np.float32
    strip = read_array(tmp_path / "strip.png")
    assert strip.shape[1] > strip.shape[0] * 4 and strip.shape[2] == 3
    radii = np.array(info["rms_radius_px_rgb"])
    assert radii.shape == (5, 3) and radii[-1].max() > radii[0].min()


@pytest.mark.parametrize("args, code, msg", [
    (["--psf-stack", "missing.npy"], 1, "no such PSF stack"),
    (["--mask", "0.5:0.2:1"], 2, "inner < outer"),
    (["--psf-size", "8"], 2, "odd"),
    (["--frames", "6"], 2, "odd"),
])
def test_bad_options(tmp_path, args, code, msg):
    src = write_folder(tmp_path / "f", moving(8))
    args = [str(tmp_path / a) if a.endswith(".npy") else a for a in args]
    r = invoke("phase-code", src, "-o", tmp_path / "out", "--quiet", *args)
    assert r.returncode == code, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error:") and msg in r.stderr
    assert not (tmp_path / "out").exists()


def test_bad_psf_stack_file(tmp_path):
    np.save(tmp_path / "flat.npy", np.ones((5, 5), np.float32))
    src = write_folder(tmp_path / "f", moving(8))
    r = invoke("phase-code", src, "-o", tmp_path / "out", "--psf-stack", tmp_path / "flat.npy", "--quiet")
    assert r.returncode in (1, 2) and "flat.npy" in r.stderr
    assert not (tmp_path / "out").exists()
