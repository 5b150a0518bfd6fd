"""Issue 17 item 3: progress without a terminal.

When stderr is not a terminal (make, logs, CI) the long commands print a plain progress line at a modest
interval (done/total, rate, ETA); --quiet silences it; deblur counts its inputs first (never "0/?").
BLURTOOLS_PROGRESS_SECONDS sets the interval (0 = every update), so these tests need no waiting.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _train_tiny as tiny  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^(?P<what>[\w-]+): (?P<done>\d+)/(?P<total>\d+) (?P<unit>[\w()]+) \(\d+%\), [\d.]+ \S+/s, ETA \d+:\d\d:\d\d$")


def _env(seconds="0"):
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "BLURTOOLS_PROGRESS_SECONDS": seconds}


def test_plain_lines_come_at_the_interval_with_rate_and_eta():
    from blurtools.cli.plain_progress import PlainProgress

    now = [100.0]
    out = io.StringIO()
    meter = PlainProgress("deblur", total=10, unit="images", interval=30.0, clock=lambda: now[0], stream=out)
    for t in (5.0, 10.0, 29.0):  # within the first interval: silent
        now[0] = 100.0 + t
        meter.advance()
    assert out.getvalue() == ""
    now[0] = 131.0
    meter.advance()  # 4 done in 31 s
    lines = out.getvalue().splitlines()
    assert lines == ["deblur: 4/10 images (40%), 0.129 images/s, ETA 0:00:47"]
    now[0] = 140.0
    meter.advance()  # 9 s after the last line: silent again
    assert len(out.getvalue().splitlines()) == 1
    unknown = PlainProgress("blur-synth", total=None, unit="samples", interval=0.0, clock=lambda: now[0], stream=out)
    now[0] += 2
    unknown.advance(3)
    assert out.getvalue().splitlines()[-1] == "blur-synth: 3 samples, 1.50 samples/s"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for k in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3)).astype(np.uint8)).save(root / f"p{k}.png")
    return root


def _deblur(photos, out, *extra, seconds="0"):
    return subprocess.run([sys.executable, "-m", "blurtools", "deblur", *map(str, extra), "-o", str(out),
                           "--model", "classical", "--kernel-size", "9"], capture_output=True, text=True,
                          env=_env(seconds), cwd=photos)


def test_deblur_without_a_terminal_prints_counted_progress_lines(photos, tmp_path):
    res = _deblur(photos, f"{tmp_path / 'out'}/", photos)
    assert res.returncode == 0, res.stderr
    lines = [m.groupdict() for m in map(LINE.match, res.stderr.splitlines()) if m]
    assert lines and all(d["what"] == "deblur" and d["total"] == "3" and d["unit"] == "images" for d in lines)
    assert lines[-1]["done"] == "3"
    assert "?" not in res.stderr
    quiet = _deblur(photos, f"{tmp_path / 'q'}/", photos, "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_one_image_counts_its_windows_and_a_modest_interval_stays_quiet(photos, tmp_path):
    res = _deblur(photos, tmp_path / "one.png", photos / "p0.png", "--tile", "32", "--overlap", "4")
    assert res.returncode == 0, res.stderr
    units = {m.group("unit") for m in map(LINE.match, res.stderr.splitlines()) if m}
    assert units == {"windows"}, res.stderr
    calm = _deblur(photos, f"{tmp_path / 'calm'}/", photos, seconds="30")  # a quick run prints nothing
    assert calm.returncode == 0 and not [l for l in calm.stderr.splitlines() if LINE.match(l)]


def test_train_without_a_terminal_prints_steps_with_eta(tmp_path):
    data = tiny.make_set(tmp_path / "set", samples=2, frames=3, size=16)
    res = subprocess.run([sys.executable, str(ROOT / "tests" / "_train_tiny.py"), "train", "--model", "tiny",
                          "--data", str(data), "--out", str(tmp_path / "run"), "--steps", "3", "--batch", "1",
                          "--patch", "12", "--device", "cpu", "--log-every", "1000"],
                         capture_output=True, text=True, env=_env())
    assert res.returncode == 0, res.stderr
    lines = [m.groupdict() for m in map(LINE.match, res.stderr.splitlines()) if m]
    assert [d["done"] for d in lines if d["what"] == "train"] == ["1", "2", "3"], res.stderr
    assert all(d["unit"] == "steps" and d["total"] == "3" for d in lines)
