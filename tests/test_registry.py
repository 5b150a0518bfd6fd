"""The model registry: contract attributes, automatic constructor arguments, create/load, foreign layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from blurtools.errors import BlurtoolsError
from blurtools.models import MODELS, Layout, Model, ModelSpec, create, load
from blurtools.models.checkpoints import describe

WEIGHTS = Path(__file__).resolve().parents[1] / "blurtools" / "weights"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_states_the_contract(name):
    cls = MODELS[name].cls
    assert issubclass(cls, Model)
    for attr in ("kind", "frames", "pad_multiple", "receptive_field"):
        assert attr in vars(cls), f"{cls.__name__} does not declare {attr}"
    assert cls.kind in ("image", "video") and (cls.frames is None) == (cls.kind == "image")
    assert cls.pad_multiple >= 1


def test_a_class_without_the_contract_is_refused():
    with pytest.raises(TypeError, match="does not declare frames, pad_multiple, receptive_field"):
        class Half(Model):  # noqa: F841
            kind = "image"


def test_create_records_every_constructor_argument():
    net = create("dm", width=8, growth=4, blocks=(1, 1, 1))
    assert net.model_args == {"width": 8, "growth": 4, "rdb_layers": 4, "blocks": [1, 1, 1], "bottleneck": 1,
                              "s2d": 2, "res_scale": 0.2}
    assert net.pad_multiple == 8
    again = create("dm", **json.loads(json.dumps(net.model_args)))
    assert again.model_args == net.model_args
    assert create("niu", frames=5, width=4, blocks=1).frames == 5
    with pytest.raises(BlurtoolsError, match="cannot build dm"):
        create("dm", widht=3)
    with pytest.raises(BlurtoolsError, match="not known"):
        create("nonesuch")


def test_subclass_arguments_win():
    class Wide(MODELS["niu"].cls):
        def __init__(self, scale: int = 2):
            super().__init__(frames=3, width=4 * scale, blocks=1)

    assert Wide(scale=3).model_args == {"scale": 3}


@pytest.mark.parametrize("name,kind", [("deblur.pt", "image"), ("extract_video.pt", "video")])
def test_shipped_weights_load(name, kind):
    loaded = load(WEIGHTS / name, kind=kind)
    assert loaded.layout == "blurtools" and loaded.spec.cls.kind == kind and not loaded.module.training
    raw = torch.load(WEIGHTS / name, weights_only=True)
    assert loaded.args == raw["model_args"] and loaded.meta["step"] == raw["step"]


def _foreign_registry():
    def detect(obj):
        return "params" in obj and isinstance(obj["params"], dict)

    def convert(obj):
        return {"frames": 3, "width": 4, "blocks": 1}, dict(obj["params"])

    layout = Layout("niu-test", "test release: {'params': state_dict}", detect, convert)
    return {"niu": ModelSpec("niu", MODELS["niu"].cls, recipe=None, layouts=(layout,))}


def test_a_foreign_layout_is_detected_and_converted(tmp_path):
    net = create("niu", frames=3, width=4, blocks=1)
    torch.save({"params": net.state_dict()}, tmp_path / "release.pth")
    loaded = load(tmp_path / "release.pth", registry=_foreign_registry(), kind="video")
    assert loaded.layout == "niu-test" and loaded.module.frames == 3 and loaded.meta["arch"] == "niu"
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(loaded.module(x), net.eval()(x))
    with pytest.raises(BlurtoolsError, match="is a video model"):
        load(tmp_path / "release.pth", registry=_foreign_registry(), kind="image")


def test_a_file_no_layout_matches_says_what_it_looked_like(tmp_path):
    torch.save({"generator": {"conv.weight": torch.zeros(2), "conv.bias": torch.zeros(1)}, "epoch": 3}, tmp_path / "x.pth")
    with pytest.raises(BlurtoolsError) as err:
        load(tmp_path / "x.pth", registry=_foreign_registry())
    text = str(err.value)
    assert "x.pth" in text and "top-level keys generator, epoch" in text and "conv.weight" in text
    assert "niu-test" in text and "blurtools-weights/1" in text
    assert describe([1]) == "a list"
