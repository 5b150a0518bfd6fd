"""Issue 17 item 8: `score` edge cases: missing predictions, identical pairs, RGB against gray."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from blurtools.io.images import write_image
from blurtools.io.sampleset import SampleSetWriter


def run(*args):
    from blurtools.cli.main import app

    res = CliRunner().invoke(app, ["score", *map(str, args)])
    res.returncode = res.exit_code
    return res


def _pairs(root, n=4, size=(20, 24)):
    g = torch.Generator().manual_seed(3)
    for i in range(n):
        gt = torch.rand(3, *size, generator=g)
        write_image(root / "gt" / f"im{i}.png", gt)
        write_image(root / "pred" / f"im{i}.png", (gt + 0.1 * torch.randn(gt.shape, generator=g)).clamp(0, 1))
    return root / "pred", root / "gt"


def test_missing_predictions_fail_unless_allowed_and_are_reported(tmp_path):
    pred, gt = _pairs(tmp_path)
    (pred / "im3.png").unlink()
    res = run(pred, gt, "--json")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "1 of 4 ground-truth item(s) have no prediction" in res.stderr and "im3" in res.stderr
    assert "--allow-missing" in res.stderr
    doc = json.loads(res.stdout)  # the scores of the others are still there, and say what they cover
    assert doc["summary"]["count"] == 3 and doc["summary"]["missing"] == 1 and doc["unmatched_gt"] == ["im3"]
    ok = run(pred, gt, "--json", "--allow-missing")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["summary"]["missing"] == 1 and "psnr_capped" not in json.loads(ok.stdout)["summary"]
    table = run(pred, gt, "--allow-missing")
    assert table.returncode == 0 and "1 of 4 ground-truth item(s) have no prediction" in table.stdout
    assert "mean over 3" in table.stdout


def test_identical_pairs_cap_psnr_and_say_so(tmp_path):
    pred, gt = _pairs(tmp_path, n=2)
    (pred / "im0.png").write_bytes((gt / "im0.png").read_bytes())  # one prediction is perfect
    doc = json.loads(run(pred, gt, "--json").stdout)
    rows = {r["name"]: r for r in doc["items"]}
    assert rows["im0"]["psnr"] == 100.0 and rows["im1"]["psnr"] < 40
    assert doc["summary"]["psnr"] == pytest.approx((100.0 + rows["im1"]["psnr"]) / 2)
    assert doc["summary"]["psnr_capped"] == 1 and doc["options"]["identical_psnr_db"] == 100.0
    table = run(pred, gt)
    assert "inf" not in table.stdout and "capped at 100 dB" in table.stdout


def test_identical_video_frames_are_capped_frame_by_frame(tmp_path):
    frames = [torch.rand(3, 12, 16) for _ in range(3)]
    SampleSetWriter(tmp_path / "set", "test", {}).add("s1", sum(frames) / 3, frames)
    for k, f in enumerate(frames):
        write_image(tmp_path / "pred" / "s1" / f"{k:04d}.png", f if k != 2 else (f * 0.8))
    doc = json.loads(run(tmp_path / "pred", tmp_path / "set", "--video", "--json").stdout)
    item = doc["items"][0]
    assert item["frame_psnr"][:2] == [100.0, 100.0] and item["frame_psnr"][2] < 40
    assert item["psnr"] == pytest.approx(sum(item["frame_psnr"]) / 3)
    assert item["middle_psnr"] == 100.0 and doc["summary"]["psnr_capped"] == 1


def test_rgb_prediction_against_gray_ground_truth_is_converted_and_said(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (16, 20, 3)).astype(np.uint8)
    (tmp_path / "pred").mkdir()
    (tmp_path / "gt").mkdir()
    Image.fromarray(rgb).save(tmp_path / "pred" / "a.png")
    Image.fromarray(rgb).convert("L").save(tmp_path / "gt" / "a.png")  # the gray version of the same picture
    res = run(tmp_path / "pred", tmp_path / "gt", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    # converted the way the gray file was made, the prediction matches it (up to rounding)
    assert doc["items"][0]["psnr"] > 45
    assert doc["summary"]["converted_to_gray"] == 1
    assert "converted to gray" in res.stderr and "0.299" in res.stderr
