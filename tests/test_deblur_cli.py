"""`blurtools deblur` end to end with tiny real models: files, folders, globs, 16-bit, gray, provenance,
classical and non-blind paths, shards, batching, default weights, and bad input."""

import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import torch

from blurtools.infer import loading
from blurtools.io.images import read_array, write_image
from blurtools.models.dm import DenseDeblurModule
from blurtools.models.niu import NiuNet
from blurtools.train.checkpoint import save_checkpoint, weights_record

TINY_DM = dict(width=4, growth=4, rdb_layers=1, blocks=(1, 1, 1), bottleneck=0)


def run(*args):
    """`blurtools deblur` in-process; exit code and stderr as a shell sees them."""
    from typer.testing import CliRunner

    from blurtools.cli.main import app

    res = CliRunner().invoke(app, ["deblur", *map(str, args)])
    res.returncode = res.exit_code
    return res


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    save_checkpoint(root / "dm.pt", weights_record(DenseDeblurModule(**TINY_DM), "dm", {"note": "tiny"}, step=5))
    save_checkpoint(root / "niu.pt", weights_record(NiuNet(frames=3, width=4, blocks=0), "niu", {}, step=5))
    return root


def _img(path, h=40, w=52, channels=3, bits=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(channels, h, w, generator=g)
    write_image(path, x, bits=bits)
    return x


def _text(path):
    from PIL import Image

    with Image.open(path) as im:
        return dict(im.text)


def test_single_file_with_provenance(tmp_path, ckpts):
    _img(tmp_path / "a.png")
    res = run(tmp_path / "a.png", "-o", tmp_path / "out.png", "--weights", ckpts / "dm.pt", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    assert "wrote 1 image(s)" in res.stdout
    out = read_array(tmp_path / "out.png")
    assert out.shape == (40, 52, 3) and out.dtype == np.uint8
    text = _text(tmp_path / "out.png")
    assert text["Software"].startswith("blurtools ") and text["Software"].endswith(" deblur")
    rec = json.loads(text["blurtools"])
    assert rec["tool"] == "blurtools deblur" and rec["source"].endswith("a.png")
    assert rec["model"]["arch"] == "dm" and rec["model"]["model"] == "weights" and len(rec["model"]["weights_sha256"]) == 64
    assert rec["options"]["tile"] == 512 and rec["options"]["device"] == "cpu"
    assert list(tmp_path.glob(".*part*")) == []


def test_folder_tree_glob_16bit_and_gray(tmp_path, ckpts):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    _img(src / "a.png")
    _img(src / "sub" / "b.png", channels=1)
    _img(src / "sub" / "c.png", bits=16, h=33, w=21)
    (src / "notes.txt").write_text("not an image, not picked from a folder")
    res = run(src, "-o", f"{tmp_path / 'out'}/", "--weights", ckpts / "dm.pt", "--tile", "32", "--overlap", "8")
    assert res.returncode == 0, res.stderr
    a, b, c = (read_array(tmp_path / "out" / p) for p in ("a.png", "sub/b.png", "sub/c.png"))
    assert a.shape == (40, 52, 3) and b.shape == (40, 52) and c.shape == (33, 21, 3)
    assert a.dtype == np.uint8 and b.dtype == np.uint8 and c.dtype == np.uint16
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["tool"] == "blurtools deblur" and meta["version"] and meta["options"]["overlap"] == 8
    assert sorted(i["output"].split("out/")[1] for i in meta["items"]) == ["a.png", "sub/b.png", "sub/c.png"]
    # a glob mirrors the tree below its first wildcard
    res = run(str(src) + "/**/*.png", "-o", f"{tmp_path / 'globbed'}/", "--weights", ckpts / "dm.pt")
    assert res.returncode == 0, res.stderr
    assert sorted(p.relative_to(tmp_path / "globbed").as_posix() for p in (tmp_path / "globbed").rglob("*.png")) == \
        ["a.png", "sub/b.png", "sub/c.png"]


def test_refine_is_recorded_and_can_be_switched_off(tmp_path, ckpts):
    _img(tmp_path / "a.png", h=64, w=64)
    assert run(tmp_path / "a.png", "-o", tmp_path / "r.png", "--weights", ckpts / "dm.pt").returncode == 0
    rec = json.loads(_text(tmp_path / "r.png")["blurtools"])
    assert rec["options"]["refine"] == "classical" and rec["model"]["refine"]["kernel_method"] == "multiscale"
    assert rec["model"]["refine"]["crf"] == "gamma:2.2"
    assert set(rec["refine"]) == {"change_db", "share", "dx", "dy", "aligned", "sparsity_gain", "evidence"} and 0 <= rec["refine"]["share"] <= 0.7
    res = run(tmp_path / "a.png", "-o", tmp_path / "n.png", "--weights", ckpts / "dm.pt", "--refine", "none")
    assert res.returncode == 0, res.stderr
    rec = json.loads(_text(tmp_path / "n.png")["blurtools"])
    assert rec["options"]["refine"] == "none" and "refine" not in rec["model"]
    res = run(tmp_path / "a.png", "-o", tmp_path / "x.png", "--weights", ckpts / "dm.pt", "--refine", "wiener")
    assert res.returncode == 2 and "--refine wiener" in res.stderr and not (tmp_path / "x.png").exists()


def test_batching_and_tiling_do_not_change_results_much(tmp_path, ckpts):
    for i in range(3):
        _img(tmp_path / "in" / f"{i}.png", seed=i)
    assert run(tmp_path / "in", "-o", f"{tmp_path / 'one'}/", "--weights", ckpts / "dm.pt", "--batch", "1").returncode == 0
    assert run(tmp_path / "in", "-o", f"{tmp_path / 'three'}/", "--weights", ckpts / "dm.pt", "--batch", "3").returncode == 0
    for i in range(3):
        a = read_array(tmp_path / "one" / f"{i}.png").astype(int)
        b = read_array(tmp_path / "three" / f"{i}.png").astype(int)
        assert np.abs(a - b).max() <= 1


def test_classical_needs_no_weights_and_kernel_deconvolves(tmp_path):
    from blurtools.infer.classical import linear_motion_kernel, write_kernel
    from blurtools.ops.filters import fft_conv2d

    g = torch.Generator().manual_seed(3)
    coarse = torch.rand(1, 3, 12, 12, generator=g)
    sharp = torch.nn.functional.interpolate(coarse, size=(96, 96), mode="bicubic", align_corners=False).clamp(0, 1)
    k = linear_motion_kernel(7, 0)
    blurry = fft_conv2d(sharp, k, mode="same", pad="reflect").clamp(0, 1)[0]
    write_image(tmp_path / "b.png", blurry, bits=16)
    write_kernel(tmp_path / "k.png", k)
    # blurred in the stored values, not in linear light: --crf linear says so
    res = run(tmp_path / "b.png", "-o", tmp_path / "nb.png", "--kernel", tmp_path / "k.png", "--crf", "linear", "--quiet")
    assert res.returncode == 0, res.stderr
    out = torch.from_numpy(read_array(tmp_path / "nb.png").astype(np.float32) / 65535).permute(2, 0, 1)

    def psnr(a, b):
        return float(-10 * torch.log10(((a - b) ** 2)[..., 8:-8, 8:-8].mean()))

    assert psnr(out, sharp[0]) > psnr(blurry, sharp[0]) + 3
    model = json.loads(_text(tmp_path / "nb.png")["blurtools"])["model"]
    assert model["kernel"].endswith("k.png") and model["crf"] == "linear"   # the same word as the options record
    res = run(tmp_path / "b.png", "-o", tmp_path / "blind.png", "--model", "classical", "--quiet")
    assert res.returncode == 0, res.stderr
    assert read_array(tmp_path / "blind.png").shape == (96, 96, 3)


def test_default_weights_missing_and_present(tmp_path, ckpts, monkeypatch):
    _img(tmp_path / "a.png")
    monkeypatch.setattr(loading, "default_weights_path", lambda kind: tmp_path / "nowhere" / "deblur.pt")
    res = run(tmp_path / "a.png", "-o", tmp_path / "o.png")
    assert res.returncode == 1
    assert "error:" in res.stderr and "default deblur weights are missing" in res.stderr
    assert "--weights" in res.stderr and "--model classical" in res.stderr
    assert not (tmp_path / "o.png").exists()
    monkeypatch.setattr(loading, "default_weights_path", lambda kind: ckpts / {"image": "dm.pt", "video": "niu.pt"}[kind])
    res = run(tmp_path / "a.png", "-o", tmp_path / "o.png")
    assert res.returncode == 0, res.stderr
    assert json.loads(_text(tmp_path / "o.png")["blurtools"])["model"]["model"] == "default"


def test_shards_split_the_work(tmp_path, ckpts):
    for i in range(5):
        _img(tmp_path / "in" / f"{i}.png", h=20, w=20, seed=i)
    for s in ("0/2", "1/2"):
        assert run(tmp_path / "in", "-o", f"{tmp_path / 'out'}/", "--weights", ckpts / "dm.pt", "--shard", s).returncode == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [f"{i}.png" for i in range(5)]
    m0 = json.loads((tmp_path / "out" / "meta.shard-0-of-2.json").read_text())
    m1 = json.loads((tmp_path / "out" / "meta.shard-1-of-2.json").read_text())
    assert len(m0["items"]) == 3 and len(m1["items"]) == 2


def test_skip_existing_and_keep_going(tmp_path, ckpts):
    for i in range(3):
        _img(tmp_path / "in" / f"{i}.png", h=20, w=20, seed=i)
    (tmp_path / "in" / "1.png").write_bytes(b"broken")
    res = run(tmp_path / "in", "-o", f"{tmp_path / 'out'}/", "--weights", ckpts / "dm.pt", "--keep-going")
    assert res.returncode == 1
    assert "1 of 3 input(s) failed" in res.stderr and "1.png" in res.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["0.png", "2.png"]
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert len(meta["items"]) == 2 and meta["failed"][0]["input"].endswith("1.png")
    _img(tmp_path / "in" / "1.png", h=20, w=20)
    before = (tmp_path / "out" / "0.png").stat().st_mtime_ns
    res = run(tmp_path / "in", "-o", f"{tmp_path / 'out'}/", "--weights", ckpts / "dm.pt", "--skip-existing", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["written"] == 1 and doc["skipped"] == 2
    assert (tmp_path / "out" / "0.png").stat().st_mtime_ns == before


def _zero_size_png(path):
    """A well-formed PNG header that declares a 5x0 image (no encoder writes one)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 5, 0, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


@pytest.mark.parametrize("case", ["wrong_kind", "not_image", "zero_size", "folder_named_png", "many_to_one",
                                  "missing", "bad_tile", "weights_and_classical"])
def test_bad_input(tmp_path, ckpts, case):
    _img(tmp_path / "a.png")
    args = [tmp_path / "a.png", "-o", tmp_path / "o.png", "--weights", ckpts / "dm.pt"]
    code, msg = 1, None
    if case == "wrong_kind":
        args[-1] = ckpts / "niu.pt"
        msg = "is a video model (niu, 3 frames); this command needs an image (deblurring) model"
    elif case == "not_image":
        (tmp_path / "n.png").write_text("hello")
        args[0], msg = tmp_path / "n.png", "n.png: cannot read as an image"
    elif case == "zero_size":
        _zero_size_png(tmp_path / "z.png")
        args[0], msg = tmp_path / "z.png", "zero-size image"
    elif case == "folder_named_png":
        (tmp_path / "o.png").mkdir()
        code, msg = 2, "is an existing folder"
    elif case == "many_to_one":
        _img(tmp_path / "b.png")
        args.insert(1, tmp_path / "b.png")
        code, msg = 2, "2 inputs need an output folder"
    elif case == "missing":
        args[0], msg = tmp_path / "nope.png", "nope.png: no such file or folder"
    elif case == "bad_tile":
        args += ["--tile", "64", "--overlap", "40"]
        code, msg = 2, "--overlap 40"
    elif case == "weights_and_classical":
        args += ["--model", "classical"]
        code, msg = 2, "--model classical uses no weights"
    res = run(*args)
    assert res.returncode == code, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and msg in lines[0], lines
    if case != "folder_named_png":
        assert not (tmp_path / "o.png").exists()
    assert [p.name for p in tmp_path.iterdir() if ".part" in p.name] == []


def test_subprocess_exit_status_and_error_line(tmp_path, ckpts):
    (tmp_path / "n.jpg").write_bytes(b"\xff\xd8 truncated")
    res = subprocess.run([sys.executable, "-m", "blurtools", "deblur", str(tmp_path / "n.jpg"), "-o", str(tmp_path / "o.png"),
                          "--weights", str(ckpts / "dm.pt"), "--device", "cpu"], capture_output=True, text=True)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'n.jpg'}: cannot read as an image"), lines
    assert not (tmp_path / "o.png").exists()


def test_output_folder_inside_the_input_folder_is_not_read_back(tmp_path, ckpts):
    _img(tmp_path / "photos" / "a.png")
    for _ in range(2):
        res = run(tmp_path / "photos", "-o", f"{tmp_path / 'photos' / 'sharp'}/", "--weights", ckpts / "dm.pt")
        assert res.returncode == 0, res.stderr
        assert "wrote 1 image(s)" in res.stdout
    assert not (tmp_path / "photos" / "sharp" / "sharp").exists()
    (tmp_path / "afile").write_text("x")
    res = run(tmp_path / "photos", "-o", tmp_path / "afile", "--weights", ckpts / "dm.pt")
    assert res.returncode == 2 and "exists and is not a folder" in res.stderr
