"""Fine-tuning a published network: ``train --model deblurgan-v2 --init fpn_mobilenet.h5``, exact resume."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _train_tiny as tiny  # noqa: E402
from _deblurgan_v2_official import official_file  # noqa: E402
from blurtools.models.deblurgan_v2 import convert_official  # noqa: E402
from blurtools.train.checkpoint import read_checkpoint, state_digest  # noqa: E402

# no ImageNet VGG in tests: the pixel and adversarial terms only
BASE = ["--model", "deblurgan-v2", "--batch", "2", "--patch", "32", "--log-every", "1", "--device", "cpu",
        "--loss-weight", "perceptual=0", "--save-every", "2", "--quiet"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return tiny.make_set(tmp_path_factory.mktemp("data") / "set", samples=4, frames=3, size=40)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    path = tmp_path_factory.mktemp("released") / "fpn_mobilenet.h5"
    torch.save(official_file(seed=21), path)
    return path


def run(*args):
    from typer.testing import CliRunner

    from blurtools.cli.main import app

    res = CliRunner().invoke(app, ["train", *map(str, args)])
    res.returncode = res.exit_code
    return res


def test_init_from_the_released_file_starts_from_its_weights(dataset, released, tmp_path):
    res = run(*BASE, "--data", dataset, "--out", tmp_path / "run", "--steps", "1", "--lr", "1e-12", "--init", released)
    assert res.returncode == 0, res.output
    ckpt = read_checkpoint(tmp_path / "run" / "weights.pt")
    args, state = convert_official(torch.load(released, weights_only=True))
    assert ckpt["arch"] == "deblurgan-v2" and ckpt["model_args"] == args
    for name, value in state.items():
        assert torch.allclose(ckpt["state_dict"][name], value, atol=1e-6), name


@pytest.mark.slow
def test_resume_continues_exactly(dataset, released, tmp_path):
    common = [*BASE, "--data", dataset, "--lr", "1e-4", "--init", released, "--seed", "3"]
    straight = run(*common, "--out", tmp_path / "a", "--steps", "4")
    assert straight.returncode == 0, straight.output
    first = run(*common, "--out", tmp_path / "b", "--steps", "4", "--stop-at", "2")
    assert first.returncode != 0 or not (tmp_path / "b" / "weights.pt").exists()
    second = run(*common, "--out", tmp_path / "b", "--steps", "4", "--resume")
    assert second.returncode == 0, second.output
    a = read_checkpoint(tmp_path / "a" / "weights.pt")
    b = read_checkpoint(tmp_path / "b" / "weights.pt")
    assert state_digest(a["state_dict"]) == state_digest(b["state_dict"])


def test_init_of_another_model_is_refused(dataset, released, tmp_path):
    res = run("--model", "dm", "--data", dataset, "--out", tmp_path / "x", "--steps", "1", "--init", released,
              "--batch", "2", "--patch", "16", "--device", "cpu", "--quiet")
    assert res.returncode == 1
    assert "not a checkpoint model dm reads" in res.stderr and "top-level keys model" in res.stderr
    assert not (tmp_path / "x" / "weights.pt").exists()


def _one_step(dataset, init, model, tmp_path, *extra):
    res = run("--model", model, "--data", dataset, "--out", tmp_path / model, "--steps", "1", "--init", init,
              "--batch", "1", "--device", "cpu", "--quiet", *extra)
    assert res.returncode == 0, res.output
    ckpt = read_checkpoint(tmp_path / model / "weights.pt")
    assert ckpt["arch"] == model
    return ckpt


def test_nafnet_and_two_heads_fine_tune_from_their_releases(dataset, tmp_path):
    from blurtools.models.nafnet import NAFNet
    from blurtools.models.two_heads import TwoHeadsNet

    torch.manual_seed(0)
    naf = NAFNet(width=4, enc_blocks=[1, 1, 1, 1], middle_blocks=1, dec_blocks=[1, 1, 1, 1])
    torch.save({"params": {k[len("net."):]: v for k, v in naf.state_dict().items()}}, tmp_path / "NAFNet-GoPro-width4.pth")
    ckpt = _one_step(dataset, tmp_path / "NAFNet-GoPro-width4.pth", "nafnet", tmp_path, "--patch", "32")
    assert ckpt["model_args"]["width"] == 4
    assert '"psnr"' in (tmp_path / "nafnet" / "metrics.jsonl").read_text()
    torch.save(TwoHeadsNet(basis=3, width=2).state_dict(), tmp_path / "TwoHeads.pkl")
    ckpt = _one_step(dataset, tmp_path / "TwoHeads.pkl", "two-heads", tmp_path, "--patch", "40")
    assert ckpt["model_args"]["basis"] == 3
    assert '"reblur"' in (tmp_path / "two-heads" / "metrics.jsonl").read_text()


@pytest.mark.slow
def test_jin2018_fine_tunes_from_the_folder_of_its_release(tmp_path_factory, tmp_path):
    from _authors_2018 import JIN_FILES, write_jin_release

    seven = tiny.make_set(tmp_path_factory.mktemp("seven") / "set", samples=2, frames=7, size=40)
    write_jin_release(tmp_path / "jin", seed=5)
    ckpt = _one_step(seven, tmp_path / "jin", "jin2018", tmp_path, "--patch", "40", "--lr", "1e-12",
                     "--loss-weight", "perceptual=0")
    from blurtools.models.jin2018_release import load_cascade

    cascade, _ = load_cascade([tmp_path / "jin"])
    for name, value in cascade.state_dict().items():
        assert torch.allclose(ckpt["state_dict"][name], value, atol=1e-6), name
    ckpt = _one_step(seven, tmp_path / "jin" / JIN_FILES[0], "jin2018-centre", tmp_path, "--patch", "40",
                     "--loss-weight", "perceptual=0")
    assert ckpt["kind"] == "image"
