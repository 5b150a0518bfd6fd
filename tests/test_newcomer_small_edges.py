"""Issue 17 item 9: the small sharp edges a newcomer hit."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from blurtools import __version__
from blurtools.cli.main import app

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args):
    res = CliRunner().invoke(app, [*map(str, args)])
    res.returncode = res.exit_code
    return res


def _sub(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd)


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def test_a_usage_error_is_one_line_not_a_box(tmp_path):
    res = _sub("-m", "blurtools", "deblur", "x.png", "-o", "y.png", "--bogus")
    assert res.returncode == 2
    line = _one_error_line(res.stderr)
    assert "--bogus" in line and "╭" not in res.stderr
    res = _sub("-m", "blurtools", "score")  # a missing argument
    assert res.returncode == 2 and "PRED" in _one_error_line(res.stderr)


def test_an_unreadable_image_message_is_well_formed(tmp_path):
    (tmp_path / "x.png").write_text("hello")
    res = _cli("deblur", tmp_path / "x.png", "-o", tmp_path / "y.png", "--model", "classical")
    line = _one_error_line(res.stderr)
    assert str(tmp_path / "x.png") in line and "``" not in line and line.count("(") == line.count(")")
    assert line.count("`") % 2 == 0


def test_a_tiny_image_error_names_the_file(tmp_path):
    Image.new("RGB", (1, 1)).save(tmp_path / "one.png")
    res = _cli("deblur", tmp_path / "one.png", "-o", tmp_path / "y.png", "--model", "classical")
    line = _one_error_line(res.stderr)
    assert line.startswith(f"error: {tmp_path / 'one.png'}: ") and "1x1" in line and "blurry:" not in line


class _Thing:  # a class a pickle would have to import: code a checkpoint never needs
    pass


@pytest.mark.parametrize("content", ["text", "lfs", "pickle", "code"])
def test_a_bad_pt_file_never_relays_torch_advice_or_warnings(tmp_path, content):
    bad = tmp_path / "w.pt"
    if content == "text":
        bad.write_text("these are not weights\n")
    elif content == "lfs":
        bad.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 1234\n")
    elif content == "pickle":
        bad.write_bytes(pickle.dumps({"state_dict": {"w": [1, 2]}}, protocol=4))
    else:
        bad.write_bytes(pickle.dumps({"model": _Thing}, protocol=2))
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    res = _sub("-m", "blurtools", "deblur", tmp_path / "a.png", "-o", tmp_path / "b.png", "--weights", bad)
    assert res.returncode == 1
    line = _one_error_line(res.stderr)  # no UserWarning lines either
    assert str(bad) in line
    for relayed in ("weights_only", "torch.load", "file an issue", "trust the source", "\x1b["):
        assert relayed not in line, line
    if content == "lfs":
        assert "Git LFS pointer" in line
    if content == "code":
        assert "_Thing" in line


def test_help_has_no_bool_metavar_no_brace_usage_and_no_stray_space():
    for command in ("deblur", "extract-video", "blur-synth", "train", "score", "pack-h5", "phase-code"):
        res = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0
        assert "<bool>" not in res.stdout and "BOOLEAN" not in res.stdout, command
        assert not re.search(r"\{\w+\}\.\.\.", res.stdout), command
        assert not re.search(r"\w \.(\s|$)", res.stdout), (command, re.search(r".{30}\w \.(\s|$)", res.stdout))


@pytest.mark.parametrize("tool", ["blur-synth", "phase-code", "pack-h5", "extract-video"])
def test_standalone_executables_print_their_version(tool):
    module = {"blur-synth": "blur_synth", "phase-code": "phase_code", "pack-h5": "pack_h5",
              "extract-video": "extract_video"}[tool]
    res = _sub("-c", f"import sys; sys.argv = [{tool!r}, '--version']; from blurtools.cli.{module} import main; main()")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"{tool} (blurtools) {__version__}"


def test_rgba_input_keeps_its_alpha_through_deblur(tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (40, 48, 4)).astype(np.uint8)
    rgba[..., 3] = np.linspace(0, 255, 48, dtype=np.uint8)[None, :]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    res = _cli("deblur", tmp_path / "a.png", "-o", tmp_path / "b.png", "--model", "classical", "--kernel-size", "9")
    assert res.returncode == 0, res.output
    with Image.open(tmp_path / "b.png") as out:
        assert out.mode == "RGBA"
        assert np.array_equal(np.asarray(out)[..., 3], rgba[..., 3])
    res = _cli("deblur", tmp_path / "a.png", "-o", tmp_path / "b.jpg", "--model", "classical", "--kernel-size", "9")
    assert res.returncode == 0 and "alpha" in res.stderr  # a JPEG cannot keep it: said so


def test_readme_names_the_real_sample_set_files_and_pyproject_license_is_spdx():
    readme = (ROOT / "README.md").read_text()
    assert "sharp/ID/K.png" not in readme and "sharp/ID/0000.png" in readme
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"


def test_a_blur_longer_than_the_kernel_size_gets_a_hint(tmp_path):
    from blurtools.ops.blind_kernel import linear_motion_kernel
    from blurtools.io.images import write_image
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(1)
    sharp = torch.from_numpy(np.kron(rng.random((24, 24)), np.ones((8, 8)))).float()[None, None].repeat(1, 3, 1, 1)
    k = linear_motion_kernel(41, 0.0)
    blurred = F.conv2d(F.pad(sharp, [k.shape[-1] // 2] * 2 + [k.shape[-2] // 2] * 2, mode="replicate"),
                       k[None, None].repeat(3, 1, 1, 1).float(), groups=3)
    write_image(tmp_path / "long.png", blurred[0].clamp(0, 1))
    res = _cli("deblur", tmp_path / "long.png", "-o", tmp_path / "out.png", "--model", "classical",
               "--kernel-size", "9")
    assert res.returncode == 0, res.output
    assert "--kernel-size" in res.stderr, res.stderr
