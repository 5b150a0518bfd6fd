"""Issue 17 item 4: every container holds the frames the record says, identical frames included."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from blurtools.io.video import iter_frames, write_gif, write_mp4, write_webp

WRITERS = {".gif": write_gif, ".webp": write_webp, ".mp4": write_mp4}


def _still(value: int = 100, size=(16, 20)):
    rng = np.random.default_rng(value)
    return rng.integers(0, 255, (*size, 3)).astype(np.uint8)


@pytest.mark.parametrize("suffix", sorted(WRITERS))
def test_identical_frames_are_all_kept(tmp_path, suffix):
    a, b = _still(1), _still(2)
    frames = [a] * 3 + [b] * 2 + [a] * 2
    path = tmp_path / f"v{suffix}"
    WRITERS[suffix](path, frames, fps=10, comment="made by a test")
    got = list(iter_frames(path))
    assert len(got) == 7
    if suffix != ".mp4":  # lossless containers give the pixels back (GIF: up to its 256-colour palette)
        tol = 0 if suffix == ".webp" else 24
        for want, have in zip(frames, got):
            assert np.abs(want.astype(int) - have.astype(int)).mean() <= tol


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_timing_loop_and_comment_survive(tmp_path, suffix):
    path = tmp_path / f"v{suffix}"
    WRITERS[suffix](path, [_still(3)] * 4, fps=20, loop=0, comment='{"tool": "t"}')
    with Image.open(path) as im:
        assert im.n_frames == 4 and im.size == (20, 16)
        assert im.info.get("loop") == 0
        durations = []
        for k in range(im.n_frames):
            im.seek(k)
            im.load()  # WebP reports a frame's duration once it is decoded
            durations.append(im.info["duration"])
        assert durations == [50] * 4
        text = im.info["comment"] if suffix == ".gif" else im.info["xmp"]
        assert b'{"tool": "t"}' in text or b"{&quot;tool&quot;: &quot;t&quot;}" in text
    once = tmp_path / f"once{suffix}"
    WRITERS[suffix](once, [_still(3), _still(4)], fps=10, loop=1)
    with Image.open(once) as im:
        assert im.n_frames == 2
        assert "loop" not in im.info if suffix == ".gif" else im.info["loop"] == 1


def test_extract_video_of_a_still_image_holds_the_frames_meta_json_says(tmp_path):
    """A flat still (no blur, nothing to move) gives identical frames: the GIF must still hold all of them."""
    from typer.testing import CliRunner

    from blurtools.cli.main import app

    flat = np.full((24, 32, 3), 128, np.uint8)
    Image.fromarray(flat).save(tmp_path / "still.png")
    res = CliRunner().invoke(app, ["extract-video", str(tmp_path / "still.png"), "-o", str(tmp_path / "v.gif"),
                                   "--model", "classical", "--quiet"])
    assert res.exit_code == 0, res.output
    with Image.open(tmp_path / "v.gif") as im:
        record = json.loads(im.info["comment"])
        n = im.n_frames
    frames = record.get("frames") or record.get("options", {}).get("frames")
    assert isinstance(frames, int) and frames > 1, record
    assert n == frames
