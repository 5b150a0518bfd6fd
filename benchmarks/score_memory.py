"""Benchmark: `blurtools score` memory is flat in the number of pairs (it streams; no image is kept).

Scores 200 and then 2,000 pairs of small PNGs (64x48 RGB, so that 2,000 pairs take seconds, not an hour:
what is measured is whether memory grows with the number of pairs, not with their size) in fresh
processes, and prints each process's peak resident memory and their ratio (target <= 1.2x). With
``--pieces N`` it also scores the 2,000 pairs as N ``--shard`` pieces, merges them and checks the merged
JSON equals one run's.

    .venv/bin/python benchmarks/score_memory.py [--small 200] [--large 2000] [--size 48x64] [--pieces 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def make_pairs(root: Path, n: int, h: int, w: int) -> None:
    rng = np.random.default_rng(0)
    for side in ("pred", "gt"):
        (root / side).mkdir(parents=True)
    for i in range(n):
        gt = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        pred = np.clip(gt.astype(np.int16) + rng.integers(-12, 13, gt.shape), 0, 255).astype(np.uint8)
        Image.fromarray(gt).save(root / "gt" / f"{i:05d}.png", compress_level=1)
        Image.fromarray(pred).save(root / "pred" / f"{i:05d}.png", compress_level=1)


def peak_rss_mb(cmd: list) -> tuple:
    """(peak resident set of the child process in MB, its stdout)."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed with {proc.returncode}")
        out.seek(0)
        return usage.ru_maxrss / 1024.0, out.read().decode()


def score_cmd(root: Path, *extra: str) -> list:
    return [sys.executable, "-m", "blurtools", "score", str(root / "pred"), str(root / "gt"), "--json", "-q", *extra]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=200)
    ap.add_argument("--large", type=int, default=2000)
    ap.add_argument("--size", default="48x64", help="HxW of the images")
    ap.add_argument("--pieces", type=int, default=4)
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        small, large = Path(tmp) / "small", Path(tmp) / "large"
        make_pairs(small, args.small, h, w)
        make_pairs(large, args.large, h, w)
        rss_small, _ = peak_rss_mb(score_cmd(small))
        rss_large, whole = peak_rss_mb(score_cmd(large))
        print(f"images: {w}x{h} RGB 8-bit PNG (small on purpose: the test is growth with the number of pairs)")
        print(f"peak RSS, {args.small} pairs: {rss_small:.1f} MB; {args.large} pairs: {rss_large:.1f} MB")
        print(f"ratio: {rss_large / rss_small:.3f}x (target <= 1.2x)")
        if args.pieces > 1:
            pieces = []
            for i in range(args.pieces):
                _, text = peak_rss_mb(score_cmd(large, "--shard", f"{i}/{args.pieces}"))
                pieces.append(Path(tmp) / f"piece{i}.json")
                pieces[-1].write_text(text)
            _, merged = peak_rss_mb([sys.executable, "-m", "blurtools", "score", "--merge", *map(str, pieces), "--json"])
            same = json.loads(merged) == json.loads(whole)
            print(f"{args.pieces} shards merged == one run: {same}")


if __name__ == "__main__":
    main()
