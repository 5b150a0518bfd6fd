"""`score --shard I/N --json` pieces joined by `score --merge` give one run's table; the band-wise metrics."""

import json

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from blurtools.io.images import write_image
from blurtools.metrics.bands import psnr_ssim_bands
from blurtools.metrics.shards import Shard


def run(*args):
    from typer.testing import CliRunner

    from blurtools.cli.main import app

    res = CliRunner().invoke(app, ["score", *map(str, args)])
    return res


def _pairs(root, n):
    g = torch.Generator().manual_seed(3)
    for side in ("pred", "gt"):
        (root / side).mkdir(parents=True)
    for i in range(n):
        gt = torch.rand(3, 24, 31, generator=g)
        write_image(root / "gt" / f"im{i:02d}.png", gt)
        write_image(root / "pred" / f"im{i:02d}.png", (gt + 0.05 * torch.randn(gt.shape, generator=g)).clamp(0, 1))
    return root / "pred", root / "gt"


@pytest.mark.parametrize("pieces", [1, 3, 7])
def test_merged_pieces_equal_one_run(tmp_path, pieces):
    pred, gt = _pairs(tmp_path, 5)
    whole = run(pred, gt, "--json", "-q")
    assert whole.exit_code == 0, whole.output
    paths = []
    for i in range(pieces):  # 7 pieces of 5 pairs: some pieces are empty
        res = run(pred, gt, "--json", "-q", "--shard", f"{i}/{pieces}")
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        assert doc["shard"]["index"] == i and doc["shard"]["pairs"] == 5
        paths.append(tmp_path / f"piece{i}.json")
        paths[-1].write_text(res.stdout)
    merged = run("--merge", *reversed(paths), "--json", "--csv", tmp_path / "m.csv")
    assert merged.exit_code == 0, merged.output
    assert json.loads(merged.stdout) == json.loads(whole.stdout)
    assert run(pred, gt, "--csv", tmp_path / "w.csv", "-q").exit_code == 0
    assert (tmp_path / "m.csv").read_text() == (tmp_path / "w.csv").read_text()
    table = run("--merge", *paths)
    assert table.exit_code == 0 and "im04" in table.stdout and "mean" in table.stdout


def test_merge_refuses_incomplete_or_mixed_sets(tmp_path):
    pred, gt = _pairs(tmp_path, 4)
    for i in range(2):
        (tmp_path / f"p{i}.json").write_text(run(pred, gt, "--json", "-q", "--shard", f"{i}/2").stdout)
    (tmp_path / "y.json").write_text(run(pred, gt, "--json", "-q", "--shard", "1/2", "--y").stdout)
    res = run("--merge", tmp_path / "p0.json")
    assert res.exit_code == 1 and "lack shard(s) 1/2" in res.output
    res = run("--merge", tmp_path / "p0.json", tmp_path / "p0.json")
    assert res.exit_code == 1 and "given twice" in res.output
    res = run("--merge", tmp_path / "p0.json", tmp_path / "y.json")
    assert res.exit_code == 1 and "options differ" in res.output
    whole = tmp_path / "whole.json"
    whole.write_text(run(pred, gt, "--json", "-q").stdout)
    res = run("--merge", whole)
    assert res.exit_code == 1 and "no 'shard' record" in res.output
    assert run(pred, gt, "--shard", "2/2").exit_code == 2
    assert run(pred, gt, "--shard", "0/2").exit_code == 2  # a piece is JSON for --merge
    assert run(pred).exit_code == 2


def test_shard_slices_cover_everything_once():
    items = list(range(11))
    got = []
    for i in range(4):
        part, start = Shard(i, 4).select(items)
        assert part == items[start:start + len(part)]
        got += part
    assert got == items


@pytest.mark.parametrize("dtype,peak,channels", [(np.uint8, 255, 3), (np.uint16, 65535, 1), (np.uint8, 255, 1)])
def test_bands_match_skimage_for_any_band_height(dtype, peak, channels):
    rng = np.random.default_rng(0)
    a = rng.integers(0, peak + 1, (75, 41, channels)).astype(dtype)
    b = np.clip(a.astype(np.int64) + rng.integers(-peak // 20, peak // 20, a.shape), 0, peak).astype(dtype)
    ref_p = peak_signal_noise_ratio(b, a, data_range=peak)
    ref_s = structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False, data_range=peak)
    p = torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1)[None]
    g = torch.from_numpy(b.astype(np.float32)).permute(2, 0, 1)[None]
    for band in (1, 7, 16, 64, 500):
        ps, ss = psnr_ssim_bands(p, g, peak, band=band)
        assert abs(float(ps[0]) - ref_p) < 1e-9
        assert abs(float(ss[0]) - ref_s) < 1e-7
    ps, _ = psnr_ssim_bands(p, p, peak)
    assert float(ps[0]) == float("inf")


@pytest.mark.parametrize("dtype,channels,border", [(np.uint8, 3, 0), (np.uint8, 4, 2), (np.uint16, 1, 0), (np.uint16, 3, 1)])
def test_plain_integer_path_equals_the_general_path(tmp_path, dtype, channels, border):
    from blurtools.io.images import array_to_tensor, read_array
    from blurtools.io.pair_decoding import decode_pair
    from blurtools.io.pairs import Pair
    from blurtools.io.png16 import encode_png16
    from blurtools.metrics.image import compute_image_metrics
    from blurtools.metrics.integer_pairs import plain_integer_row

    rng = np.random.default_rng(1)
    peak = 255 if dtype == np.uint8 else 65535
    paths = []
    for name in ("a", "b"):
        arr = rng.integers(0, peak + 1, (29, 37, channels)).astype(dtype)
        arr = arr[:, :, 0] if channels == 1 else arr
        path = tmp_path / f"{name}.png"
        if dtype == np.uint16:
            path.write_bytes(encode_png16(arr))
        else:
            from PIL import Image

            Image.fromarray(arr).save(path)
        paths.append(path)
    row = plain_integer_row(decode_pair(Pair("a", paths[0], paths[1])), border)
    p, g = (array_to_tensor(read_array(x), keep_gray=True)[None] for x in paths)
    ref = compute_image_metrics(p, g, data_range=peak, crop_border=border)
    assert row == {"name": "a", "psnr": float(ref["psnr"][0]), "ssim": float(ref["ssim"][0]), "width": 37, "height": 29}
    gray = tmp_path / "gray.png"
    from PIL import Image

    Image.fromarray(np.zeros((29, 37), np.uint8)).save(gray)
    assert plain_integer_row(decode_pair(Pair("a", paths[0], gray)), 0) is None or channels == 1 and dtype == np.uint8


def test_merge_carries_what_the_pieces_counted(tmp_path):
    """Capped PSNRs and RGB-to-gray conversions are counted in the merged summary as one run counts them."""
    from PIL import Image

    rng = np.random.default_rng(2)
    (tmp_path / "pred").mkdir()
    (tmp_path / "gt").mkdir()
    for i in range(4):
        rgb = rng.integers(0, 256, (20, 24, 3)).astype(np.uint8)
        if i == 1:  # identical pair: capped
            Image.fromarray(rgb).save(tmp_path / "gt" / f"{i}.png")
            Image.fromarray(rgb).save(tmp_path / "pred" / f"{i}.png")
        else:  # gray ground truth: the (noisy) RGB prediction is converted
            Image.fromarray(rgb).convert("L").save(tmp_path / "gt" / f"{i}.png")
            Image.fromarray(rgb ^ rng.integers(0, 8, rgb.shape).astype(np.uint8)).save(tmp_path / "pred" / f"{i}.png")
    whole = json.loads(run(tmp_path / "pred", tmp_path / "gt", "--json", "-q").stdout)
    assert whole["summary"]["psnr_capped"] == 1 and whole["summary"]["converted_to_gray"] == 3
    paths = []
    for k in range(2):
        res = run(tmp_path / "pred", tmp_path / "gt", "--shard", f"{k}/2", "--json", "-q")
        assert res.exit_code == 0, res.output
        paths.append(tmp_path / f"p{k}.json")
        paths[-1].write_text(res.stdout)
    merged = json.loads(run("--merge", *paths, "--json", "-q").stdout)
    assert merged["summary"] == whole["summary"]
    assert merged["items"] == whole["items"]
