"""Benchmark: the size of a `blurtools report` page for 100 samples, 3 methods and the blurry inputs at 1280x720.

The page embeds one JPEG thumbnail per picture (320 px) and refers to full-size pictures beside it; the
target is a page under 50 MB. The content is photo-like noise (upsampled noise plus grain), which compresses
worse than photographs, so the figure is an upper bound. Prints the HTML's size, the folder beside it and
the time taken.

    .venv/bin/python benchmarks/report_size.py [--samples 100] [--images copy]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

METHODS = ("method_a", "method_b", "method_c")


def make_results(root: Path, n: int, h: int = 720, w: int = 1280) -> None:
    rng = np.random.default_rng(0)
    for name in ("gt", "blurry", *METHODS):
        (root / name).mkdir(parents=True)
    base = rng.integers(0, 256, (h // 8, w // 8, 3)).astype(np.float32)
    for i in range(n):
        gt = np.kron(np.roll(base, 3 * i, axis=1), np.ones((8, 8, 1), np.float32)) + rng.normal(0, 6, (h, w, 3))
        blurry = (gt + np.roll(gt, 4, axis=1) + np.roll(gt, 8, axis=1)) / 3
        outs = {"gt": gt, "blurry": blurry}
        for k, m in enumerate(METHODS):
            outs[m] = gt + rng.normal(0, 3 + 3 * k, gt.shape)
        for name, img in outs.items():
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / name / f"{i:04d}.png", compress_level=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--images", default="copy")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_results(root, args.samples)
        out = root / "page" / "report.html"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "blurtools", "report", *(str(root / m) for m in METHODS), "--gt",
                        str(root / "gt"), "--input", str(root / "blurry"), "-o", str(out), "--images", args.images, "-q"],
                       check=True)
        took = time.perf_counter() - t0
        beside = sum(p.stat().st_size for p in (root / "page").rglob("*") if p.is_file()) - out.stat().st_size
        print(f"{args.samples} samples x {len(METHODS)} methods + inputs + ground truth, 1280x720 PNG; "
              f"--images {args.images}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        print(f"page: {out.stat().st_size / 1e6:.1f} MB (target < 50 MB); pictures beside it: {beside / 1e6:.0f} MB; "
              f"{took:.0f} s")


if __name__ == "__main__":
    main()
