"""Tiny synthetic sequences for the blur-synth / phase-code / sources tests (made on the fly, never shipped)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List, Sequence

import numpy as np

from blurtools.io.video import write_mp4
from blurtools.synth.output import encode_png8


def smooth_texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A colourful low-frequency texture, uint8 (h, w, 3): smooth enough that shifts give small content scores."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.zeros((h, w, 3))
    for c in range(3):
        for _ in range(3):
            fy, fx = rng.uniform(0.02, 0.12, 2)
            ph = rng.uniform(0, 2 * np.pi)
            out[..., c] += np.sin(fx * x + fy * y + ph)
    out = 128 + 40 * out
    return np.clip(out, 0, 255).round().astype(np.uint8)


def moving(n: int, h: int = 24, w: int = 32, step: int = 1, seed: int = 0) -> List[np.ndarray]:
    """n frames of a texture panned ``step`` pixels per frame to the left."""
    tex = smooth_texture(h, w + abs(step) * n + 2, seed)
    return [np.ascontiguousarray(tex[:, i * step:i * step + w]) for i in range(n)]


def static(n: int, h: int = 24, w: int = 32, seed: int = 0) -> List[np.ndarray]:
    frame = smooth_texture(h, w, seed)
    return [frame.copy() for _ in range(n)]


def write_folder(folder: Path, frames: Sequence[np.ndarray], start: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        (folder / f"{start + i:08d}.png").write_bytes(encode_png8(f, 1))
    return folder


def write_video(path: Path, frames: Sequence[np.ndarray]) -> Path:
    write_mp4(path, frames, fps=24, quality=10)
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m blurtools ARGS`` with captured output."""
    return subprocess.run([sys.executable, "-m", "blurtools", *args], capture_output=True, text=True, timeout=300)


def run_standalone(module: str, *args: str) -> subprocess.CompletedProcess:
    """The standalone executable of a CLI module (what the ``blur-synth``/``phase-code`` scripts run)."""
    code = f"import sys; sys.argv[0] = {module!r}; from blurtools.cli.{module} import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


def invoke(*args: str):
    """``blurtools ARGS`` in-process (fast); ``returncode``, ``stdout`` and ``stderr`` as a shell sees them."""
    from typer.testing import CliRunner

    from blurtools.cli.main import app

    res = CliRunner().invoke(app, [str(a) for a in args])
    res.returncode = res.exit_code
    return res
