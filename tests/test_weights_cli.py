"""``blurtools weights info|convert|export`` and the safety of reading weights files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from blurtools.errors import BlurtoolsError
from blurtools.models.convert import convert_weights, file_sha256, weights_info
from blurtools.models.registry import create, load

from _deblurgan_v2_official import official_file

ROOT = Path(__file__).resolve().parents[1]
SMALL_DM = dict(width=8, growth=4, rdb_layers=2, blocks=(1, 1, 1), bottleneck=1)


def _cli(*args):
    """`blurtools weights ...` in-process; exit code, stdout and stderr as a shell sees them."""
    from typer.testing import CliRunner

    from blurtools.cli.main import app

    res = CliRunner().invoke(app, ["weights", *map(str, args)])
    res.returncode = res.exit_code
    return res


def _subprocess(*args):
    """The same through ``python -m blurtools`` in a process of its own."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "blurtools", "weights", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=600)


def _blurtools_checkpoint(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    net = create("dm", **SMALL_DM)
    torch.save({"format": "blurtools-weights/1", "arch": "dm", "model_args": net.model_args, "state_dict": net.state_dict(),
                "kind": "image", "frames": None, "config": {"lr": 1e-4}, "version": "0.1.0", "tool": "blurtools train",
                "step": 12, "metrics": {}}, path)
    return path


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    path = tmp_path_factory.mktemp("released") / "fpn_mobilenet.h5"
    torch.save(official_file(seed=11), path)
    return path


def test_info_describes_a_blurtools_checkpoint(tmp_path):
    ckpt = _blurtools_checkpoint(tmp_path / "weights.pt")
    r = _cli("info", ckpt, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["loads"] and info["architecture"] == "dm" and info["layout"] == "blurtools"
    assert info["configuration"]["width"] == 8 and info["kind"] == "image"
    assert info["parameters"] == sum(p.numel() for p in create("dm", **SMALL_DM).parameters())
    assert info["sha256"] == file_sha256(ckpt)
    assert info["made_by"] == {"tool": "blurtools train", "version": "0.1.0", "step": 12}
    assert any(c.startswith("blurtools deblur --weights") for c in info["commands"])
    assert any("train --model dm --init" in c for c in info["commands"])


def test_info_recognises_the_released_file_from_its_contents(released, tmp_path):
    renamed = tmp_path / "whatever.bin"
    renamed.write_bytes(released.read_bytes())
    info = weights_info(renamed)
    assert info["loads"] and info["architecture"] == "deblurgan-v2" and info["layout"] == "deblurgan-v2-official"
    assert info["configuration"] == {"width": 64, "fpn_width": 128, "norm": "instance"}
    r = _cli("info", renamed)
    assert r.returncode == 0 and "deblurgan-v2" in r.stdout and "parameters" in r.stdout


def test_convert_round_trip_keeps_the_network_and_records_its_source(released, tmp_path):
    out = tmp_path / "dg2.pt"
    result = convert_weights(released, out)
    assert result["architecture"] == "deblurgan-v2"
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["format"] == "blurtools-weights/1" and ckpt["tool"] == "blurtools weights convert"
    assert ckpt["config"]["source"] == {"file": "fpn_mobilenet.h5", "sha256": file_sha256(released),
                                        "layout": "deblurgan-v2-official"}
    a, b = load(released).module, load(out).module
    x = torch.rand(1, 3, 40, 50)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    # a blurtools checkpoint converts too (a training state becomes plain weights), its record kept
    again = tmp_path / "again.pt"
    convert_weights(out, again)
    assert torch.load(again, weights_only=True)["config"]["converted_from"]["sha256"] == file_sha256(released)


def test_convert_never_overwrites_its_source_and_writes_nothing_on_failure(tmp_path):
    ckpt = _blurtools_checkpoint(tmp_path / "w.pt")
    before = ckpt.read_bytes()
    r = _cli("convert", ckpt, "-o", ckpt)
    assert r.returncode == 1 and "is the source file" in r.stderr and ckpt.read_bytes() == before
    bad = tmp_path / "bad.pt"
    bad.write_text("not weights\n")
    r = _cli("convert", bad, "-o", tmp_path / "out.pt")
    assert r.returncode == 1 and not (tmp_path / "out.pt").exists()
    assert list(tmp_path.glob(".out.pt*")) == []


def test_export_matches_onnxruntime_with_dynamic_sizes(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnx

    ckpt = _blurtools_checkpoint(tmp_path / "w.pt", seed=3)
    r = _cli("export", ckpt, "-o", tmp_path / "m.onnx", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["dynamic"] and report["max_abs_diff"] <= 1e-4 and len(report["sizes"]) == 2
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert meta["source_sha256"] == file_sha256(ckpt) and meta["arch"] == "dm" and meta["tool"] == "blurtools weights export"
    # an independent size through onnxruntime, against the PyTorch model
    from blurtools.models.export import onnx_parity

    assert max(onnx_parity(load(ckpt).module, tmp_path / "m.onnx", [(45, 77)], batch=2)) <= 1e-4


@pytest.mark.slow
def test_export_of_deblurgan_v2_matches_onnxruntime(released, tmp_path):
    pytest.importorskip("onnxruntime")
    from blurtools.models.export import export_onnx, onnx_parity

    net = load(released).module
    report = export_onnx(net, tmp_path / "dg2.onnx")
    assert report["dynamic"] and report["max_abs_diff"] <= 1e-4
    assert max(onnx_parity(net, tmp_path / "dg2.onnx", [(70, 101)])) <= 1e-4


def test_export_says_how_to_install_onnx_when_missing(tmp_path, monkeypatch):
    from blurtools.models.export import export_onnx

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(BlurtoolsError, match=r"pip install 'blurtools\[onnx\]'"):
        export_onnx(create("dm", **SMALL_DM), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


# ------------------------------------------------------------------------------------------ safety

def test_every_layout_is_read_with_weights_only(released, tmp_path, monkeypatch):
    seen = []
    real = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    load(released)
    load(_blurtools_checkpoint(tmp_path / "w.pt"))
    assert seen and all(flag is True for flag in seen)


def test_a_pickle_that_carries_code_is_refused_with_the_reason(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"model": _Payload(str(marker))}, path)
    r = _subprocess("info", path)
    assert r.returncode == 1 and not marker.exists()
    assert "carries code" in r.stderr and "os.system" in r.stderr.replace("posix.", "os.")
    assert "weights_only=False" not in r.stderr


class _Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_file_of_no_known_layout_says_what_it_looked_like(tmp_path):
    path = tmp_path / "mystery.pth"
    torch.save({"generator": {"conv_in.weight": torch.zeros(4, 3, 3, 3), "conv_in.bias": torch.zeros(4)}, "epoch": 7}, path)
    r = _cli("info", path)
    assert r.returncode == 1
    err = r.stderr.strip().splitlines()[-1]
    assert err.startswith("error: ") and str(path) in err
    assert "generator" in err and "epoch" in err and "conv_in.weight" in err
    assert "deblurgan-v2-official" in err and "blurtools-weights/1" in err


def test_a_text_file_named_pt_gets_a_clear_error(tmp_path):
    path = tmp_path / "model.pt"
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n")
    for sub in ("info", "convert", "export"):
        extra = ["-o", tmp_path / f"o.{sub}"] if sub != "info" else []
        r = _cli(sub, path, *extra)
        assert r.returncode == 1, sub
        err = r.stderr.strip().splitlines()[-1]
        assert err.startswith("error: ") and "not a PyTorch weights file" in err and "holds text" in err
        assert "weights_only" not in err and "Traceback" not in r.stderr
