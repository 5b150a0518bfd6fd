"""Regression proof: run every command on a fixed small set this script makes itself and print a SHA-256 per
output, so two checkouts (before and after a refactoring) can be compared line by line.

    python benchmarks/regression_outputs.py --repo /path/to/checkout --workdir /tmp/reg-a > a.txt
    python benchmarks/regression_outputs.py --repo /path/to/other  --workdir /tmp/reg-b > b.txt
    diff <(cut -d' ' -f2- a.txt) <(cut -d' ' -f2- b.txt)      # or compare by hand

Commands run (CPU, fixed seeds): blur-synth, phase-code, pack-h5, train (dm and niu, a few steps on tiny
data), deblur (shipped default weights, the trained checkpoint, the classical method), extract-video
(shipped default weights to PNG frames and a GIF, the trained niu checkpoint), score (with --csv).

What is hashed, per output file:

* PNG images: the decoded pixels (mode, size, bytes) and, separately, their text chunks (provenance);
* GIFs: the decoded frames (RGB, size, duration) and, separately, their comment (provenance);
* ``.npy`` and other binary files: their bytes;
* ``.pt`` checkpoints: every tensor (name, dtype, shape, bytes) and the remaining plain data;
* ``.h5`` packs: every dataset (name, dtype, shape, bytes; string datasets by their text) and the
  attributes;
* JSON / JSON lines / CSV / text: the content;
* each command's ``--json`` stdout.

Fields that legitimately differ between runs are left out of the hashes, and listed here: the work
folder's path (replaced by ``<W>`` wherever it appears: provenance records absolute paths), the checkout's
path, and keys that hold times or speeds (any key containing ``time``, ``date``, ``elapsed``, ``_s``
suffixes ``elapsed_s``/``seconds``/``samples_per_s``/``per_s``, ``created``, ``host``, ``pid``).
Timestamps never reach pixels, tensors or numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
from PIL import Image

VOLATILE = re.compile(r"(time|date|elapsed|seconds|per_s$|_s$|created|host|pid)", re.I)


def make_inputs(root: Path) -> Dict[str, Path]:
    """A 16-frame clip of a smooth moving pattern (64x48), written as PNG frames, and one still image."""
    rng = np.random.default_rng(1234)
    base = rng.random((3, 20, 40))
    yy, xx = np.mgrid[0:48, 0:64]
    clip = root / "src" / "clip"
    clip.mkdir(parents=True, exist_ok=True)
    for t in range(16):
        img = np.zeros((48, 64, 3))
        for c in range(3):
            img[..., c] = 0.5 + 0.25 * np.sin((xx + 2 * t) / (5.0 + c) + base[c, 0, 0] * 6) \
                * np.cos((yy - t) / (7.0 + c) + base[c, 1, 1] * 6) + 0.2 * base[c, (yy // 3) % 20, (xx + t) // 2 % 40]
        Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).save(clip / f"f{t:03d}.png")
    return {"clip": clip}


def normalise(obj: Any, workdir: str, repo: str) -> Any:
    """``obj`` without volatile keys, with the work folder and checkout paths replaced."""
    if isinstance(obj, dict):
        return {k: normalise(v, workdir, repo) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))
                if not VOLATILE.search(str(k))}
    if isinstance(obj, (list, tuple)):
        return [normalise(v, workdir, repo) for v in obj]
    if isinstance(obj, str):
        return obj.replace(workdir, "<W>").replace(repo, "<REPO>")
    return obj


def digest_text(text: str, workdir: str, repo: str) -> str:
    return hashlib.sha256(text.replace(workdir, "<W>").replace(repo, "<REPO>").encode()).hexdigest()


def digest_plain(obj: Any, workdir: str, repo: str) -> str:
    return hashlib.sha256(json.dumps(normalise(obj, workdir, repo), sort_keys=True, default=str).encode()).hexdigest()


def digest_tensors(obj: Any, h: "hashlib._Hash", prefix: str = "") -> Any:
    """Feed every tensor of a nested structure into ``h``; return the structure with tensors removed."""
    import torch

    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"{prefix}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        return "<tensor>"
    if isinstance(obj, dict):
        return {k: digest_tensors(obj[k], h, f"{prefix}/{k}") for k in sorted(obj, key=str)}
    if isinstance(obj, (list, tuple)):
        return [digest_tensors(v, h, f"{prefix}/{i}") for i, v in enumerate(obj)]
    return obj


def digest_file(path: Path, workdir: str, repo: str) -> List[str]:
    """``kind=sha256`` entries for one output file."""
    suffix = path.suffix.lower()
    if suffix == ".png":
        with Image.open(path) as im:
            im.load()
            pixels = hashlib.sha256(f"{im.mode}|{im.size}|".encode() + im.tobytes()).hexdigest()
            texts = {k: v for k, v in (getattr(im, "text", {}) or {}).items()}
        parsed = {}
        for k, v in texts.items():
            try:
                parsed[k] = json.loads(v)
            except ValueError:
                parsed[k] = v
        return [f"pixels={pixels}", f"text={digest_plain(parsed, workdir, repo)}"]
    if suffix == ".gif":
        from PIL import ImageSequence

        h = hashlib.sha256()
        with Image.open(path) as im:
            comment = im.info.get("comment", b"")
            for frame in ImageSequence.Iterator(im):
                rgb = frame.convert("RGB")
                h.update(f"{rgb.size}|{frame.info.get('duration')}|".encode() + rgb.tobytes())
        comment = comment.decode("utf-8", "replace") if isinstance(comment, bytes) else str(comment)
        try:
            parsed = json.loads(comment)
        except ValueError:
            parsed = comment
        return [f"frames={h.hexdigest()}", f"comment={digest_plain(parsed, workdir, repo)}"]
    if suffix in (".pt", ".pth"):
        import torch

        h = hashlib.sha256()
        rest = digest_tensors(torch.load(path, map_location="cpu", weights_only=True), h)
        return [f"tensors={h.hexdigest()}", f"data={digest_plain(rest, workdir, repo)}"]
    if suffix in (".h5", ".hdf5"):
        import h5py

        h, attrs = hashlib.sha256(), {}
        with h5py.File(path, "r") as f:
            def visit(name, node):
                attrs[name] = {k: np.asarray(v).tolist() if not isinstance(v, (str, bytes)) else str(v)
                               for k, v in node.attrs.items()}
                if isinstance(node, h5py.Dataset):
                    a = node[()]
                    h.update(f"{name}|{a.dtype}|{a.shape}|".encode())
                    if a.dtype == object:       # variable-length strings: their text, not their pointers
                        h.update(json.dumps([x.decode() if isinstance(x, bytes) else str(x) for x in a.ravel()]).encode())
                    else:
                        h.update(np.ascontiguousarray(a).tobytes())
            attrs["/"] = {k: str(v) for k, v in f.attrs.items()}
            f.visititems(visit)
        parsed = {}
        for name, a in attrs.items():
            parsed[name] = {k: (json.loads(v) if isinstance(v, str) and v[:1] in "{[" else v) for k, v in a.items()}
        return [f"datasets={h.hexdigest()}", f"attrs={digest_plain(parsed, workdir, repo)}"]
    if suffix == ".json":
        return [f"json={digest_plain(json.loads(path.read_text()), workdir, repo)}"]
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [f"jsonl={digest_plain(rows, workdir, repo)}"]
    if suffix in (".csv", ".txt", ".toml"):
        return [f"text={digest_text(path.read_text(), workdir, repo)}"]
    return [f"bytes={hashlib.sha256(path.read_bytes()).hexdigest()}"]


def run(repo: Path, workdir: Path, name: str, args: List[str], log: List[str]) -> None:
    env = dict(os.environ, PYTHONPATH=str(repo), CUDA_VISIBLE_DEVICES="", PYTHONHASHSEED="0")
    proc = subprocess.run([sys.executable, "-m", "blurtools", *args], cwd=workdir, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{name}: exit {proc.returncode}")
    try:
        doc = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        doc = proc.stdout
    log.append(f"stdout:{name} json={digest_plain(doc, str(workdir), str(repo))}")


def commands(w: Path) -> List[tuple]:
    src = str(w / "src")
    blurry = str(w / "synth")
    return [
        ("blur-synth", ["blur-synth", src, "-o", "synth", "--frames", "5", "--stride", "3", "--seed", "3",
                        "--device", "cpu", "--workers", "1", "--json", "-q"]),
        ("phase-code", ["phase-code", src, "-o", "phase", "--frames", "5", "--stride", "5", "--psf-size", "15",
                        "--seed", "5", "--device", "cpu", "--workers", "1", "--json", "-q"]),
        ("pack-h5", ["pack-h5", "synth", "-o", "pack.h5", "--seed", "0", "-q"]),
        ("train-dm", ["train", "--model", "dm", "--data", "pack.h5", "--val", "synth", "--out", "run-dm",
                      "--steps", "3", "--batch", "2", "--patch", "32", "--seed", "7", "--device", "cpu",
                      "--model-arg", "width=8", "--model-arg", "growth=4", "--val-every", "3", "--val-crop", "32",
                      "--json", "-q"]),
        ("train-niu", ["train", "--model", "niu", "--data", "synth", "--out", "run-niu", "--steps", "2",
                       "--batch", "2", "--patch", "32", "--seed", "8", "--device", "cpu", "--model-arg", "width=4",
                       "--model-arg", "blocks=1", "--no-pretrained-vgg", "--json", "-q"]),
        ("deblur-default", ["deblur", blurry, "-o", "deblur-default", "--device", "cpu", "--json", "-q"]),
        ("deblur-trained", ["deblur", blurry, "-o", "deblur-trained", "--weights", "run-dm/weights.pt",
                            "--device", "cpu", "--refine", "none", "--json", "-q"]),
        ("deblur-classical", ["deblur", blurry, "-o", "deblur-classical", "--model", "classical",
                              "--kernel-size", "15", "--device", "cpu", "--json", "-q"]),
        ("extract-video-png", ["extract-video", blurry, "-o", "ev-png", "--format", "png", "--device", "cpu",
                               "--json", "-q"]),
        ("extract-video-gif", ["extract-video", blurry, "-o", "ev-gif", "--format", "gif", "--sheet",
                               "sheet.png", "--weights", "run-niu/weights.pt", "--refine", "none",
                               "--device", "cpu", "--json", "-q"]),
        ("score", ["score", "deblur-default", "synth", "--csv", "score.csv", "--ignore-unmatched", "--json", "-q"]),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1], help="checkout to run")
    ap.add_argument("--workdir", type=Path, required=True, help="empty folder for inputs and outputs")
    ap.add_argument("--only", nargs="*", help="run these steps only (names as printed)")
    ap.add_argument("--hash-only", action="store_true", help="hash the outputs already in --workdir, run nothing")
    a = ap.parse_args()
    w, repo = a.workdir.resolve(), a.repo.resolve()
    log: List[str] = []
    if not a.hash_only:
        if w.exists():
            shutil.rmtree(w)
        w.mkdir(parents=True)
        make_inputs(w)
    for name, args in ([] if a.hash_only else commands(w)):
        if a.only and name not in a.only:
            continue
        print(f"running {name}", file=sys.stderr, flush=True)
        run(repo, w, name, args, log)
    for path in sorted(p for p in w.rglob("*") if p.is_file()):
        rel = path.relative_to(w).as_posix()
        for entry in digest_file(path, str(w), str(repo)):
            log.append(f"{rel} {entry}")
    print("\n".join(log))


if __name__ == "__main__":
    main()
