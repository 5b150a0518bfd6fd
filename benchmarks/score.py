"""Benchmark: `score` (PSNR+SSIM) over 50 pairs of 1280x720 PNGs vs a plain imageio + skimage loop.

Prints both throughputs, the ratio (target >= 2x on a 2-core CPU), the largest difference between the
two sets of values, and the LPIPS-alex time per 720p pair (random trunk: the same computation as the real
weights, which are not downloaded here).

    .venv/bin/python benchmarks/score.py [--pairs 50] [--device cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch


def make_pairs(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    (root / "pred").mkdir()
    (root / "gt").mkdir()
    base = rng.integers(0, 256, (90, 160, 3)).astype(np.float32)
    for i in range(n):
        # smooth natural-ish content (upsampled noise) so PNGs compress like photos
        gt = np.kron(np.roll(base, i, axis=1), np.ones((8, 8, 1))).astype(np.float32)
        gt = np.clip(gt + rng.normal(0, 8, gt.shape), 0, 255).astype(np.uint8)
        pred = np.clip(gt.astype(np.float32) + rng.normal(0, 10, gt.shape), 0, 255).astype(np.uint8)
        iio.imwrite(root / "gt" / f"{i:03d}.png", gt, compress_level=1)
        iio.imwrite(root / "pred" / f"{i:03d}.png", pred, compress_level=1)


def baseline(root: Path) -> dict:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    out = {}
    for p in sorted((root / "pred").glob("*.png")):
        a, b = iio.imread(p), iio.imread(root / "gt" / p.name)
        out[p.stem] = (peak_signal_noise_ratio(b, a, data_range=255),
                       structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                             use_sample_covariance=False, data_range=255))
    return out


def blurtools_score(root: Path, device: str) -> dict:
    from blurtools.io.pairs import match
    from blurtools.metrics.folder_scoring import ScoreOptions, score_image_pairs
    from blurtools.ops.device import resolve_device

    rows = score_image_pairs(match(root / "pred", root / "gt").pairs, ScoreOptions(batch=4, workers=2), resolve_device(device))
    return {r["name"]: (r["psnr"], r["ssim"]) for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=50)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_pairs(root, args.pairs)
        blurtools_score(root, args.device)  # warm-up (imports, allocator)
        t0 = time.perf_counter()
        ref = baseline(root)
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = blurtools_score(root, args.device)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t_ours = time.perf_counter() - t0
        diff_psnr = max(abs(ours[k][0] - ref[k][0]) for k in ref)
        diff_ssim = max(abs(ours[k][1] - ref[k][1]) for k in ref)
        print(f"pairs: {args.pairs} x 1280x720 RGB 8-bit PNG")
        print(f"skimage loop (imageio decode): {args.pairs / t_ref:.2f} pairs/s ({t_ref:.2f} s)")
        print(f"blurtools score ({args.device}):     {args.pairs / t_ours:.2f} pairs/s ({t_ours:.2f} s)")
        print(f"ratio: {t_ref / t_ours:.2f}x   max |dPSNR| {diff_psnr:.2e} dB, max |dSSIM| {diff_ssim:.2e}")

        from blurtools.metrics.lpips_metric import LpipsMetric

        metric = LpipsMetric("alex", device=args.device, random_trunk=True)
        x = torch.rand(1, 3, 720, 1280)
        metric(x, x)
        t0 = time.perf_counter()
        for _ in range(3):
            metric(x, x.flip(-1))
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        print(f"LPIPS-alex per 720p pair ({args.device}): {(time.perf_counter() - t0) / 3 * 1000:.0f} ms")


if __name__ == "__main__":
    main()
