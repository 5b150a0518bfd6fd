"""Benchmark: `blurtools score` (PSNR + SSIM), whole process, vs a plain imageio + scikit-image loop.

Both run as fresh processes on the same 40 pairs of 1280x720 RGB 8-bit PNGs (imports, decoding, scoring,
output: the wall time a user waits), interleaved round by round so that both see the same load from
whatever else runs on the machine; the best round of each counts. Prints both times, the ratio (target
>= 3x), the largest PSNR / SSIM differences from scikit-image over all pairs (targets 1e-4 dB and 1e-5), the
load average before and after, and the LPIPS-alex time per 720p pair (random trunk: the same computation as
the real weights, which are not downloaded here).

    .venv/bin/python benchmarks/score.py [--pairs 40] [--rounds 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np

# The plain loop a user would write: imageio decodes, scikit-image scores, one pair after another.
BASELINE = """
import sys
from pathlib import Path
import imageio.v3 as iio
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
root = Path(sys.argv[1])
for p in sorted((root / "pred").glob("*.png")):
    a, b = iio.imread(p), iio.imread(root / "gt" / p.name)
    s = structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False, data_range=255)
    print(p.stem, repr(float(peak_signal_noise_ratio(b, a, data_range=255))), repr(float(s)))
"""


def make_pairs(root: Path, n: int, size: tuple = (720, 1280)) -> None:
    """``n`` pairs root/pred/NNN.png, root/gt/NNN.png of smooth photo-like content with noise (H, W = size)."""
    rng = np.random.default_rng(0)
    (root / "pred").mkdir(parents=True)
    (root / "gt").mkdir(parents=True)
    h, w = size
    base = rng.integers(0, 256, (h // 8, w // 8, 3)).astype(np.float32)
    for i in range(n):
        # smooth natural-ish content (upsampled noise) so PNGs compress like photos
        gt = np.kron(np.roll(base, i, axis=1), np.ones((8, 8, 1))).astype(np.float32)
        gt = np.clip(gt + rng.normal(0, 8, gt.shape), 0, 255).astype(np.uint8)
        pred = np.clip(gt.astype(np.float32) + rng.normal(0, 10, gt.shape), 0, 255).astype(np.uint8)
        iio.imwrite(root / "gt" / f"{i:03d}.png", gt, compress_level=1)
        iio.imwrite(root / "pred" / f"{i:03d}.png", pred, compress_level=1)


def timed(cmd: list, env: dict) -> tuple:
    """(wall seconds, CPU seconds user + system, stdout) of a fresh process."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{cmd[:4]} failed")
        out.seek(0)
        return wall, usage.ru_utime + usage.ru_stime, out.read().decode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_pairs(root, args.pairs)
        base_cmd = [sys.executable, "-c", BASELINE, str(root)]
        ours_cmd = [sys.executable, "-m", "blurtools", "score", str(root / "pred"), str(root / "gt"), "--json", "-q",
                    "--device", args.device]
        load_before = os.getloadavg()
        t_ref, t_ours, cpu_ref, cpu_ours = [], [], [], []
        for _ in range(args.rounds):
            t, c, ref_out = timed(base_cmd, env)
            t_ref.append(t)
            cpu_ref.append(c)
            t, c, ours_out = timed(ours_cmd, env)
            t_ours.append(t)
            cpu_ours.append(c)
        load_after = os.getloadavg()
        ref = {line.split()[0]: (float(line.split()[1]), float(line.split()[2])) for line in ref_out.splitlines()}
        ours = {r["name"]: (r["psnr"], r["ssim"]) for r in json.loads(ours_out)["items"]}
        diff_psnr = max(abs(ours[k][0] - ref[k][0]) for k in ref)
        diff_ssim = max(abs(ours[k][1] - ref[k][1]) for k in ref)
        print(f"pairs: {args.pairs} x 1280x720 RGB 8-bit PNG; {os.cpu_count()} CPUs; whole process, "
              f"{args.rounds} interleaved rounds, best of each")
        print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (other work on the machine)")
        print(f"imageio + skimage loop: {min(t_ref):.2f} s  (rounds: {', '.join(f'{t:.2f}' for t in t_ref)})")
        print(f"blurtools score ({args.device}): {min(t_ours):.2f} s  (rounds: {', '.join(f'{t:.2f}' for t in t_ours)})")
        print(f"round by round: {', '.join(f'{a / b:.2f}x' for a, b in zip(t_ref, t_ours))}; CPU time (user + "
              f"system, whatever the load): {min(cpu_ref):.1f} s vs {min(cpu_ours):.1f} s = "
              f"{min(cpu_ref) / min(cpu_ours):.2f}x")
        print(f"ratio: {min(t_ref) / min(t_ours):.2f}x (target >= 3x)   "
              f"max |dPSNR| {diff_psnr:.2e} dB (target 1e-4), max |dSSIM| {diff_ssim:.2e} (target 1e-5)")
    lpips_time(args.device)


def lpips_time(device: str) -> None:
    import torch

    from blurtools.metrics.lpips_metric import LpipsMetric

    metric = LpipsMetric("alex", device=device, random_trunk=True)
    x = torch.rand(1, 3, 720, 1280)
    metric(x, x)
    t0 = time.perf_counter()
    for _ in range(3):
        metric(x, x.flip(-1))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    print(f"LPIPS-alex per 720p pair ({device}): {(time.perf_counter() - t0) / 3 * 1000:.0f} ms")


if __name__ == "__main__":
    main()
