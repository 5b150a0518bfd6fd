"""Issue 17 item 6: an OS error on an output names the output path and the reason in one line, exit 1, and
leaves nothing partial.

The permission test runs the real executables against a folder they may not write. As root (which writes
anywhere) it runs them without the capabilities that override file permissions (setpriv), so the kernel
refuses the write as it would for a user.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _train_tiny as tiny  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def _unprivileged() -> list:
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot make a folder unwritable")
    drop = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    from blurtools.io.video import write_mp4

    rng = np.random.default_rng(0)
    base = np.kron(rng.integers(0, 255, (6, 16, 3)).astype(np.uint8), np.ones((8, 8, 1), np.uint8))
    write_mp4(root / "clip.mp4", [base[:, i:i + 64] for i in range(40)], fps=30)
    Image.fromarray(base[:, :64]).save(root / "photo.png")
    (root / "photos").mkdir()
    for k in range(2):
        Image.fromarray(base[:, 8 * k:8 * k + 64]).save(root / "photos" / f"p{k}.png")
    sset = tiny.make_set(root / "set", samples=3, frames=3, size=16)
    (root / "pred").mkdir()
    for i in range(3):
        shutil.copy(sset / "sharp" / f"s{i:03d}" / "0001.png", root / "pred" / f"s{i:03d}.png")
    return root


@pytest.fixture()
def locked(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


def _commands(i: Path, out: Path):
    bt = [PY, "-m", "blurtools"]
    return {
        "deblur": [*bt, "deblur", str(i / "photo.png"), "-o", str(out / "sharp.png"), "--model", "classical"],
        "deblur-folder": [*bt, "deblur", str(i / "photos"), "-o", str(out / "many") + "/",
                          "--model", "classical"],
        "extract-video": [*bt, "extract-video", str(i / "photo.png"), "-o", str(out / "v.gif"), "--model", "classical"],
        "blur-synth": [*bt, "blur-synth", str(i / "clip.mp4"), "-n", "5", "-o", str(out / "set")],
        "pack-h5": [*bt, "pack-h5", str(i / "set"), "-o", str(out / "p.h5")],
        "train": [PY, str(ROOT / "tests" / "_train_tiny.py"), "train", "--model", "tiny", "--data", str(i / "set"),
                  "--out", str(out / "run"), "--steps", "2", "--batch", "2", "--patch", "12", "--device", "cpu"],
        "score": [*bt, "score", str(i / "pred"), str(i / "set"), "--csv", str(out / "s.csv"), "--allow-missing"],
    }


SLOW = pytest.mark.slow  # each starts a fresh interpreter: a few tools run in the default suite, all in the slow one


@pytest.mark.parametrize("tool", ["deblur", "train", "pack-h5", *(pytest.param(t, marks=SLOW) for t in
                                                                   ("deblur-folder", "extract-video", "blur-synth", "score"))])
def test_an_unwritable_output_folder_says_permission_denied_with_the_path(inputs, locked, tool):
    cmd = _commands(inputs, locked)[tool]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([*_unprivileged(), *cmd, "--quiet"], capture_output=True, text=True, env=env, cwd=inputs)
    assert res.returncode == 1, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"error: {locked}/") and "permission denied" in lines[0], lines[0]
    assert "internal error" not in lines[0] and str(inputs) not in lines[0]
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "no space left on the device"),
                                          (errno.EROFS, "read-only file system")])
def test_disk_full_and_read_only_name_the_output_and_leave_nothing(inputs, tmp_path, monkeypatch, code, reason):
    from typer.testing import CliRunner

    from blurtools.cli.main import app

    real_fsync = os.fsync

    def failing_fsync(fd):  # the data was written to the temporary file; the disk then fills up
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".part.csv"):
            raise OSError(code, os.strerror(code))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    out = tmp_path / "out"
    out.mkdir()
    res = CliRunner().invoke(app, ["score", str(inputs / "pred"), str(inputs / "set"), "--csv", str(out / "s.csv"),
                                   "--allow-missing", "--quiet"])
    assert res.exit_code == 1
    assert res.stderr.strip().splitlines()[-1] == f"error: {out / 's.csv'}: cannot write: {reason}"
    assert list(out.iterdir()) == []
