"""The 2018 releases through the real commands: 16-bit PNG in and out, frame order and count, the errors."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _authors_2018 as ref  # noqa: E402
from _legacy_files import save_legacy, seeded_state  # noqa: E402
from blurtools.io.images import read_array, write_image  # noqa: E402


def run(*args):
    """A blurtools command in-process; exit code and output as a shell sees them."""
    from typer.testing import CliRunner

    from blurtools.cli.main import app

    res = CliRunner().invoke(app, [*map(str, args)])
    res.returncode = res.exit_code
    return res


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    states = ref.write_jin_release(root / "jin")
    dg = ref.write_deblurgan_release(root / "latest_net_G.pth")
    return root, states, dg


def _input16(path, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    write_image(path, 0.2 + 0.6 * torch.rand(3, h, w, generator=g), bits=16)
    a = read_array(path)
    assert a.dtype == np.uint16
    return torch.from_numpy(a.astype(np.float32) / 65535).permute(2, 0, 1)[None]


def _output16(path):
    a = read_array(path)
    assert a.dtype == np.uint16, f"{path} is not 16-bit"
    return torch.from_numpy(a.astype(np.float32) / 65535).permute(2, 0, 1)[None]


def test_deblur_runs_the_centre_network_exactly_16_bit(release, tmp_path):
    root, states, _ = release
    x = _input16(tmp_path / "in.png", 40, 60)
    res = run("deblur", tmp_path / "in.png", "-o", tmp_path / "out.png", "--weights", root / "jin" / "center_v3.pth",
              "--device", "cpu")
    assert res.returncode == 0, res.output
    with torch.no_grad():
        want = ref.jin_centre_ref(states[0], x).clamp(0, 1)
    assert (_output16(tmp_path / "out.png") - want).abs().max() < 5e-5
    from PIL import Image

    with Image.open(tmp_path / "out.png") as im:
        record = json.loads(next(v for v in im.text.values() if v.startswith("{")))
    assert record["model"]["layout"] == "jin2018-centre" and record["options"]["refine"] == "none"


def test_deblur_runs_deblurgan_exactly_any_size(release, tmp_path):
    root, _, sd = release
    x = _input16(tmp_path / "in.png", 32, 532, seed=1)      # wider than a CPU window: instance norm needs it whole
    res = run("deblur", tmp_path / "in.png", "-o", tmp_path / "out.png", "--weights", root / "latest_net_G.pth",
              "--device", "cpu")
    assert res.returncode == 0, res.output
    with torch.no_grad():
        want = ref.deblurgan_ref(sd, x)
    assert (_output16(tmp_path / "out.png") - want).abs().max() < 5e-5
    _input16(tmp_path / "odd.png", 30, 45)
    res = run("deblur", tmp_path / "odd.png", "-o", tmp_path / "odd_out.png", "--weights", root / "latest_net_G.pth",
              "--model", "deblurgan", "--device", "cpu")
    assert res.returncode == 0, res.output
    assert read_array(tmp_path / "odd_out.png").shape == (30, 45, 3)


def test_extract_video_from_the_folder_gives_seven_frames_in_the_authors_order(release, tmp_path):
    root, states, _ = release
    x = _input16(tmp_path / "in.png", 40, 60, seed=2)
    res = run("extract-video", tmp_path / "in.png", "-o", f"{tmp_path / 'frames'}/", "--weights", root / "jin",
              "--frames", "7", "--refine", "none", "--device", "cpu")
    assert res.returncode == 0, res.output
    names = sorted(p.name for p in (tmp_path / "frames").glob("*.png"))
    assert names == [f"{i:04d}.png" for i in range(7)]
    with torch.no_grad():
        want = ref.jin_cascade_ref(states, x).clamp(0, 1)[0]
    got = torch.cat([_output16(tmp_path / "frames" / n) for n in names])
    assert (got - want).abs().max() < 5e-5
    meta = json.loads((tmp_path / "frames" / "meta.json").read_text())
    assert meta["model"]["layout"] == "jin2018-release" and len(meta["model"]["weights"]) == 4


def test_extract_video_takes_the_four_files_and_needs_all_of_them(release, tmp_path):
    root, _, _ = release
    _input16(tmp_path / "in.png", 40, 40)
    four = [a for n in reversed(ref.JIN_FILES) for a in ("--weights", root / "jin" / n)]
    res = run("extract-video", tmp_path / "in.png", "-o", f"{tmp_path / 'frames'}/", *four, "--device", "cpu")
    assert res.returncode == 0, res.output
    assert len(list((tmp_path / "frames").glob("*.png"))) == 7
    three = four[2:]
    res = run("extract-video", tmp_path / "in.png", "-o", tmp_path / "v.gif", *three, "--device", "cpu")
    assert res.returncode == 1 and "F17_N9_from_F26_N9_from_F35_N8.pth" in res.output
    res = run("extract-video", tmp_path / "in.png", "-o", tmp_path / "v.gif", "--weights", root / "jin" / "center_v3.pth",
              "--device", "cpu")
    assert res.returncode == 1 and "needs four files" in res.output
    res = run("deblur", tmp_path / "in.png", "-o", tmp_path / "o.png", "--weights", root / "jin" / "F35_N8.pth",
              "--device", "cpu")
    assert res.returncode == 1 and "video model (jin2018" in res.output
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "v.gif").exists()


def test_unknown_layout_and_code_carrying_files_are_refused(tmp_path):
    _input16(tmp_path / "in.png", 24, 24)
    odd = save_legacy({"generator": seeded_state({"enc.0.weight": (8, 3, 3, 3), "enc.0.bias": (8,)}, 1)},
                      tmp_path / "odd.pth")
    res = run("deblur", tmp_path / "in.png", "-o", tmp_path / "o.png", "--weights", odd, "--device", "cpu")
    assert res.returncode == 1
    assert "top-level keys generator" in res.output and "enc.0.weight" in res.output and "deblurgan-2018" in res.output

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    torch.save({"state_dict_G": {}, "x": Evil()}, tmp_path / "evil.pth", _use_new_zipfile_serialization=False)
    res = run("deblur", tmp_path / "in.png", "-o", tmp_path / "o.png", "--weights", tmp_path / "evil.pth",
              "--device", "cpu")
    assert res.returncode == 1 and "carries code" in res.output and "system" in res.output
    assert not (tmp_path / "o.png").exists()


def test_train_init_from_the_released_deblurgan_starts_from_its_weights(release, tmp_path):
    import _train_tiny as tiny
    from blurtools.models.deblurgan_release import convert_deblurgan_2018
    from blurtools.models.files import read_weights_file
    from blurtools.train.checkpoint import read_checkpoint

    root, _, _ = release
    data = tiny.make_set(tmp_path / "set", samples=4, frames=3, size=40)
    res = run("train", "--model", "deblurgan", "--batch", "2", "--patch", "32", "--device", "cpu", "--quiet",
              "--loss-weight", "perceptual=0", "--data", data, "--out", tmp_path / "run", "--steps", "1",
              "--lr", "1e-12", "--init", root / "latest_net_G.pth")
    assert res.returncode == 0, res.output
    ckpt = read_checkpoint(tmp_path / "run" / "weights.pt")
    args, state = convert_deblurgan_2018(read_weights_file(root / "latest_net_G.pth"))
    assert ckpt["arch"] == "deblurgan" and ckpt["model_args"] == args
    for name, value in state.items():
        assert torch.allclose(ckpt["state_dict"][name], value, atol=1e-6), name
