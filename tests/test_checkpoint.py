"""Checkpoints: atomic writes, safe loading, RNG capture, model loading with kind/arch checks, run folders."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _train_tiny as tiny  # noqa: E402
from blurtools.errors import BlurtoolsError  # noqa: E402
from blurtools.models import ModelSpec, load  # noqa: E402
from blurtools.models.checkpoints import read_checkpoint  # noqa: E402
from blurtools.train import checkpoint as C  # noqa: E402

TINY = {name: ModelSpec(name, cls, recipe=None) for name, cls in tiny.ARCHS.items()}


def _specs(**classes):
    return {name: ModelSpec(name, cls, recipe=None) for name, cls in classes.items()}


def _weights(tmp_path, model=None, arch="tiny", name="w.pt"):
    model = model or tiny.TinyNet(width=4, depth=1)
    path = tmp_path / name
    C.save_checkpoint(path, C.weights_record(model, arch, {"lr": 1e-3}, step=3, metrics={"val_psnr": 30.0}))
    return path, model


def test_weights_roundtrip_plain_dict(tmp_path):
    path, model = _weights(tmp_path)
    raw = torch.load(path, weights_only=True)
    assert set(raw) >= {"format", "arch", "model_args", "state_dict", "config", "kind", "frames", "version", "tool"}
    assert raw["tool"] == "blurtools train" and raw["frames"] is None and raw["step"] == 3
    loaded = load(path, kind="image", registry=TINY)
    assert not loaded.module.training and loaded.meta["metrics"]["val_psnr"] == 30.0
    assert loaded.layout == "blurtools" and loaded.args == model.model_args and loaded.spec.name == "tiny"
    x = torch.rand(1, 3, 9, 11)
    assert torch.equal(loaded.module(x), model.eval()(x))


def test_video_checkpoint_records_frames(tmp_path):
    path, _ = _weights(tmp_path, tiny.TinyVideo(width=4, frames=5), arch="tiny-video")
    assert read_checkpoint(path)["frames"] == 5
    assert load(path, kind="video", registry=TINY).module.frames == 5


def test_wrong_kind_arch_or_shape_is_refused(tmp_path):
    path, _ = _weights(tmp_path)
    with pytest.raises(BlurtoolsError, match="is an image model .*needs a video"):
        load(path, kind="video", registry=TINY)
    with pytest.raises(BlurtoolsError, match="checkpoint of model 'tiny', not 'tiny-video'"):
        load(path, model="tiny-video", registry=TINY)
    # the same name mapped to another architecture: it cannot be built, or the weights do not fit
    with pytest.raises(BlurtoolsError, match="cannot build tiny"):
        load(path, registry=_specs(tiny=tiny.TinyVideo))

    class Wider(tiny.TinyNet):
        def __init__(self, width=8, depth=2, dropout=0.0, norm=False):
            super().__init__(width * 2, depth, dropout, norm)

    with pytest.raises(BlurtoolsError, match="weights do not fit model tiny"):
        load(path, registry=_specs(tiny=Wider))
    with pytest.raises(BlurtoolsError, match="not known"):
        load(path, registry=_specs(other=tiny.TinyNet))


def test_foreign_and_broken_files_are_refused(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(BlurtoolsError, match="junk.pt: not a readable checkpoint"):
        read_checkpoint(tmp_path / "junk.pt")
    torch.save(tiny.TinyNet(), tmp_path / "pickled.pt")  # a pickled module: refused by weights_only
    with pytest.raises(BlurtoolsError, match="pickled.pt: not a readable checkpoint"):
        read_checkpoint(tmp_path / "pickled.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(BlurtoolsError, match="not a blurtools checkpoint"):
        read_checkpoint(tmp_path / "other.pt")
    with pytest.raises(BlurtoolsError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "missing.pt")
    path, _ = _weights(tmp_path)
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(BlurtoolsError, match="cut.pt: not a readable checkpoint"):
        read_checkpoint(tmp_path / "cut.pt")


def test_killed_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path, model = _weights(tmp_path)
    before = path.read_bytes()
    real_save = torch.save

    def dying_save(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        f.truncate(100)  # half-written file, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        C.save_checkpoint(path, C.weights_record(tiny.TinyNet(width=4, depth=1), "tiny", {}, step=9))
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.pt"]  # no temporary left behind
    assert read_checkpoint(path)["step"] == 3


def test_rng_capture_restore(tmp_path):
    g = torch.Generator().manual_seed(5)
    state = C.capture_rng({"g": g})
    C.save_checkpoint(tmp_path / "s.pt", {"format": C.STATE_FORMAT, "arch": "x", "model_args": {}, "state_dict": {},
                                          "kind": "image", "rng": state})
    first = (random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=g))
    C.restore_rng(read_checkpoint(tmp_path / "s.pt")["rng"], {"g": g})
    second = (random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=g))
    assert first[0] == second[0] and first[1] == second[1]
    assert torch.equal(first[2], second[2]) and torch.equal(first[3], second[3])


def test_state_digest():
    a = tiny.TinyNet(width=4, depth=1)
    b = tiny.TinyNet(width=4, depth=1)
    b.load_state_dict(a.state_dict())
    assert C.state_digest(a) == C.state_digest(b) == C.state_digest(a.state_dict())
    with torch.no_grad():
        b.tail.bias[0] += 1e-7
    assert C.state_digest(a) != C.state_digest(b)


def test_run_folder_rules(tmp_path):
    run = tmp_path / "run"
    assert C.check_run_folder(run, "tiny", resume=False) is None  # new folder
    assert C.check_run_folder(run, "tiny", resume=True) is None  # --resume with nothing yet: fresh start
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    assert C.check_run_folder(run, "tiny", resume=False) is None  # unrelated files are fine
    (run / "config.json").write_text(json.dumps({"config": {"model": "tiny"}}))
    with pytest.raises(BlurtoolsError, match="pass --resume"):
        C.check_run_folder(run, "tiny", resume=False)
    with pytest.raises(BlurtoolsError, match="holds a run of model 'tiny', not 'dm'"):
        C.check_run_folder(run, "dm", resume=True)
    with pytest.raises(BlurtoolsError, match="a run of model 'tiny'; choose another --out"):
        C.check_run_folder(run, "dm", resume=False)
    _weights(run, name="last.pt")
    assert C.check_run_folder(run, "tiny", resume=True) == run / "last.pt"
