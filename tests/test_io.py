"""Images (8/16-bit, gray, RGBA), video streaming, frame folders, atomic writes, sample sets."""

import json
import os
import zlib

import numpy as np
import pytest
import torch

from blurtools.errors import BlurtoolsError
from blurtools.io.atomic import atomic_path
from blurtools.io.images import read_array, read_image, read_image_bits, write_image
from blurtools.io.png16 import decode_png16, encode_png16
from blurtools.io.sampleset import SampleSet, SampleSetWriter
from blurtools.io.video import iter_frames, list_frame_files, video_info, write_gif, write_mp4


def test_png16_round_trip_all_channel_counts(tmp_path):
    rng = np.random.default_rng(0)
    for shape in [(13, 17), (13, 17, 2), (13, 17, 3), (13, 17, 4)]:
        a = rng.integers(0, 65536, size=shape, dtype=np.uint16)
        p = tmp_path / f"a{len(shape)}{shape[-1]}.png"
        p.write_bytes(encode_png16(a))
        assert np.array_equal(decode_png16(p), a)


def _png16_with_filter(a: np.ndarray, ftype: int) -> bytes:
    """Encode with a given PNG filter (3 = Average, 4 = Paeth) to exercise the decoder's slow paths."""
    import struct

    h, w, ch = a.shape
    rows = np.ascontiguousarray(a, dtype=">u2").view(np.uint8).reshape(h, w * ch * 2).astype(np.int32)
    bpp = ch * 2
    out = []
    prior = np.zeros(rows.shape[1], np.int32)
    for y in range(h):
        line = rows[y]
        enc = np.zeros_like(line)
        for x in range(line.size):
            left = line[x - bpp] if x >= bpp else 0
            up = prior[x]
            ul = prior[x - bpp] if x >= bpp else 0
            if ftype == 3:
                pred = (left + up) >> 1
            else:
                p = left + up - ul
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else ul)
            enc[x] = (line[x] - pred) & 0xFF
        out.append(bytes([ftype]) + enc.astype(np.uint8).tobytes())
        prior = line

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(out))) + chunk(b"IEND", b"")


@pytest.mark.parametrize("ftype", [3, 4])
def test_png16_decodes_average_and_paeth(tmp_path, ftype):
    a = np.random.default_rng(ftype).integers(0, 65536, size=(6, 9, 3), dtype=np.uint16)
    p = tmp_path / "f.png"
    p.write_bytes(_png16_with_filter(a, ftype))
    assert np.array_equal(decode_png16(p), a)


@pytest.mark.parametrize("bits", [8, 16])
def test_image_round_trip(tmp_path, bits):
    x = torch.rand(3, 21, 34)
    write_image(tmp_path / "x.png", x, bits=bits)
    y = read_image(tmp_path / "x.png")
    assert y.shape == (3, 21, 34)
    assert (x - y).abs().max() <= 0.5 / (255 if bits == 8 else 65535) + 1e-6
    assert read_image_bits(tmp_path / "x.png") == bits


def test_gray_and_rgba(tmp_path):
    import imageio.v3 as iio

    g = (np.arange(60).reshape(6, 10) * 4).astype(np.uint8)
    iio.imwrite(tmp_path / "g.png", g)
    assert read_image(tmp_path / "g.png").shape == (3, 6, 10)
    assert read_image(tmp_path / "g.png", keep_gray=True).shape == (1, 6, 10)
    rgba = np.random.default_rng(1).integers(0, 255, (5, 7, 4), dtype=np.uint8)
    iio.imwrite(tmp_path / "a.png", rgba)
    x = read_image(tmp_path / "a.png")
    assert torch.allclose(x, torch.from_numpy(rgba[..., :3].transpose(2, 0, 1)).float() / 255)
    for ext in (".tif", ".bmp", ".jpg"):
        iio.imwrite(tmp_path / f"c{ext}", rgba[..., :3])
        assert read_image(tmp_path / f"c{ext}").shape == (3, 5, 7)


def test_bad_images(tmp_path):
    with pytest.raises(BlurtoolsError, match="no such file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "notimage.png").write_text("hello")
    with pytest.raises(BlurtoolsError, match="notimage.png"):
        read_image(tmp_path / "notimage.png")
    write_image(tmp_path / "ok.png", torch.rand(3, 40, 40))
    (tmp_path / "trunc.png").write_bytes((tmp_path / "ok.png").read_bytes()[:200])
    with pytest.raises(BlurtoolsError, match="trunc.png"):
        read_image(tmp_path / "trunc.png")


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("good")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_video_round_trip_and_streaming(tmp_path):
    frames = [np.full((16, 24, 3), 20 * i, np.uint8) for i in range(6)]
    write_mp4(tmp_path / "v.mp4", frames, fps=30)
    info = video_info(tmp_path / "v.mp4")
    assert (info.width, info.height, info.frames) == (24, 16, 6)
    got = list(iter_frames(tmp_path / "v.mp4"))
    assert len(got) == 6
    assert all(abs(int(g.mean()) - 20 * i) <= 3 for i, g in enumerate(got))
    write_gif(tmp_path / "v.gif", frames)
    assert len(list(iter_frames(tmp_path / "v.gif"))) == 6


def test_frame_folder_natural_order_and_mixed_sizes(tmp_path):
    for i in [10, 2, 1]:
        write_image(tmp_path / f"f{i}.png", torch.full((3, 4, 5), i / 20))
    assert [p.name for p in list_frame_files(tmp_path)] == ["f1.png", "f2.png", "f10.png"]
    assert [round(f.mean() / 255 * 20) for f in iter_frames(tmp_path)] == [1, 2, 10]
    write_image(tmp_path / "f11.png", torch.zeros(3, 5, 5))
    with pytest.raises(BlurtoolsError, match="f11.png"):
        list(iter_frames(tmp_path))


def test_unreadable_video(tmp_path):
    (tmp_path / "bad.mp4").write_text("not a video")
    with pytest.raises(BlurtoolsError, match="bad.mp4"):
        list(iter_frames(tmp_path / "bad.mp4"))


def test_sample_set_write_read_resume(tmp_path):
    root = tmp_path / "set"
    w = SampleSetWriter(root, "test-tool", {"n": 3})
    sharp = [torch.rand(3, 8, 9) for _ in range(3)]
    w.add("a", sum(sharp) / 3, sharp, source="src.mp4", start=0)
    w.add("b", sum(sharp) / 3, sharp, source="src.mp4", start=3)
    # a line cut short by an interrupt is dropped on resume
    with open(root / "samples.jsonl", "a") as f:
        f.write('{"id": "c", "blu')
    w2 = SampleSetWriter(root, "test-tool", {"n": 3})
    assert w2.is_done("a") and w2.is_done("b") and not w2.is_done("c")
    s = SampleSet(root)
    assert len(s) == 2 and s.frames == 3
    blurry, frames = s.read(1)
    assert blurry.shape == (3, 8, 9) and frames.shape == (3, 3, 8, 9)
    meta = json.loads((root / "meta.json").read_text())
    assert meta["format"] == "blurtools-samples/1" and meta["tool"] == "test-tool" and "version" in meta
    with pytest.raises(BlurtoolsError, match="other options"):
        SampleSetWriter(root, "test-tool", {"n": 5})
    os.remove(root / "sharp" / "b" / "0001.png")
    with pytest.raises(BlurtoolsError, match="sample b: missing file"):
        s.read(1)
    with open(root / "samples.jsonl", "a") as f:
        f.write("{broken\n")
    with pytest.raises(BlurtoolsError, match="samples.jsonl:3: corrupt manifest line"):
        SampleSet(root)
