"""`blurtools score` end to end: values equal skimage's, outputs, video mode, bad input."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from blurtools.io.images import read_array, write_image
from blurtools.io.sampleset import SampleSetWriter


def run(*args, env=None):
    """Run `blurtools score` in-process (fast); exit codes and stderr as a shell sees them."""
    from typer.testing import CliRunner

    from blurtools.cli.main import app

    res = CliRunner().invoke(app, ["score", *map(str, args)], env=env)
    res.returncode = res.exit_code
    return res


def test_subprocess_exit_code_and_single_error_line(tmp_path):
    res = subprocess.run([sys.executable, "-m", "blurtools", "score", str(tmp_path / "nope"), str(tmp_path)],
                         capture_output=True, text=True)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope'}: no such file or folder (predictions)"]


def _pairs(root, n=3, size=(37, 53), bits=8, channels=3):
    (root / "pred" / "sub").mkdir(parents=True)
    (root / "gt" / "sub").mkdir(parents=True)
    g = torch.Generator().manual_seed(1)
    for i in range(n):
        gt = torch.rand(channels, *size, generator=g)
        pred = (gt + 0.08 * torch.randn(gt.shape, generator=g)).clamp(0, 1)
        name = f"sub/im{i}" if i == 0 else f"im{i}"
        write_image(root / "gt" / f"{name}.png", gt, bits=bits)
        write_image(root / "pred" / f"{name}.png", pred, bits=bits)
    return root / "pred", root / "gt"


@pytest.mark.parametrize("bits,channels", [(8, 3), (16, 3), (8, 1)])
def test_score_matches_skimage(tmp_path, bits, channels):
    pred, gt = _pairs(tmp_path, bits=bits, channels=channels)
    res = run(pred, gt, "--json", "--quiet")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["tool"] == "blurtools score" and doc["summary"]["count"] == 3
    peak = 255 if bits == 8 else 65535
    for item in doc["items"]:
        a, b = read_array(pred / f"{item['name']}.png"), read_array(gt / f"{item['name']}.png")
        ref_psnr = peak_signal_noise_ratio(b, a, data_range=peak)
        kw = dict(channel_axis=-1) if a.ndim == 3 else {}
        ref_ssim = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=peak, **kw)
        assert abs(item["psnr"] - ref_psnr) < 1e-5
        assert abs(item["ssim"] - ref_ssim) < 1e-5
    assert abs(doc["summary"]["psnr"] - np.mean([i["psnr"] for i in doc["items"]])) < 1e-9


def test_table_csv_and_options(tmp_path):
    pred, gt = _pairs(tmp_path)
    res = run(pred, gt, "--csv", tmp_path / "out.csv", "--y", "--crop-border", "4", "--ssim", "matlab3d")
    assert res.returncode == 0, res.stderr
    assert "mean" in res.stdout and "psnr" in res.stdout
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0].startswith("# blurtools") and '"crop_border": 4' in lines[0]
    rows = list(csv.DictReader(lines[1:]))
    assert sorted(r["name"] for r in rows) == ["im1", "im2", "mean", "sub/im0"]


def test_video_scores_reversed_prediction(tmp_path):
    frames = [torch.rand(3, 20, 24) for _ in range(5)]
    w = SampleSetWriter(tmp_path / "set", "test", {})
    w.add("s1", sum(frames) / 5, frames)
    for k, f in enumerate(reversed(frames)):
        write_image(tmp_path / "pred" / "s1" / f"{k:04d}.png", f)
    res = run(tmp_path / "pred", tmp_path / "set", "--video", "--json")
    assert res.returncode == 0, res.stderr
    item = json.loads(res.stdout)["items"][0]
    # identical frames: PSNR capped at 100 dB (the output says so), never inf
    assert item["order"] == "reversed" and item["psnr"] == 100.0 and item["frames"] == 5
    assert item["middle_psnr"] == 100.0


def test_sample_set_ground_truth(tmp_path):
    frames = [torch.rand(3, 16, 16) for _ in range(3)]
    w = SampleSetWriter(tmp_path / "set", "test", {})
    w.add("a", sum(frames) / 3, frames)
    write_image(tmp_path / "pred" / "a.png", frames[1])
    doc = json.loads(run(tmp_path / "pred", tmp_path / "set", "--json").stdout)
    assert doc["items"][0]["name"] == "a" and doc["items"][0]["psnr"] == 100.0


def _error(res, *fragments):
    assert res.returncode in (1, 2), res
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    assert "Traceback" not in res.stderr


def test_bad_inputs(tmp_path):
    pred, gt = _pairs(tmp_path)
    _error(run(tmp_path / "missing", gt), "missing", "no such")
    (tmp_path / "empty").mkdir()
    _error(run(tmp_path / "empty", gt), "empty", "no images")
    (pred / "im1.png").write_text("not an image")
    _error(run(pred, gt), "im1.png")
    write_image(pred / "im1.png", torch.rand(3, 37, 53))
    good = (pred / "im2.png").read_bytes()
    (pred / "im2.png").write_bytes(good[: len(good) // 3])
    _error(run(pred, gt), "im2.png")
    (pred / "im2.png").write_bytes(good)
    write_image(pred / "im1.png", torch.rand(3, 30, 53))
    _error(run(pred, gt), "im1.png", "differs")
    write_image(pred / "im1.png", torch.rand(3, 37, 53))
    write_image(pred / "extra.png", torch.rand(3, 37, 53))
    _error(run(pred, gt), "extra", "no ground truth")
    assert run(pred, gt, "--ignore-unmatched", "--quiet").returncode == 0


def test_lpips_missing_trunk_names_file(tmp_path):
    pred, gt = _pairs(tmp_path)
    res = run(pred, gt, "--lpips", "alex", env={"TORCH_HOME": str(tmp_path / "torchhome")})
    _error(res, "alexnet-owt-7be5be79.pth", str(tmp_path / "torchhome" / "hub" / "checkpoints"))


def test_batched_and_threaded_paths_agree(tmp_path):
    pred, gt = _pairs(tmp_path, n=4)
    a = json.loads(run(pred, gt, "--json", "--workers", "1", "--batch", "3").stdout)["items"]
    b = json.loads(run(pred, gt, "--json", "--workers", "3").stdout)["items"]
    assert a == b
