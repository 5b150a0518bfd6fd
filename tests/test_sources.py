"""Frame-sequence discovery and streamed windows (blurtools.io.sources)."""

from __future__ import annotations

import numpy as np
import pytest

from _synth_data import moving, smooth_texture, write_folder, write_video
from blurtools.errors import BlurtoolsError, UsageError
from blurtools.io.sources import WindowReport, discover_sources, iter_windows, probe_source, window_starts
from blurtools.synth.output import encode_png8


def test_discovers_videos_folders_stills_and_trees(tmp_path):
    write_video(tmp_path / "clip.mp4", moving(5))
    write_folder(tmp_path / "frames", moving(4))
    (tmp_path / "photo.png").write_bytes(encode_png8(smooth_texture(8, 8), 1))
    # GoPro_Large_all: GOPR folders of frames; GoPro_Large: GOPR folders with blur/ and sharp/
    write_folder(tmp_path / "GOPRO_Large_all" / "GOPR0372_07_00", moving(3))
    write_folder(tmp_path / "GOPRO_Large_all" / "GOPR0384_11_01", moving(3))
    write_folder(tmp_path / "GOPRO_Large" / "train" / "GOPR0001_07_00" / "sharp", moving(3))
    write_folder(tmp_path / "GOPRO_Large" / "train" / "GOPR0001_07_00" / "blur", moving(3))
    # REDS: train_orig/NNN/
    write_folder(tmp_path / "train_orig" / "000", moving(3))
    write_folder(tmp_path / "train_orig" / "010", moving(3))
    write_folder(tmp_path / "train_orig" / "2", moving(3))
    paths = [tmp_path / p for p in ("clip.mp4", "frames", "photo.png", "GOPRO_Large_all", "GOPRO_Large", "train_orig")]
    found = discover_sources(paths)
    got = [(s.name, s.kind) for s in found]
    assert got == [
        ("clip", "video"), ("frames", "folder"), ("photo", "still"),
        ("GOPRO_Large_all-GOPR0372_07_00", "folder"), ("GOPRO_Large_all-GOPR0384_11_01", "folder"),
        ("GOPRO_Large-train-GOPR0001_07_00", "folder"),
        ("train_orig-000", "folder"), ("train_orig-2", "folder"), ("train_orig-010", "folder"),
    ]
    gopro = found[5]
    assert gopro.path.name == "sharp" and len(gopro.files) == 3


def test_stills_flag_and_name_collisions(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        (folder / f"p{i}.png").write_bytes(encode_png8(smooth_texture(8, 8, i), 1))
    found = discover_sources([folder], stills=True)
    assert [(s.name, s.kind) for s in found] == [("photos-p0", "still"), ("photos-p1", "still"), ("photos-p2", "still")]
    (tmp_path / "a").mkdir()
    write_video(tmp_path / "a" / "clip.mp4", moving(3))
    write_video(tmp_path / "clip.mp4", moving(3))
    with pytest.raises(UsageError, match="both be named 'clip'"):
        discover_sources([tmp_path / "clip.mp4", tmp_path / "a" / "clip.mp4"])


def test_missing_and_unknown_paths(tmp_path):
    with pytest.raises(BlurtoolsError, match="no such file"):
        discover_sources([tmp_path / "nope.mp4"])
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(BlurtoolsError, match="neither a video nor an image"):
        discover_sources([tmp_path / "notes.txt"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(BlurtoolsError, match="no videos, frame folders or images"):
        discover_sources([tmp_path / "empty"])


def test_window_starts():
    assert list(window_starts(20, 7, 7)) == [0, 7]
    assert list(window_starts(21, 7, 7)) == [0, 7, 14]
    assert list(window_starts(9, 7, 1)) == [0, 1, 2]
    assert list(window_starts(5, 7, 7)) == []


@pytest.mark.parametrize("kind", ["folder", "video"])
def test_windows_stride_and_tail(tmp_path, kind):
    frames = moving(17)
    path = write_folder(tmp_path / "f", frames) if kind == "folder" else write_video(tmp_path / "v.mp4", frames)
    src = discover_sources([path])[0]
    rep = WindowReport()
    wins = list(iter_windows(src, 5, 5, report=rep))
    assert [w.start for w in wins] == [0, 5, 10]
    assert rep.frames == 17 and rep.tail == 2 and not rep.too_short
    assert "do not fill a window" in rep.notes[0]
    assert all(len(w.frames) == 5 and w.frames[0].shape == (24, 32, 3) for w in wins)
    if kind == "folder":  # frame folders are exact: the window holds the very frames
        assert all(np.array_equal(w.frames[k], frames[w.start + k]) for w in wins for k in range(5))
    rep2 = WindowReport()
    wins = list(iter_windows(src, 5, 3, wanted=lambda s: s != 3, report=rep2))
    assert [w.start for w in wins] == [0, 6, 9, 12]


def test_too_short_source_is_reported(tmp_path):
    src = discover_sources([write_folder(tmp_path / "f", moving(3))])[0]
    rep = WindowReport()
    assert list(iter_windows(src, 5, 5, report=rep)) == []
    assert rep.too_short and "fewer than the window of 5" in rep.notes[0]


def test_probe_rejects_mixed_sizes_unreadable_and_empty_video(tmp_path):
    folder = write_folder(tmp_path / "mixed", moving(3))
    (folder / "00000009.png").write_bytes(encode_png8(smooth_texture(10, 10), 1))
    with pytest.raises(BlurtoolsError, match="differs"):
        probe_source(discover_sources([folder])[0])
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 50)
    with pytest.raises(BlurtoolsError, match="bad.mp4"):
        probe_source(discover_sources([bad])[0])
    good = write_video(tmp_path / "ok.mp4", moving(4))
    (tmp_path / "cut.mp4").write_bytes(good.read_bytes()[:300])  # a header with no frames
    with pytest.raises(BlurtoolsError, match="cut.mp4"):
        probe_source(discover_sources([tmp_path / "cut.mp4"])[0])
    assert probe_source(discover_sources([good])[0])[:2] == (24, 32)


def test_stopping_early_does_not_hang(tmp_path):
    src = discover_sources([write_video(tmp_path / "v.mp4", moving(30))])[0]
    it = iter_windows(src, 3, 3)
    first = next(it)
    it.close()
    assert first.start == 0
