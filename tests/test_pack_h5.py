"""pack-h5: layout, round trips, padded sizes, patches, info, verify, append, interruption, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from blurtools.cli.main import app
from blurtools.data import FORMAT, H5Dataset, open_dataset, pack_info, pack_sets, verify_pack
from blurtools.errors import BlurtoolsError, UsageError
from blurtools.io.images import read_array
from blurtools.io.sampleset import SampleSet, SampleSetWriter

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def make_set(root, n=3, size=(10, 12), frames=5, bits=8, seed=0, prefix="s", crf="gamma:2.2"):
    g = torch.Generator().manual_seed(seed)
    w = SampleSetWriter(root, "blur-synth", {"crf": crf, "frames": frames}, bits=bits)
    for i in range(n):
        fr = [torch.rand(3, *size, generator=g) for _ in range(frames)]
        w.add(f"{prefix}{i}", torch.stack(fr).mean(0), fr, source="test")
    return Path(root)


def file_bytes(path):
    return Path(path).read_bytes()


@pytest.mark.parametrize("bits,compression", [(8, None), (8, "lzf"), (8, "gzip"), (16, None), (16, "lzf")])
def test_round_trip_is_bit_identical(tmp_path, bits, compression):
    src = make_set(tmp_path / "set", bits=bits)
    info = pack_sets([src], tmp_path / "p.h5", compression=compression, verify=True)
    assert info["bits"] == bits and info["compression"] == (compression or "none")
    sset, ds = SampleSet(src), H5Dataset(tmp_path / "p.h5")
    with h5py.File(tmp_path / "p.h5", "r") as f:
        assert f["blurry"].dtype == (np.uint8 if bits == 8 else np.uint16)
        assert f["blurry"].chunks == (1, 10, 12, 3) and f["sharp"].chunks == (1, 5, 10, 12, 3)
        assert f.attrs["format"] == FORMAT and f.attrs["frames"] == 5 and f.attrs["complete"] == 1
        for i, sample in enumerate(sset.samples):
            assert np.array_equal(f["blurry"][i], read_array(sample.blurry))
            assert np.array_equal(f["sharp"][i, 3], read_array(sample.sharp[3]))
    for i in range(len(sset)):
        b, s = sset.read(i)
        item = ds[i]
        assert item["id"] == sset[i].id
        assert torch.equal(item["blurry"], b) and torch.equal(item["sharp"], s)


def test_attributes_record_sources_options_and_tool(tmp_path):
    a = make_set(tmp_path / "a")
    pack_sets([a], tmp_path / "p.h5", seed=5)
    with h5py.File(tmp_path / "p.h5", "r") as f:
        sources = json.loads(f.attrs["sources"])
        assert sources[0]["meta"] == json.loads((a / "meta.json").read_text())
        assert sources[0]["path"] == str(a.resolve())
        assert json.loads(f.attrs["options"])["compression"] == "none"
        assert f.attrs["crf"] == "gamma:2.2" and f.attrs["tool"] == "pack-h5" and f.attrs["version"]
        assert [v.decode() for v in f["ids"][()]] == ["s0", "s1", "s2"]


def test_differing_sizes_are_packed_padded_never_resized(tmp_path):
    a = make_set(tmp_path / "a", size=(10, 12))
    b = make_set(tmp_path / "b", size=(8, 14), prefix="t", seed=1)
    info = pack_sets([a, b], tmp_path / "p.h5", compression="lzf")
    assert info["layout"] == "padded" and info["shape"] == [10, 14]
    assert info["sizes"] == {"min": [8, 12], "max": [10, 14]}
    ds = H5Dataset(tmp_path / "p.h5")
    sets = {"a": SampleSet(a), "b": SampleSet(b)}
    for i in range(len(ds)):
        item = ds[i]
        sset = sets["a" if item["id"].startswith("s") else "b"]
        ref_b, ref_s = sset.read(sset.ids().index(item["id"]))
        assert torch.equal(item["blurry"], ref_b) and torch.equal(item["sharp"], ref_s)
    verify_pack(tmp_path / "p.h5")


def test_patches_are_seeded_crops_of_the_source(tmp_path):
    a = make_set(tmp_path / "a", size=(16, 20))
    info = pack_sets([a], tmp_path / "p.h5", patch=8, per_image=3, seed=1)
    assert info["samples"] == 9 and info["shape"] == [8, 8] and info["layout"] == "fixed"
    sset = SampleSet(a)
    with h5py.File(tmp_path / "p.h5", "r") as f:
        ids = [v.decode() for v in f["ids"][()]]
        origin = f["origin"][()]
        assert ids[:3] == ["s0#0", "s0#1", "s0#2"]
        for i in range(9):
            y, x = origin[i]
            full = read_array(sset[i // 3].sharp[2])
            assert np.array_equal(f["sharp"][i, 2], full[y:y + 8, x:x + 8])
    again = pack_sets([a], tmp_path / "q.h5", patch=8, per_image=3, seed=1)
    other = pack_sets([a], tmp_path / "r.h5", patch=8, per_image=3, seed=2)
    with h5py.File(tmp_path / "q.h5", "r") as q, h5py.File(tmp_path / "r.h5", "r") as r:
        assert np.array_equal(q["origin"][()], origin)
        assert not np.array_equal(r["origin"][()], origin)
    assert again["samples"] == other["samples"] == 9
    with pytest.raises(BlurtoolsError, match="smaller than the patch"):
        pack_sets([a], tmp_path / "s.h5", patch=32, per_image=1)
    with pytest.raises(UsageError, match="go together"):
        pack_sets([a], tmp_path / "s.h5", patch=8)


def test_sets_with_different_frame_counts_are_refused(tmp_path):
    a = make_set(tmp_path / "a", frames=5)
    b = make_set(tmp_path / "b", frames=7)
    with pytest.raises(BlurtoolsError, match=r"differ in frame count.*a has 5.*b has 7"):
        pack_sets([a, b], tmp_path / "p.h5")
    assert not (tmp_path / "p.h5").exists()


def test_sets_with_different_bit_depths_are_refused(tmp_path):
    a = make_set(tmp_path / "a", bits=8)
    b = make_set(tmp_path / "b", bits=16)
    with pytest.raises(BlurtoolsError, match="16-bit.*8-bit"):
        pack_sets([a, b], tmp_path / "p.h5")


def test_repeated_ids_across_sets_get_their_set_name(tmp_path):
    a = make_set(tmp_path / "a")
    b = make_set(tmp_path / "b", seed=2)
    pack_sets([a, b], tmp_path / "p.h5")
    ids = H5Dataset(tmp_path / "p.h5").ids
    assert ids == ["s0", "s1", "s2", "b/s0", "b/s1", "b/s2"]


def test_info_reports_the_truth(tmp_path):
    a = make_set(tmp_path / "a", n=2, size=(6, 9), frames=3)
    b = make_set(tmp_path / "b", n=4, size=(6, 9), frames=3, prefix="t", crf="srgb")
    pack_sets([a, b], tmp_path / "p.h5", compression="gzip")
    res = runner.invoke(app, ["pack-h5", "--info", "--json", str(tmp_path / "p.h5")])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["samples"] == 6 and info["frames"] == 3 and info["bits"] == 8
    assert info["shape"] == [6, 9] and info["layout"] == "fixed" and info["compression"] == "gzip"
    assert [s["samples"] for s in info["sources"]] == [2, 4]
    assert [s["path"] for s in info["sources"]] == [str(a.resolve()), str(b.resolve())]
    assert info["crf"] == "mixed" and info["file_bytes"] == (tmp_path / "p.h5").stat().st_size
    res = runner.invoke(app, ["pack-h5", "--info", "--verify", str(tmp_path / "p.h5")])
    assert res.exit_code == 0, res.output
    for text in ("samples", "6", "9x6", "gzip", str(a.resolve()), "checksums match"):
        assert text in res.stdout


def test_verify_finds_a_corrupt_chunk(tmp_path):
    pack_sets([make_set(tmp_path / "a")], tmp_path / "p.h5")
    assert verify_pack(tmp_path / "p.h5")["chunks"] == 6
    with h5py.File(tmp_path / "p.h5", "r") as f:
        offset = f["blurry"].id.get_chunk_info(1).byte_offset
    with open(tmp_path / "p.h5", "r+b") as fh:
        fh.seek(offset + 7)
        byte = fh.read(1)
        fh.seek(offset + 7)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BlurtoolsError, match=r"p\.h5: sample s1 .*checksum"):
        verify_pack(tmp_path / "p.h5")
    res = runner.invoke(app, ["pack-h5", "--verify", str(tmp_path / "p.h5")])
    assert res.exit_code == 1 and "sample s1" in res.output


def test_append_adds_sets_and_keeps_the_old_samples(tmp_path):
    a = make_set(tmp_path / "a")
    b = make_set(tmp_path / "b", prefix="t", seed=3)
    pack_sets([a], tmp_path / "p.h5", compression="lzf")
    before = [H5Dataset(tmp_path / "p.h5")[i] for i in range(3)]
    res = runner.invoke(app, ["pack-h5", str(b), "-o", str(tmp_path / "p.h5"), "--append", "--verify", "-q"])
    assert res.exit_code == 0, res.output
    info = pack_info(tmp_path / "p.h5")
    assert info["samples"] == 6 and info["compression"] == "lzf" and len(info["history"]) == 2
    assert [s["samples"] for s in info["sources"]] == [3, 3]
    ds = H5Dataset(tmp_path / "p.h5")
    for i in range(3):
        assert torch.equal(ds[i]["sharp"], before[i]["sharp"])
    tb, ts = SampleSet(b).read(2)
    assert ds[5]["id"] == "t2" and torch.equal(ds[5]["blurry"], tb) and torch.equal(ds[5]["sharp"], ts)
    # a bigger set turns the pack padded; old samples are re-laid, still identical
    c = make_set(tmp_path / "c", size=(12, 12), prefix="u")
    pack_sets([c], tmp_path / "p.h5", append=True)
    ds = H5Dataset(tmp_path / "p.h5")
    assert len(ds) == 9 and pack_info(tmp_path / "p.h5")["layout"] == "padded"
    assert torch.equal(ds[0]["sharp"], before[0]["sharp"])
    verify_pack(tmp_path / "p.h5")


def test_refused_append_leaves_the_pack_untouched(tmp_path):
    pack_sets([make_set(tmp_path / "a")], tmp_path / "p.h5")
    good = file_bytes(tmp_path / "p.h5")
    with pytest.raises(BlurtoolsError, match="frame count"):
        pack_sets([make_set(tmp_path / "b", frames=3)], tmp_path / "p.h5", append=True)
    with pytest.raises(UsageError, match="compression"):
        pack_sets([make_set(tmp_path / "c")], tmp_path / "p.h5", append=True, compression="gzip")
    assert file_bytes(tmp_path / "p.h5") == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c", "p.h5"]


SLOW_PACK = """
import sys, time, pathlib
from blurtools.data import pack_sets
flag = pathlib.Path(sys.argv[3])
def progress(done, total):
    if done == 1:
        flag.write_text("1")
        time.sleep(120)
pack_sets([sys.argv[1]], sys.argv[2], progress=progress, workers=1, append=sys.argv[4] == "append")
"""


def _run_until_mid_write(tmp_path, src, target, mode="pack"):
    script = tmp_path / "slow_pack.py"
    script.write_text(SLOW_PACK)
    flag = tmp_path / "flag"
    flag.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(script), str(src), str(target), str(flag), mode], env=env,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not flag.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "the packer never reached its first sample"
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_interrupted_pack_leaves_no_file_at_the_target(tmp_path, sig):
    src = make_set(tmp_path / "set", n=3)
    target = tmp_path / "out" / "p.h5"
    proc = _run_until_mid_write(tmp_path, src, target)
    partial = list(target.parent.glob(".p.h5.*.part"))
    assert len(partial) == 1  # it was mid-write
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert not target.exists()
    left = list(target.parent.iterdir())
    if sig == signal.SIGINT:
        assert left == []  # cleaned up on the way out
    else:
        assert [p.name for p in left] == [partial[0].name]  # killed: the temp stays, named unfinished
        assert not left[0].name.endswith(".h5")
        with pytest.raises(BlurtoolsError, match="unfinished|truncated|another layout"):
            open_dataset(left[0])
        # the next run warns about it and still writes the pack
        pack_sets([src], target)
        assert len(H5Dataset(target)) == 3


def test_killed_append_keeps_the_previous_pack(tmp_path):
    a = make_set(tmp_path / "a")
    target = tmp_path / "p.h5"
    pack_sets([a], target)
    good = file_bytes(target)
    proc = _run_until_mid_write(tmp_path, make_set(tmp_path / "b", prefix="t"), target, mode="append")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert file_bytes(target) == good
    assert len(H5Dataset(target)) == 3


def test_bad_sample_sets_name_the_sample_and_file(tmp_path):
    a = make_set(tmp_path / "a")
    (a / "sharp" / "s1" / "0002.png").unlink()
    with pytest.raises(BlurtoolsError, match=r"sample s1: missing file sharp/s1/0002\.png"):
        pack_sets([a], tmp_path / "p.h5")
    b = make_set(tmp_path / "b")
    with open(b / "samples.jsonl", "a") as f:
        f.write('{"id": "s9", "blurry": \n')
    with pytest.raises(BlurtoolsError, match=r"samples\.jsonl:4: corrupt manifest line"):
        pack_sets([b], tmp_path / "p.h5")
    c = make_set(tmp_path / "c")
    (c / "sharp" / "s2" / "0001.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(BlurtoolsError, match=r"sample s2.*0001\.png"):
        pack_sets([c], tmp_path / "p.h5")
    assert not (tmp_path / "p.h5").exists()
    assert not list(tmp_path.glob(".p.h5*"))


def test_truncated_and_foreign_h5_files_are_named(tmp_path):
    pack_sets([make_set(tmp_path / "a", n=4, size=(32, 32))], tmp_path / "p.h5")
    data = file_bytes(tmp_path / "p.h5")
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    for fn in (pack_info, verify_pack, open_dataset):
        with pytest.raises(BlurtoolsError, match=r"cut\.h5: truncated or corrupt"):
            fn(tmp_path / "cut.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["images"] = np.zeros((2, 4, 4))
    with pytest.raises(BlurtoolsError, match=r"other\.h5: an HDF5 file of another layout"):
        open_dataset(tmp_path / "other.h5")
    with h5py.File(tmp_path / "v2.h5", "w") as f:
        f.attrs["format"] = "blurtools-h5/2"
    with pytest.raises(BlurtoolsError, match=r"v2\.h5: .*format 'blurtools-h5/2'"):
        pack_info(tmp_path / "v2.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(BlurtoolsError, match=r"text\.h5: not an HDF5 file"):
        open_dataset(tmp_path / "text.h5")
    res = runner.invoke(app, ["pack-h5", "--info", str(tmp_path / "cut.h5")])
    assert res.exit_code == 1 and "cut.h5: truncated or corrupt" in res.output


def test_cli_packs_and_reports(tmp_path):
    a = make_set(tmp_path / "a")
    res = runner.invoke(app, ["pack-h5", str(a), "-o", str(tmp_path / "p.h5"), "--compression", "lzf", "-q"])
    assert res.exit_code == 0, res.output
    assert "3 samples, 5 frames, 8-bit" in res.stdout
    res = runner.invoke(app, ["pack-h5", str(a), "-o", str(tmp_path / "q.h5"), "--patch", "4x6", "--per-image", "2", "--json", "-q"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["shape"] == [4, 6]


def test_cli_usage_errors_exit_2(tmp_path):
    a = make_set(tmp_path / "a")
    for args in (["pack-h5", str(a)], ["pack-h5", str(a), "-o", str(tmp_path / "p.h5"), "--compression", "zip"],
                 ["pack-h5", "--info", str(a), str(a)], ["pack-h5", str(a), "-o", str(tmp_path / "p.h5"), "--patch", "x"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert "error:" in res.output


def test_standalone_executable_reports_bad_input_with_exit_1(tmp_path):
    a = make_set(tmp_path / "a", frames=5)
    b = make_set(tmp_path / "b", frames=3)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", "from blurtools.cli.pack_h5 import main; main()", str(a), str(b),
                           "-o", str(tmp_path / "p.h5")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: sample sets differ in frame count")


def test_a_set_is_packed_once(tmp_path):
    a = make_set(tmp_path / "a")
    with pytest.raises(UsageError, match="given twice"):
        pack_sets([a, a], tmp_path / "p.h5")
    pack_sets([a], tmp_path / "p.h5")
    with pytest.raises(BlurtoolsError, match="already in"):
        pack_sets([a], tmp_path / "p.h5", append=True)
    with pytest.raises(UsageError, match="is a folder"):
        pack_sets([a], tmp_path)
