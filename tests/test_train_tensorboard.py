"""`train --tensorboard DIR`: event files with the run's scalars when tensorboard is installed; one error line
saying what to install when it is not; and the run folder drawn by `blurtools report`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _train_tiny as tiny  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--batch", "2", "--patch", "12", "--log-every", "2", "--device", "cpu", "--model-arg", "width=4"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return tiny.make_set(tmp_path_factory.mktemp("data") / "set", samples=4, frames=3, size=16)


@pytest.fixture(autouse=True)
def tiny_models(monkeypatch):
    tiny.install(monkeypatch.setitem)


def run(*args):
    from typer.testing import CliRunner

    from blurtools.cli.main import app

    return CliRunner().invoke(app, [*map(str, args)])


def test_event_files_hold_the_runs_scalars_and_report_draws_the_run(dataset, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = tmp_path / "tb"
    res = run("train", "--model", "tiny", "--data", dataset, "--val", dataset, "--val-crop", "16", "--val-every", "2",
              "--steps", "4", "--out", tmp_path / "run", "--tensorboard", board, "--quiet", *SMALL)
    assert res.exit_code == 0, res.output
    acc = EventAccumulator(str(board))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"train/loss", "train/lr", "val/psnr", "val/ssim"} <= set(tags)
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = {r["step"]: r["loss"] for r in logged if r["event"] == "train"}
    assert {e.step: pytest.approx(e.value, rel=1e-6) for e in acc.Scalars("train/loss")} == losses
    assert [e.step for e in acc.Scalars("val/psnr")] == [r["step"] for r in logged if r["event"] == "val"]
    conf = json.loads((tmp_path / "run" / "config.json").read_text())
    assert conf["config"]["tensorboard"] == str(board)

    res = run("report", tmp_path / "run", "-o", tmp_path / "run.html", "-q")
    assert res.exit_code == 0, res.output
    text = (tmp_path / "run.html").read_text()
    assert "training loss" in text and "<polyline" in text and "&quot;tensorboard&quot;" in text


def test_without_the_package_the_flag_says_what_to_install(dataset, tmp_path):
    # A fresh interpreter in which the tensorboard package cannot be found (as on a machine without it).
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import importlib.abc, sys\n"
        "class _Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'tensorboard' or name.startswith('tensorboard.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, _Hide())\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hide), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "blurtools", "train", "--model", "dm", "--data", str(dataset),
                          "--steps", "1", "--out", str(tmp_path / "run"), "--tensorboard", str(tmp_path / "tb"),
                          "--device", "cpu"], capture_output=True, text=True, env=env)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "error: --tensorboard needs the tensorboard package, which is not installed: pip install tensorboard"]
    assert not (tmp_path / "run").exists() and not (tmp_path / "tb").exists()
