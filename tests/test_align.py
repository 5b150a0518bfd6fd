"""Aligned scoring (`score --align`, `--best-of-gt`): the Köhler and RealBlur procedures.

Test images are smooth colour textures defined analytically (sums of random sinusoids), so a shifted,
warped or blurred copy is evaluated exactly at the moved coordinates: the tests measure the aligner,
not an interpolation used to make the data.
"""

import csv
import json
import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from blurtools.io.images import read_image, write_image
from blurtools.io.sampleset import SampleSetWriter
from blurtools.ops.homography import sample_bicubic, translation_matrix
from blurtools.ops.homography import warp_homography as warp
from blurtools.ops.registration import align
from blurtools.metrics.masked import inner_rectangle, masked_psnr, masked_ssim
from blurtools.metrics.ssim import ssim

SIZE = 128
SHIFT = (3.4, -2.1)
SCALE = 0.9
# A small rotation (1.5 deg), zoom (2 %), perspective and shift; maps ground-truth px -> prediction px.
_T, _S = math.radians(1.5), 1.02
HOMOGRAPHY = torch.tensor([[_S * math.cos(_T), -_S * math.sin(_T), 2.3],
                           [_S * math.sin(_T), _S * math.cos(_T), -1.7],
                           [1e-4, -5e-5, 1.0]], dtype=torch.float64)


def texture(seed=0, shift=(0.0, 0.0), hm=None, scale=1.0, blur=0.0, size=SIZE):
    """(3, size, size) float32 in [0, 1]: the texture at x - shift, or at H^-1 x, times ``scale``.

    ``blur`` (px) low-passes it exactly (each sinusoid attenuated by the Gaussian's transfer function).
    """
    g = torch.Generator().manual_seed(seed)
    n = 120
    f = torch.rand(n, generator=g) ** 0.7 * 0.45
    theta = torch.rand(n, generator=g) * 2 * math.pi
    phase = torch.rand(3, n, generator=g) * 2 * math.pi
    amp = torch.rand(3, n, generator=g) / (1 + 6 * f) * torch.exp(-0.5 * (blur * f) ** 2)
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                            indexing="ij")
    if hm is not None:
        inv = torch.linalg.inv(hm)
        den = inv[2, 0] * xs + inv[2, 1] * ys + inv[2, 2]
        u = (inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]) / den
        v = (inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]) / den
    else:
        u, v = xs - shift[0], ys - shift[1]
    arg = u[..., None] * (f * torch.cos(theta)).double() + v[..., None] * (f * torch.sin(theta)).double()
    out = torch.stack([(amp[c].double() * torch.cos(arg + phase[c].double())).sum(-1) for c in range(3)])
    return (scale * (0.5 + 0.07 * out)).clamp(0, 1).float()


def q8(x):
    """What an 8-bit file stores."""
    return torch.round(x.clamp(0, 1) * 255) / 255


def run(*args):
    from typer.testing import CliRunner

    from blurtools.cli.main import app

    res = CliRunner().invoke(app, ["score", *map(str, args)])
    res.returncode = res.exit_code
    return res


def corner_error(h1, h2, size=SIZE):
    pts = torch.tensor([[0, 0, 1], [size - 1, 0, 1], [0, size - 1, 1], [size - 1, size - 1, 1],
                        [(size - 1) / 2, (size - 1) / 2, 1]], dtype=torch.float64).T
    a, b = h1.to(torch.float64) @ pts, h2.to(torch.float64) @ pts
    return float(((a[:2] / a[2]) - (b[:2] / b[2])).abs().max())


# ---------------------------------------------------------------- library


def test_translation_and_scale_recovered():
    gt = q8(texture())[None]
    pred = q8(texture(shift=SHIFT, scale=SCALE))[None]
    a = align(pred, gt)
    assert bool(a.ok[0]), a.reasons
    assert abs(float(a.shift[0, 0]) - SHIFT[0]) < 0.1 and abs(float(a.shift[0, 1]) - SHIFT[1]) < 0.1
    assert abs(1 / float(a.alpha[0]) - SCALE) < 0.01 * SCALE
    assert corner_error(a.homography[0], translation_matrix(torch.tensor([SHIFT], dtype=torch.float64))[0]) < 0.1
    assert float(a.corr[0]) > 0.99


def test_homography_recovered():
    gt = q8(texture())[None]
    pred = q8(texture(hm=HOMOGRAPHY, scale=SCALE))[None]
    a = align(pred, gt, model="homography")
    assert bool(a.ok[0]), a.reasons
    assert corner_error(a.homography[0], HOMOGRAPHY) < 0.1
    assert abs(1 / float(a.alpha[0]) - SCALE) < 0.01 * SCALE
    # A translation alone cannot undo the rotation: the homography aligns far better.
    t = align(pred, gt, model="translation")
    assert float(masked_psnr(a.aligned, gt.double(), a.mask)) > float(masked_psnr(t.aligned, gt.double(), t.mask)) + 10


def test_batch_aligns_each_pair_independently():
    gt = torch.stack([q8(texture(seed=s)) for s in (0, 1)])
    pred = torch.stack([q8(texture(seed=0, shift=(1.3, 0.6))), q8(texture(seed=1, shift=(-2.7, 4.2), scale=1.1))])
    a = align(pred, gt)
    assert a.ok.all()
    assert torch.allclose(a.shift, torch.tensor([[1.3, 0.6], [-2.7, 4.2]], dtype=torch.float64), atol=0.1)
    assert abs(float(a.alpha[1]) - 1 / 1.1) < 0.01


def test_keys_bicubic_reproduces_smooth_ramps():
    # The aligner's resampler reproduces a quadratic exactly (torch's a = -0.75 bicubic would not).
    ys, xs = torch.meshgrid(torch.arange(20.0, dtype=torch.float64), torch.arange(24.0, dtype=torch.float64), indexing="ij")
    img = (0.3 + 0.01 * xs + 0.02 * ys + 0.0005 * xs * xs)[None, None]
    u, v = (xs + 0.37)[None], (ys - 0.81)[None]
    out = sample_bicubic(img, u, v)[0, 0]
    ref = 0.3 + 0.01 * u[0] + 0.02 * v[0] + 0.0005 * u[0] * u[0]
    inner = (slice(2, -2), slice(2, -3))
    assert torch.allclose(out[inner], ref[inner], atol=1e-12)
    warped, mask = warp(img, translation_matrix(torch.tensor([[0.37, -0.81]], dtype=torch.float64)))
    # Valid where the source lies >= 1 px inside: u = x + 0.37 in [1, 22], v = y - 0.81 in [1, 18].
    m = mask[0, 0]
    assert m[2:19, 1:22].all() and not m[:2].any() and not m[19:].any() and not m[:, 0].any() and not m[:, 22:].any()
    assert torch.allclose(warped[0, 0][m], out[m])


def test_masked_ssim_ignores_the_empty_border():
    gt = texture()[None].double()
    noisy = (gt + 0.02 * torch.randn(gt.shape, dtype=torch.float64)).clamp(0, 1)
    # The border a warp leaves empty: 9 columns and 4 rows with no data (zeros).
    empty = noisy.clone()
    empty[..., :, :9] = 0
    empty[..., -4:, :] = 0
    mask = torch.ones(1, 1, SIZE, SIZE, dtype=torch.bool)
    mask[..., :, :9] = False
    mask[..., -4:, :] = False
    # Equals skimage's SSIM of the valid rectangle, whatever the empty border holds.
    crop_p = noisy[0, :, :-4, 9:].permute(1, 2, 0).numpy()
    crop_g = gt[0, :, :-4, 9:].permute(1, 2, 0).numpy()
    ref = structural_similarity(crop_p, crop_g, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=1.0)
    assert abs(float(masked_ssim(empty, gt, mask)) - ref) < 1e-9
    assert abs(float(masked_ssim(noisy, gt, mask)) - ref) < 1e-9
    # Identical content on the valid region scores perfectly; plain SSIM is dragged down by the border.
    clean = gt.clone()
    clean[..., :, :9] = 0
    clean[..., -4:, :] = 0
    assert float(masked_ssim(clean, gt, mask)) == pytest.approx(1.0, abs=1e-12)
    assert float(masked_psnr(clean, gt, mask)) == math.inf
    assert float(ssim(clean, gt)) < 0.95
    # PSNR: the MSE over the masked pixels only.
    mse = float(((noisy - gt)[..., :-4, 9:] ** 2).mean())
    assert float(masked_psnr(empty, gt, mask)) == pytest.approx(10 * math.log10(1 / mse), abs=1e-9)


def test_masked_ssim_centre_matches_the_realblur_script():
    gt = texture()[None].double()
    pred = (gt + 0.03 * torch.randn(gt.shape, dtype=torch.float64)).clamp(0, 1)
    _, mask = warp(pred, HOMOGRAPHY[None])
    # evaluate_RealBlur.py: SSIM map of the zeroed images, weighted by the mask, 5 px border cropped.
    m = mask[0].permute(1, 2, 0).numpy().astype(np.float64).repeat(3, axis=2)
    a, b = gt[0].permute(1, 2, 0).numpy() * m, pred[0].permute(1, 2, 0).numpy() * m
    _, smap = structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, use_sample_covariance=False,
                                    data_range=1.0, full=True, sigma=1.5)
    smap, mc = (smap * m)[5:-5, 5:-5], m[5:-5, 5:-5]
    ref = np.mean(smap.sum(axis=(0, 1)) / mc.sum(axis=(0, 1)))
    assert float(masked_ssim(pred, gt, mask, window="centre")) == pytest.approx(ref, abs=1e-9)


def test_inner_rectangle():
    _, mask = warp(torch.zeros(1, 1, 64, 80), HOMOGRAPHY[None])
    t, b, l, r = inner_rectangle(mask[0, 0])
    assert mask[0, 0, t:b, l:r].all() and (b - t) * (r - l) > 0.8 * float(mask.sum())
    assert inner_rectangle(torch.zeros(8, 8, dtype=torch.bool)) is None


def test_too_different_pairs_are_flagged():
    gt = q8(texture())[None]
    other = q8(texture(seed=7))[None]
    a = align(other, gt)
    assert not bool(a.ok[0]) and "correlation" in a.reasons[0]
    assert not bool(align(other, gt, model="homography").ok[0])
    far = q8(texture(shift=(30.0, 2.0)))[None]
    b = align(far, gt, max_shift=10)
    assert not bool(b.ok[0]) and "max-shift" in b.reasons[0]
    assert bool(align(far, gt, max_shift=40).ok[0])


# ---------------------------------------------------------------- command line


@pytest.fixture
def folders(tmp_path):
    """gt/, copy/ (blurred: a ~29 dB 'result'), pred/ and warped/ (that result shifted or warped, and
    darkened), and sharp_pred/, sharp_warped/ (the ground truth itself moved and darkened)."""
    for d in ("gt", "copy", "pred", "warped", "sharp_pred", "sharp_warped"):
        (tmp_path / d).mkdir()
    write_image(tmp_path / "gt" / "a.png", texture())
    write_image(tmp_path / "copy" / "a.png", texture(blur=3.0))
    write_image(tmp_path / "pred" / "a.png", texture(blur=3.0, shift=SHIFT, scale=SCALE))
    write_image(tmp_path / "warped" / "a.png", texture(blur=3.0, hm=HOMOGRAPHY, scale=SCALE))
    write_image(tmp_path / "sharp_pred" / "a.png", texture(shift=SHIFT, scale=SCALE))
    write_image(tmp_path / "sharp_warped" / "a.png", texture(hm=HOMOGRAPHY, scale=SCALE))
    return tmp_path


def _copy_score(root, mask):
    copy = read_image(root / "copy" / "a.png")[None].double()
    gt = read_image(root / "gt" / "a.png")[None].double()
    return float(masked_psnr(copy, gt, mask)), float(masked_ssim(copy, gt, mask))


@pytest.mark.parametrize("model,folder", [("translation", "pred"), ("homography", "warped")])
def test_cli_align_scores_like_the_unmoved_copy(folders, model, folder):
    res = run(folders / folder, folders / "gt", "--align", model, "--json")
    assert res.returncode == 0, res.output
    item = json.loads(res.stdout)["items"][0]
    assert item["status"] == "ok" and item["reason"] is None
    # The copy scored over the same valid region, found here the same way.
    a = align(read_image(folders / folder / "a.png")[None], read_image(folders / "gt" / "a.png")[None], model=model)
    ref_psnr, ref_ssim = _copy_score(folders, a.mask)
    assert abs(item["psnr"] - ref_psnr) < 0.5, (item["psnr"], ref_psnr)
    assert abs(item["ssim"] - ref_ssim) < 0.01
    plain = json.loads(run(folders / folder, folders / "gt", "--json").stdout)["items"][0]
    assert plain["psnr"] < ref_psnr - 5
    # The reported alignment: exact on the moved ground truth (a blurred result only pins it to ~0.2 px).
    sharp = json.loads(run(folders / f"sharp_{folder}", folders / "gt", "--align", model, "--json").stdout)["items"][0]
    assert sharp["status"] == "ok" and abs(sharp["alpha"] * SCALE - 1) < 0.01
    if model == "translation":
        assert abs(sharp["dx"] - SHIFT[0]) < 0.1 and abs(sharp["dy"] - SHIFT[1]) < 0.1
        assert abs(item["dx"] - SHIFT[0]) < 0.1 and abs(item["dy"] - SHIFT[1]) < 0.1
        assert "homography" not in item
    else:
        assert corner_error(torch.tensor(sharp["homography"]), HOMOGRAPHY) < 0.1
        assert corner_error(torch.tensor(item["homography"]), HOMOGRAPHY) < 0.3


def test_cli_csv_and_table_report_the_alignment(folders):
    res = run(folders / "pred", folders / "gt", "--align", "homography", "--csv", folders / "out.csv")
    assert res.returncode == 0, res.output
    assert "alpha" in res.stdout and "ok" in res.stdout
    lines = (folders / "out.csv").read_text().splitlines()
    assert '"align": "homography"' in lines[0] and '"max_shift": 64.0' in lines[0]
    row = next(csv.DictReader(lines[1:]))
    assert row["status"] == "ok" and len(row["homography"].split()) == 9
    assert abs(float(row["dx"]) - SHIFT[0]) < 0.1 and abs(float(row["alpha"]) * SCALE - 1) < 0.03


def test_cli_reports_pairs_it_cannot_align(folders):
    write_image(folders / "gt" / "b.png", texture(seed=1))
    write_image(folders / "pred" / "b.png", texture(seed=9))  # another picture altogether
    write_image(folders / "gt" / "c.png", texture(seed=2))
    write_image(folders / "pred" / "c.png", texture(seed=2, shift=(25.0, -3.0)))
    res = run(folders / "pred", folders / "gt", "--align", "translation", "--max-shift", "16", "--json")
    assert res.returncode == 0, res.output
    doc = json.loads(res.stdout)
    items = {i["name"]: i for i in doc["items"]}
    assert items["a"]["status"] == "ok"
    for name, why in (("b", "correlation"), ("c", "max-shift")):
        assert items[name]["status"] == "unaligned" and items[name]["psnr"] is None and items[name]["ssim"] is None
        assert why in items[name]["reason"]
    assert doc["summary"]["unaligned"] == 2 and doc["summary"]["psnr"] == pytest.approx(items["a"]["psnr"])
    assert "warning: 2 of 3 pair(s) could not be aligned" in res.stderr and "b (" in res.stderr


def test_best_of_gt_with_alignment_picks_the_matching_frame(tmp_path):
    # Sharp frames recorded along a trajectory: moving, and blurred differently away from frame 3.
    frames = [texture(shift=(0.8 * k, -0.5 * k), blur=abs(k - 3) * 1.5) for k in range(6)]
    w = SampleSetWriter(tmp_path / "set", "test", {})
    w.add("s1", sum(frames) / len(frames), frames)
    write_image(tmp_path / "pred" / "s1.png", texture(shift=(0.8 * 3 + 1.7, -0.5 * 3 - 2.2), scale=0.95))
    res = run(tmp_path / "pred", tmp_path / "set", "--align", "translation", "--best-of-gt", "--batch", "4", "--json")
    assert res.returncode == 0, res.output
    item = json.loads(res.stdout)["items"][0]
    assert item["gt_frame"] == 3 and item["gt_frames"] == 6 and item["status"] == "ok"
    assert abs(item["dx"] - 1.7) < 0.1 and abs(item["dy"] + 2.2) < 0.1 and item["psnr"] > 40


def test_best_of_gt_frame_folders_without_alignment(tmp_path):
    frames = [torch.rand(3, 24, 20) for _ in range(5)]
    for k, f in enumerate(frames):
        write_image(tmp_path / "gt" / "x" / f"{k:03d}.png", f)
    write_image(tmp_path / "pred" / "x.png", (frames[2] + 0.05).clamp(0, 1))
    res = run(tmp_path / "pred", tmp_path / "gt", "--best-of-gt", "--json")
    assert res.returncode == 0, res.output
    item = json.loads(res.stdout)["items"][0]
    assert item["gt_frame"] == 2 and item["gt_frames"] == 5 and "status" not in item
    # A plain image folder is no sequence: said so.
    write_image(tmp_path / "flat" / "x.png", frames[0])
    bad = run(tmp_path / "pred", tmp_path / "flat", "--best-of-gt")
    assert bad.returncode == 1 and "no frame folders" in bad.stderr


def test_option_conflicts_are_usage_errors(folders):
    assert run(folders / "pred", folders / "gt", "--align", "translation", "--video").returncode == 2
    res = run(folders / "pred", folders / "gt", "--align", "homography", "--ssim", "matlab3d")
    assert res.returncode == 2 and "matlab3d" in res.stderr


def test_aligned_lpips_sees_the_valid_rectangle(folders):
    from blurtools.metrics.folder_scoring import ScoreOptions, aligned_metrics
    from blurtools.metrics.lpips_metric import LpipsMetric

    pred = read_image(folders / "pred" / "a.png")[None]
    gt = read_image(folders / "gt" / "a.png")[None]
    metric = LpipsMetric(net="alex", random_trunk=True)
    row = aligned_metrics(pred, gt, 255, ScoreOptions(align="translation", crop_border=2), lpips=metric)[0]
    assert row["status"] == "ok" and row["lpips"] is not None and math.isfinite(row["lpips"])
