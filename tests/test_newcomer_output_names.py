"""Issue 17 item 5: what -o names.

A suffix that is not a known format is a usage error (exit 2) listing the formats; a folder is asked for
with a trailing / or an existing folder; `deblur -o -` writes the one image to stdout as PNG.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from blurtools.cli.main import app

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def photo(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 48, 3)).astype(np.uint8)).save(tmp_path / "a.png")
    return tmp_path / "a.png"


def _run(*args):
    res = CliRunner().invoke(app, [*map(str, args)])
    res.returncode = res.exit_code
    return res


def _usage(res, *fragments):
    assert res.returncode == 2, res.output
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("error: "), res.stderr
    for f in fragments:
        assert f in line, line


CLASSICAL = ["--model", "classical", "--kernel-size", "9", "--quiet"]


@pytest.mark.parametrize("tool, name, formats", [("deblur", "out.xyz", ".png"), ("deblur", "out", ".jpg"),
                                                 ("extract-video", "out.mkv", ".gif"),
                                                 ("extract-video", "clip", ".mp4")])
def test_an_unknown_or_missing_suffix_is_a_usage_error_listing_the_formats(photo, tmp_path, tool, name, formats):
    res = _run(tool, photo, "-o", tmp_path / name, *CLASSICAL)
    _usage(res, name, formats, "/")
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("tool", ["deblur", "extract-video"])
def test_a_trailing_slash_or_an_existing_folder_asks_for_a_folder(photo, tmp_path, tool):
    res = _run(tool, photo, "-o", str(tmp_path / "new.d") + "/", *CLASSICAL)
    assert res.returncode == 0, res.output
    assert (tmp_path / "new.d").is_dir() and (tmp_path / "new.d" / "meta.json").is_file()
    (tmp_path / "there").mkdir()
    res = _run(tool, photo, "-o", tmp_path / "there", *CLASSICAL)
    assert res.returncode == 0, res.output
    assert (tmp_path / "there" / "meta.json").is_file()


def test_deblur_to_stdout_writes_one_png(photo, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "blurtools", "deblur", str(photo), "-o", "-", *CLASSICAL],
                         capture_output=True, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    with Image.open(io.BytesIO(res.stdout)) as im:
        assert im.format == "PNG" and im.size == (48, 40)
    assert not (tmp_path / "-").exists()
    two = subprocess.run([sys.executable, "-m", "blurtools", "deblur", str(photo), str(photo), "-o", "-", *CLASSICAL],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert two.returncode == 2 and "one image" in two.stderr
