"""Issue 17 item 1 (library side): every model's default recipe trains on a machine without ImageNet files.

The loss terms that need the VGG16 ImageNet file are switched off by default when the file is absent, with
one line on stderr saying so and how to switch them on; a term the user asks for by name still needs the
file, and the error names the exact --loss-weight flags that train without it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _train_tiny as tiny  # noqa: E402
from blurtools.cli.main import app  # noqa: E402
from blurtools.train.recipes import RECIPES  # noqa: E402
from blurtools.train.resolve import offline_loss_weights  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def no_imagenet(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    return tmp_path / "empty-torch-home" / "hub" / "checkpoints" / "vgg16-397923af.pth"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_default_recipe_needs_no_imagenet_file(name, no_imagenet):
    recipe = RECIPES[name]
    weights, off = offline_loss_weights(recipe, dict(recipe.default_weights), given={}, pretrained=True, model=name)
    assert not any(weights.get(term, 0.0) > 0 for term in recipe.needs_vgg)
    assert sorted(off) == sorted(t for t in recipe.needs_vgg if recipe.default_weights.get(t, 0.0) > 0)
    assert any(v > 0 for k, v in weights.items() if k not in ("gp", "label_noise", "shift"))  # something still trains


def test_present_file_or_random_trunk_keep_the_terms(no_imagenet):
    recipe = RECIPES["niu"]
    weights, off = offline_loss_weights(recipe, dict(recipe.default_weights), {}, pretrained=False, model="niu")
    assert off == [] and weights["contiguous"] == 0.1
    no_imagenet.parent.mkdir(parents=True)
    no_imagenet.write_bytes(b"a file")  # present: left to the loader to check
    weights, off = offline_loss_weights(recipe, dict(recipe.default_weights), {}, pretrained=True, model="niu")
    assert off == [] and weights["contiguous"] == 0.1


def _set(tmp_path):
    return tiny.make_set(tmp_path / "set", samples=2, frames=7, size=24)


def test_niu_trains_by_default_offline_with_one_line_saying_so(tmp_path, no_imagenet):
    res = CliRunner().invoke(app, ["train", "--model", "niu", "--data", str(_set(tmp_path)), "--out", str(tmp_path / "run"),
                                   "--steps", "1", "--batch", "1", "--patch", "16", "--device", "cpu",
                                   "--model-arg", "width=4", "--model-arg", "blocks=1", "--quiet"])
    assert res.exit_code == 0, res.output
    lines = [line for line in res.stderr.splitlines() if "vgg16-397923af.pth" in line]
    assert len(lines) == 1, res.stderr
    assert "contiguous" in lines[0] and str(no_imagenet.parent) in lines[0]
    resolved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert resolved["resolved"]["loss_weights"]["contiguous"] == 0.0
    assert resolved["config"]["loss_weights"] == {"contiguous": 0.0}  # recorded: a resume keeps it off


def test_an_asked_for_term_still_needs_the_file_and_the_error_names_the_flags(tmp_path, no_imagenet):
    res = CliRunner().invoke(app, ["train", "--model", "niu", "--data", str(_set(tmp_path)), "--out", str(tmp_path / "run"),
                                   "--steps", "1", "--loss-weight", "contiguous=0.2", "--device", "cpu", "--quiet"])
    assert res.exit_code == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "vgg16-397923af.pth" in last and "--loss-weight contiguous=0" in last
    assert "perceptual" not in last  # niu has no loss of that name
    res = CliRunner().invoke(app, ["train", "--model", "jin", "--data", str(_set(tmp_path)), "--out", str(tmp_path / "j"),
                                   "--steps", "1", "--loss-weight", "perceptual=1", "--device", "cpu", "--quiet"])
    assert res.exit_code == 1 and "--loss-weight perceptual=0" in res.stderr.strip().splitlines()[-1]
