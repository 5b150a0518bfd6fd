"""Benchmark `blurtools train` on the dense deblurring module (dm): throughput, and a short real run.

    python benchmarks/train_dm.py throughput [--device cpu|cuda] [--batch B] [--amp none,bf16]
    python benchmarks/train_dm.py real [--minutes 4] [--device cpu]
    python benchmarks/train_dm.py all

throughput: samples/s of the full training step (forward, loss, backward, Adam, logging) for dm at its
published size (about 4.7M parameters, 17.9 MB) on 256x256 crops, through the real engine with the data
preloaded (decoded once into memory), so the loader is not the bottleneck; the loader's own rate is
printed next to it to show that. Each setting runs 2k steps and reports the second window of k steps
(the first holds the warm-up). --amp none,bf16 compares float32 with bfloat16 autocast (CUDA, or the CPU where it has bf16 instructions).

real: a sample set made by `blur-synth --stills` from scikit-image's sample photos (camera-shake
trajectories), split by photo into training and validation, then dm (a reduced width, so a few CPU minutes
give it a few hundred steps) trained for about --minutes; prints the validation PSNR/SSIM of the model
next to the blurry input's at every validation.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blurtools.io.sampleset import SampleSetWriter  # noqa: E402
from blurtools.models.dm import DenseDeblurModule  # noqa: E402
from blurtools.data.stream import StepBatches, open_training_data  # noqa: E402
from blurtools.train import distributed as D  # noqa: E402
from blurtools.train.config import TrainConfig  # noqa: E402
from blurtools.train.engine import train  # noqa: E402
from blurtools.train.recipes.dm import RECIPE  # noqa: E402

TRAIN_PHOTOS = ("astronaut", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "camera", "brick",
                "grass", "gravel", "coins", "cell")
VAL_PHOTOS = ("chelsea", "clock", "page")


def _photo(name: str) -> np.ndarray:
    import skimage.data

    a = np.asarray(getattr(skimage.data, name)())
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.ascontiguousarray(a[:, :, :3].astype(np.uint8))


def _throughput_set(root: Path, size: int = 256, count: int = 8) -> Path:
    """``count`` 256x256 crops of the sample photos, a box-blurred input and its sharp crop."""
    writer = SampleSetWriter(root, tool="benchmark", options={"size": size})
    k = torch.ones(3, 1, 1, 9) / 9
    for i, name in enumerate(TRAIN_PHOTOS[:count]):
        a = torch.from_numpy(_photo(name)).permute(2, 0, 1).float() / 255
        h, w = a.shape[-2:]
        crop = a[:, (h - size) // 2:(h - size) // 2 + size, (w - size) // 2:(w - size) // 2 + size]
        blurry = torch.nn.functional.conv2d(crop[None], k, padding=(0, 4), groups=3)[0].clamp(0, 1)
        writer.add(f"s{i}", blurry, [crop])
    return root


def _loader_rate(data: Path, batch: int, patch: int, steps: int = 20) -> float:
    ds = open_training_data(str(data), patch, True, 0, preload=True)
    stream = StepBatches(ds, batch)
    stream[0]
    t = time.perf_counter()
    for s in range(steps):
        stream[s]
    return steps * batch / (time.perf_counter() - t)


def throughput(device: str, batch: int, amps: list, k: int, workdir: Path, workers: int = 0) -> None:
    data = _throughput_set(workdir / "tp_set")
    dev = D.resolve_device(device)
    print(f"dm published size: {sum(p.numel() for p in DenseDeblurModule().parameters()) / 1e6:.2f}M parameters; "
          f"256x256 crops, batch {batch}, {dev}" + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else
                                                    f" ({torch.get_num_threads()} threads)"))
    print(f"loader alone (preloaded, crops + flips): {_loader_rate(data, batch, 256):.1f} samples/s per process; "
          f"{workers} loader worker(s)")
    for amp in amps:
        out = workdir / f"tp_run_{amp}"
        shutil.rmtree(out, ignore_errors=True)
        cfg = TrainConfig(model="dm", data=str(data), out=str(out), steps=2 * k, batch=batch, patch=256,
                          log_every=k, save_every=10 ** 9, device=device, amp=amp, preload=True, workers=workers)
        train(cfg, DenseDeblurModule, RECIPE)
        recs = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
        rate = [r for r in recs if r["event"] == "train"][-1]["samples_per_s"]
        print(f"train step (amp {amp}): {rate:.2f} samples/s ({batch / rate:.3f} s per step of {batch})")


def _run(cmd: list) -> None:
    res = subprocess.run([sys.executable, "-m", "blurtools", *cmd], cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:1])} failed:\n{res.stderr}")


def real(device: str, minutes: float, workdir: Path, model_args: dict, patch: int, batch: int, blur: float,
         lr: float = 2e-3) -> None:
    import imageio.v3 as iio

    for split, names in (("train", TRAIN_PHOTOS), ("val", VAL_PHOTOS)):
        (workdir / f"photos_{split}").mkdir(parents=True, exist_ok=True)
        for n in names:
            iio.imwrite(workdir / f"photos_{split}" / f"{n}.png", _photo(n))
    t = time.perf_counter()
    common = ["--stills", "--trajectory-length", str(blur), "--quiet"]
    _run(["blur-synth", str(workdir / "photos_train"), "-o", str(workdir / "set_train"), "--per-still", "6",
          "--seed", "1", *common])
    _run(["blur-synth", str(workdir / "photos_val"), "-o", str(workdir / "set_val"), "--per-still", "2",
          "--seed", "2", *common])
    print(f"blur-synth: {len(TRAIN_PHOTOS) * 6} training and {len(VAL_PHOTOS) * 2} validation samples from "
          f"scikit-image photos, trajectories up to {blur:g} px, in {time.perf_counter() - t:.0f} s")
    base = dict(model="dm", data=str(workdir / "set_train"), batch=batch, patch=patch, lr=lr, device=device,
                model_args=model_args, preload=True, log_every=10 ** 9, save_every=10 ** 9)
    probe = workdir / "probe"
    shutil.rmtree(probe, ignore_errors=True)
    stamps = {}
    train(TrainConfig(out=str(probe), steps=6, **base), DenseDeblurModule, RECIPE,
          callback=lambda rec: stamps.setdefault(rec.get("step"), time.perf_counter()) if rec["event"] == "step" else None)
    per_step = (stamps[6] - stamps[2]) / 4  # steady steps only: no loading, no first-step warm-up
    steps = max(20, int(minutes * 60 / per_step) // 4 * 4)
    print(f"dm {model_args}: about {per_step:.2f} s per step of {batch} {patch}x{patch} crops; training {steps} steps")
    out = workdir / "run"
    shutil.rmtree(out, ignore_errors=True)

    def show(rec):
        if rec["event"] == "val":
            print(f"  step {rec['step']:5d}: val PSNR {rec['psnr']:.2f} dB, SSIM {rec['ssim']:.4f}   "
                  f"(blurry input {rec['blurry_psnr']:.2f} dB, {rec['blurry_ssim']:.4f})", flush=True)

    t = time.perf_counter()
    cfg = TrainConfig(out=str(out), steps=steps, val=str(workdir / "set_val"), val_every=max(1, steps // 4),
                      val_crop=0, **{**base, "log_every": max(1, steps // 4)})
    result = train(cfg, DenseDeblurModule, RECIPE, callback=show)
    vals = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines() if '"val"' in s]
    last = vals[-1]
    print(f"trained {steps} steps in {(time.perf_counter() - t) / 60:.1f} min: validation PSNR {last['psnr']:.2f} dB vs "
          f"blurry input {last['blurry_psnr']:.2f} dB ({last['psnr'] - last['blurry_psnr']:+.2f} dB); "
          f"best {result.best_psnr:.2f} dB; weights {result.weights}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("throughput", "real", "all"))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=None, help="throughput batch (default 2 on CPU, 64 on CUDA)")
    ap.add_argument("--window", type=int, default=None, help="steps per timing window (default 2 CPU, 10 CUDA)")
    ap.add_argument("--workers", type=int, default=None, help="loader workers (default 0 on CPU, 6 on CUDA)")
    ap.add_argument("--amp", default=None, help="comma list for throughput (default none; none,bf16 on CUDA)")
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--width", type=int, default=16, help="dm width for the real run")
    ap.add_argument("--growth", type=int, default=16)
    ap.add_argument("--patch", type=int, default=96)
    ap.add_argument("--real-batch", type=int, default=8)
    ap.add_argument("--blur", type=float, default=15.0, help="maximum trajectory length in pixels")
    ap.add_argument("--lr", type=float, default=2e-3, help="learning rate of the real run (cosine schedule)")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    cuda = D.resolve_device(args.device).type == "cuda"
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="blurtools-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.what in ("throughput", "all"):
        amps = (args.amp or ("none,bf16" if cuda else "none")).split(",")
        throughput(args.device, args.batch or (64 if cuda else 2), amps, args.window or (10 if cuda else 2), workdir,
                   args.workers if args.workers is not None else (6 if cuda else 0))
    if args.what in ("real", "all"):
        real(args.device, args.minutes, workdir, {"width": args.width, "growth": args.growth}, args.patch,
             args.real_batch, args.blur, args.lr)


if __name__ == "__main__":
    main()
