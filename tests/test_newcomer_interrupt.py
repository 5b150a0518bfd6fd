"""Issue 17 item 2: an interrupted `train` keeps its run.

SIGINT/SIGTERM finish the step, write last.pt atomically and exit 130; --resume continues at that step on
the uninterrupted trajectory; a fresh start in a folder with old metrics rotates them away; last.pt is also
written by wall-clock time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _train_tiny as tiny  # noqa: E402
from blurtools.train.checkpoint import read_checkpoint, state_digest  # noqa: E402
from blurtools.train.config import TrainConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = [sys.executable, str(ROOT / "tests" / "_train_tiny.py"), "train"]
SMALL = ["--model", "tiny", "--batch", "2", "--patch", "12", "--device", "cpu", "--model-arg", "width=4",
         "--log-every", "1", "--save-every", "100000", "--save-minutes", "0", "--steps", "100000"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return tiny.make_set(tmp_path_factory.mktemp("data") / "set", samples=4, frames=3, size=16)


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _logged_steps(run: Path):
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    steps = []
    for line in path.read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except (ValueError, KeyError):
            pass
    return steps


def _interrupt_after(args, run: Path, sig: int, steps: int = 3):
    """Start `train`, wait until it has logged ``steps`` steps, send ``sig``; (returncode, stdout, stderr)."""
    proc = subprocess.Popen([*TINY, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        deadline = time.monotonic() + 120
        while len(_logged_steps(run)) < steps:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "train logged no steps"
            time.sleep(0.05)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


def test_sigint_writes_last_pt_exits_130_and_resume_continues_exactly(dataset, tmp_path):
    run = tmp_path / "run"
    code, out, err = _interrupt_after([*SMALL, "--data", str(dataset), "--out", str(run)], run, signal.SIGINT)
    assert code == 130, err
    stopped = read_checkpoint(run / "last.pt")["step"]
    assert stopped >= 3
    assert f"interrupted at step {stopped}" in err and "--resume" in err
    assert not [p for p in run.iterdir() if ".part" in p.name]  # nothing half-written
    # --resume continues at the step it stopped on ...
    res = subprocess.run([*TINY, "--resume", "--out", str(run), "--stop-at", str(stopped + 2), "--quiet"],
                         capture_output=True, text=True, env=_env())
    assert res.returncode == 0, res.stderr
    assert read_checkpoint(run / "last.pt")["step"] == stopped + 2
    assert _logged_steps(run) == list(range(1, stopped + 3))  # no repeated or lost lines
    # ... on the trajectory of a run that was never interrupted
    ref = tmp_path / "ref"
    res = subprocess.run([*TINY, *SMALL, "--data", str(dataset), "--out", str(ref), "--stop-at", str(stopped + 2),
                          "--quiet"], capture_output=True, text=True, env=_env())
    assert res.returncode == 0, res.stderr
    assert state_digest(read_checkpoint(run / "last.pt")["state_dict"]) == \
        state_digest(read_checkpoint(ref / "last.pt")["state_dict"])


def test_sigterm_also_saves_and_exits_130(dataset, tmp_path):
    run = tmp_path / "run"
    code, _, err = _interrupt_after([*SMALL, "--data", str(dataset), "--out", str(run), "--workers", "1"], run,
                                    signal.SIGTERM, steps=2)
    assert code == 130, err
    assert read_checkpoint(run / "last.pt")["step"] >= 2
    assert err.strip().splitlines()[-1].startswith("error: interrupted at step")


def _cfg(data, out, **kw):
    base = dict(model="tiny", data=str(data), out=str(out), steps=6, batch=2, patch=12, lr=1e-3, log_every=1,
                save_every=1000, val_every=1000, device="cpu", model_args={"width": 4, "depth": 1})
    base.update(kw)
    return TrainConfig(**base)


def test_fresh_start_rotates_the_metrics_of_a_run_that_never_saved(dataset, tmp_path):
    from blurtools.train.engine import train

    run = tmp_path / "run"
    run.mkdir()
    old = json.dumps({"event": "train", "step": 1, "loss": 99.0}) + "\n"
    (run / "metrics.jsonl").write_text(old)  # a run killed before its first last.pt
    train(_cfg(dataset, run), tiny.TinyNet, tiny.TINY, resume=True)
    assert _logged_steps(run) == [1, 2, 3, 4, 5, 6, 6]  # six train lines and the end record, none of the old
    assert 99.0 not in [json.loads(x).get("loss") for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert (run / "metrics.jsonl.1").read_text() == old


def test_last_pt_is_also_written_by_wall_clock_time(dataset, tmp_path, monkeypatch):
    from blurtools.train import checkpoint as ckpt_io
    from blurtools.train.engine import train

    saved = []
    real = ckpt_io.save_checkpoint

    def spy(path, obj):
        if Path(path).name == "last.pt":
            saved.append(int(obj["step"]))
        return real(path, obj)

    monkeypatch.setattr(ckpt_io, "save_checkpoint", spy)
    # any time at all is past a 1e-9 minute interval: every step saves
    train(_cfg(dataset, tmp_path / "a", save_minutes=1e-9), tiny.TinyNet, tiny.TINY)
    assert saved == [1, 2, 3, 4, 5, 6]
    saved.clear()
    # 0 turns the clock off: only the steps rule (here, the end of the stage) saves
    train(_cfg(dataset, tmp_path / "b", save_minutes=0), tiny.TinyNet, tiny.TINY)
    assert saved == [6]
    assert TrainConfig().save_minutes == 10
