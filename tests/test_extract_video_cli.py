"""`extract-video` end to end with a tiny real video model: formats picked by the output's extension, frame
counts, boomerang, loop, contact sheet, many inputs, the classical path, default weights, and bad input."""

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from blurtools.infer import loading
from blurtools.io.images import read_array, write_image
from blurtools.io.video import iter_frames
from blurtools.models.dm import DenseDeblurModule
from blurtools.models.niu import NiuNet
from blurtools.train.checkpoint import save_checkpoint, weights_record

FRAMES = 3


def run(*args):
    """`blurtools extract-video` in-process; exit code and stderr as a shell sees them."""
    from typer.testing import CliRunner

    from blurtools.cli.main import app

    res = CliRunner().invoke(app, ["extract-video", *map(str, args)])
    res.returncode = res.exit_code
    return res


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    save_checkpoint(root / "niu.pt", weights_record(NiuNet(frames=FRAMES, width=4, blocks=0), "niu", {}, step=5))
    save_checkpoint(root / "dm.pt", weights_record(DenseDeblurModule(width=4, growth=4, rdb_layers=1, blocks=(1, 1, 1),
                                                                     bottleneck=0), "dm", {}, step=5))
    return root


def _img(path, h=36, w=44, channels=3, bits=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    write_image(path, torch.rand(channels, h, w, generator=g), bits=bits)


def test_gif_with_boomerang_loop_and_provenance(tmp_path, ckpts):
    _img(tmp_path / "b.png")
    # the network's own frames (a refined video of this noise image holds still, and GIF merges equal frames)
    res = run(tmp_path / "b.png", "-o", tmp_path / "out.gif", "--weights", ckpts / "niu.pt", "--fps", "20", "--refine", "none")
    assert res.returncode == 0, res.stderr
    with Image.open(tmp_path / "out.gif") as im:
        assert im.n_frames == FRAMES and im.size == (44, 36) and im.info["loop"] == 0 and im.info["duration"] == 50
        rec = json.loads(im.info["comment"])
    assert rec["tool"] == "blurtools extract-video" and rec["model"]["arch"] == "niu" and rec["frames"] == FRAMES
    assert rec["options"]["fps"] == 20 and rec["source"].endswith("b.png")
    res = run(tmp_path / "b.png", "-o", tmp_path / "boom.gif", "--weights", ckpts / "niu.pt", "--boomerang", "--loop", "1",
              "--refine", "none")
    assert res.returncode == 0, res.stderr
    with Image.open(tmp_path / "boom.gif") as im:
        assert im.n_frames == 2 * FRAMES - 2 and "loop" not in im.info       # plays once: no loop extension


def test_frame_multiplication_and_mp4_webp(tmp_path, ckpts):
    _img(tmp_path / "b.png", h=32, w=40)
    res = run(tmp_path / "b.png", "-o", tmp_path / "out.mp4", "--weights", ckpts / "niu.pt", "--frames", "7")
    assert res.returncode == 0, res.stderr
    frames = list(iter_frames(tmp_path / "out.mp4"))
    assert len(frames) == 7 and frames[0].shape == (32, 40, 3)
    res = run(tmp_path / "b.png", "-o", tmp_path / "out.webp", "--weights", ckpts / "niu.pt")
    assert res.returncode == 0, res.stderr
    with Image.open(tmp_path / "out.webp") as im:
        assert im.n_frames == FRAMES and b"blurtools extract-video" in im.info["xmp"]


def test_frame_folder_and_replacement(tmp_path, ckpts):
    _img(tmp_path / "b.png", bits=16)
    out = tmp_path / "frames"
    res = run(tmp_path / "b.png", "-o", f"{out}/", "--weights", ckpts / "niu.pt", "--frames", "5")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["0000.png", "0001.png", "0002.png", "0003.png", "0004.png", "meta.json"]
    assert read_array(out / "0000.png").dtype == np.uint16                   # 16-bit in, 16-bit frames out
    meta = json.loads((out / "meta.json").read_text())
    assert meta["tool"] == "blurtools extract-video" and meta["items"][0]["frames"] == 5
    # a rerun with fewer frames replaces the folder as a whole: no stale frames
    res = run(tmp_path / "b.png", "-o", f"{out}/", "--weights", ckpts / "niu.pt")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.glob("*.png")) == [f"{i:04d}.png" for i in range(FRAMES)]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    (out / "mine.txt").write_text("someone else's file")
    res = run(tmp_path / "b.png", "-o", f"{out}/", "--weights", ckpts / "niu.pt")
    assert res.returncode == 2 and "holds other files (mine.txt)" in res.stderr


def test_many_inputs_into_a_folder_with_a_sheet(tmp_path, ckpts):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    _img(tmp_path / "in" / "a.png")
    _img(tmp_path / "in" / "sub" / "b.png", channels=1, h=30, w=30)
    res = run(tmp_path / "in", "-o", f"{tmp_path / 'vids'}/", "--weights", ckpts / "niu.pt", "--sheet", tmp_path / "sheet.png")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "vids" / "a.gif").is_file() and (tmp_path / "vids" / "sub" / "b.gif").is_file()
    meta = json.loads((tmp_path / "vids" / "meta.json").read_text())
    assert len(meta["items"]) == 2 and meta["options"]["sheet"].endswith("sheet.png")
    sheet = read_array(tmp_path / "sheet.png")
    assert sheet.ndim == 3 and sheet.shape[1] > (FRAMES + 1) * 44 and sheet.shape[0] > 36 + 30
    with Image.open(tmp_path / "sheet.png") as im:
        assert "extract-video" in im.text["Software"]
    res = run(tmp_path / "in", "-o", f"{tmp_path / 'pngs'}/", "--weights", ckpts / "niu.pt", "--format", "png")
    assert res.returncode == 0, res.stderr
    assert len(list((tmp_path / "pngs" / "sub" / "b").glob("*.png"))) == FRAMES


def test_classical_and_default_weights(tmp_path, ckpts, monkeypatch):
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, 3, 8, 8, generator=g)
    img = torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bicubic", align_corners=False).clamp(0, 1)[0]
    write_image(tmp_path / "b.png", img)
    res = run(tmp_path / "b.png", "-o", tmp_path / "c.gif", "--model", "classical", "--quiet")
    assert res.returncode == 0, res.stderr
    with Image.open(tmp_path / "c.gif") as im:
        assert im.n_frames == 7
    monkeypatch.setattr(loading, "default_weights_path", lambda kind: tmp_path / "missing.pt")
    res = run(tmp_path / "b.png", "-o", tmp_path / "d.gif")
    assert res.returncode == 1 and "default extract-video weights are missing" in res.stderr
    assert not (tmp_path / "d.gif").exists()
    monkeypatch.setattr(loading, "default_weights_path", lambda kind: ckpts / ("niu.pt" if kind == "video" else "dm.pt"))
    res = run(tmp_path / "b.png", "-o", tmp_path / "d.gif")
    assert res.returncode == 0, res.stderr


def test_refined_video_records_the_default_deblur(tmp_path, ckpts, monkeypatch):
    from blurtools.io.images import read_array

    monkeypatch.setattr(loading, "default_weights_path", lambda kind: ckpts / ("niu.pt" if kind == "video" else "dm.pt"))
    _img(tmp_path / "b.png", h=48, w=48)
    assert run(tmp_path / "b.png", "-o", f"{tmp_path / 'v'}/", "--format", "png").returncode == 0
    frames = [read_array(f) for f in sorted((tmp_path / "v" / "b").glob("*.png"))]
    assert len(frames) == FRAMES and frames[0].shape == (48, 48, 3)
    rec = json.loads(Image.open(tmp_path / "v" / "b" / "0000.png").text["blurtools"])
    # the shipped weights: the frames are the default deblur moved along the blur path, and say how
    assert rec["options"]["refine"] == "classical" and rec["model"]["refine"]["method"] == "motion"
    assert rec["model"]["refine"]["refine"]["kernel_method"] == "multiscale"
    assert set(rec["motion"]) >= {"evidence", "extent_px", "kernel_size", "reblur_psnr_db"} and "refine" in rec
    # a network the user trained keeps its own frames, sharpened by the default deblur
    assert run(tmp_path / "b.png", "-o", f"{tmp_path / 'w'}/", "--format", "png", "--weights", ckpts / "niu.pt").returncode == 0
    rec = json.loads(Image.open(tmp_path / "w" / "b" / "0000.png").text["blurtools"])
    assert rec["model"]["refine"]["method"] == "default deblur" and "motion" not in rec


def test_tiled_video_matches_untiled_in_shape_and_direction(tmp_path, ckpts):
    _img(tmp_path / "b.png", h=80, w=100)
    assert run(tmp_path / "b.png", "-o", f"{tmp_path / 't'}/", "--weights", ckpts / "niu.pt", "--tile", "48",
               "--overlap", "16").returncode == 0
    assert run(tmp_path / "b.png", "-o", f"{tmp_path / 'u'}/", "--weights", ckpts / "niu.pt", "--tile", "0").returncode == 0
    for i in range(FRAMES):
        a = read_array(tmp_path / "t" / f"{i:04d}.png").astype(int)
        b = read_array(tmp_path / "u" / f"{i:04d}.png").astype(int)
        assert a.shape == b.shape and np.abs(a - b).mean() < 3


def test_standalone_executable(tmp_path, ckpts, monkeypatch, capsys):
    from blurtools.cli.extract_video import main

    _img(tmp_path / "b.png")
    monkeypatch.setattr(sys, "argv", ["extract-video", str(tmp_path / "b.png"), "-o", str(tmp_path / "s.gif"),
                                      "--weights", str(ckpts / "niu.pt")])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code in (0, None) and (tmp_path / "s.gif").is_file()


@pytest.mark.parametrize("case", ["wrong_kind", "not_image", "folder_named_gif", "png_file", "many_to_one_gif",
                                  "format_mismatch", "bad_fps"])
def test_bad_input(tmp_path, ckpts, case):
    _img(tmp_path / "b.png")
    out = tmp_path / "o.gif"
    args = [tmp_path / "b.png", "-o", out, "--weights", ckpts / "niu.pt"]
    code, msg = 1, None
    if case == "wrong_kind":
        args[-1], msg = ckpts / "dm.pt", "is an image model (dm); this command needs a video (frame-extraction) model"
    elif case == "not_image":
        (tmp_path / "n.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
        args[0], msg = tmp_path / "n.png", "n.png: not a valid PNG file"
    elif case == "folder_named_gif":
        out.mkdir()
        code, msg = 2, "is an existing folder, but its name asks for one .gif file"
    elif case == "png_file":
        args[2] = out = tmp_path / "o.png"
        code, msg = 2, "one image cannot hold a video"
    elif case == "many_to_one_gif":
        _img(tmp_path / "c.png")
        args.insert(1, tmp_path / "c.png")
        code, msg = 2, "2 inputs need an output folder"
    elif case == "format_mismatch":
        args += ["--format", "mp4"]
        code, msg = 2, "--format says mp4"
    elif case == "bad_fps":
        args += ["--fps", "0"]
        code, msg = 2, "--fps 0"
    res = run(*args)
    assert res.returncode == code, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and msg in lines[0], lines
    if case != "folder_named_gif":
        assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if ".part" in p.name] == []


def test_contact_sheet_layout():
    from blurtools.io.contact_sheet import contact_sheet, thumbnail

    blurry = np.full((20, 30, 3), 200, np.uint8)
    frames = [np.full((20, 30, 3), 10 * i, np.uint8) for i in range(10)]
    sheet = contact_sheet([(blurry, frames)], columns=4, gap=8)
    lines = 3                                                        # 11 cells, 4 per line
    assert sheet.dtype == np.uint8 and sheet.shape[2] == 3
    assert sheet.shape[1] == 8 + 4 * (30 + 8) + 4 and sheet.shape[0] == 8 + lines * (20 + 16 + 8) + 4
    assert (sheet == 200).all(axis=2).sum() >= 20 * 30 - 60           # the blurry cell (a label may overlap it)
    assert (sheet == (255, 140, 0)).all(axis=2).any()                 # its orange frame
    t = thumbnail(torch.rand(3, 100, 50), 40)
    assert t.shape == (40, 20, 3) and t.dtype == np.uint8
    assert thumbnail(np.zeros((10, 10, 3), np.uint8), 40).shape == (10, 10, 3)     # never enlarged
