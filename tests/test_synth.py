"""blur-synth: linear-light averaging, scene cuts, shards, resume, bad input (library and CLI)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from _synth_data import invoke, moving, run_standalone, static, write_folder, write_video
from blurtools.errors import BlurtoolsError, UsageError
from blurtools.io.images import read_array
from blurtools.io.sampleset import SampleSet
from blurtools.synth.averaging import LinearAccumulator, average_frames
from blurtools.synth.pipeline import RunControl, SynthConfig, in_shard, synthesize
from blurtools.synth.scenecut import content_scores, rgb_to_hsv_cv


def numpy_blur(frames, crf):
    """The formula, written directly: B = g(mean g^-1(S)) on [0, 1] values."""
    s = np.stack(frames).astype(np.float64) / 255.0
    if crf == "linear":
        return s.mean(0)
    if crf.startswith("gamma"):
        g = float(crf.split(":")[1]) if ":" in crf else 2.2
        return s.__pow__(g).mean(0) ** (1 / g)
    lin = np.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055) ** 2.4).mean(0)
    return np.where(lin <= 0.0031308, lin * 12.92, 1.055 * np.maximum(lin, 0.0031308) ** (1 / 2.4) - 0.055)


def run(paths, out, **kw):
    control = RunControl(**{k: kw.pop(k) for k in ("shard", "max_samples", "workers") if k in kw})
    cfg = SynthConfig(**kw)
    return synthesize(paths, out, "blur-synth", cfg.record(), cfg, control, lambda e: e.average())


def set_contents(root):
    """{relative path: bytes} of every sample file plus the sorted manifest records."""
    s = SampleSet(root)
    files = {}
    for smp in s.samples:
        for p in [smp.blurry, *smp.sharp]:
            files[str(p.relative_to(root))] = p.read_bytes()
    records = sorted((json.dumps({"id": x.id, "start": x.start, **x.extra}, sort_keys=True) for x in s.samples))
    return files, records


@pytest.mark.parametrize("crf", ["linear", "gamma:2.2", "gamma:1.8", "srgb"])
def test_average_matches_numpy_formula_for_every_crf(tmp_path, crf):
    frames = moving(7, step=2, seed=1)
    out = tmp_path / "set"
    st = run([write_folder(tmp_path / "f", frames)], out, frames=7, crf=__import__("blurtools.ops.crf", fromlist=["x"]).parse_crf(crf))
    assert st.written == 1
    s = SampleSet(out)
    smp = s[0]
    sharp = [read_array(p) for p in smp.sharp]
    assert all(np.array_equal(a, b) for a, b in zip(sharp, frames))
    want = numpy_blur(sharp, crf)
    got = read_array(smp.blurry).astype(np.float64) / 255.0
    assert np.abs(got - want).max() <= 1 / 255 + 1e-9
    # the library formula on tensors agrees too
    t = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255
    assert (average_frames(t, crf).permute(1, 2, 0).double().numpy() - want).__abs__().max() < 1e-5


def test_accumulator_matches_formula_16bit():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 65536, (5, 6, 3), dtype=np.uint16) for _ in range(3)]
    acc = LinearAccumulator("gamma:2.2")
    for f in frames:
        acc.add_frame(f)
    s = np.stack(frames).astype(np.float64) / 65535
    want = (s ** 2.2).mean(0) ** (1 / 2.2)
    assert np.abs(acc.display().permute(1, 2, 0).numpy() - want).max() < 1e-5


def test_static_scene_blurry_equals_sharp(tmp_path):
    frames = static(9)
    out = tmp_path / "set"
    run([write_folder(tmp_path / "f", frames)], out, frames=3, crf=SynthConfig().crf)
    s = SampleSet(out)
    assert len(s) == 3
    for smp in s.samples:
        assert np.array_equal(read_array(smp.blurry), read_array(smp.middle))


def test_scene_cut_rejected_and_reported(tmp_path):
    a = moving(10, seed=1)
    b = [255 - f[:, ::-1] for f in moving(10, seed=7)]  # another shot
    frames = a + b  # cut between frames 9 and 10
    scores = content_scores(frames)
    assert scores.argmax().item() == 9 and scores[9] > 27 and scores[:9].max() < 27
    out = tmp_path / "set"
    st = run([write_folder(tmp_path / "f", frames)], out, frames=5, stride=3)
    # windows start 0,3,6,9,12,15: those holding frames 9 and 10 (starts 6 and 9) are rejected
    assert st.rejected_cuts == 2
    assert SampleSet(out).ids() == ["f_000000", "f_000003", "f_000012", "f_000015"]
    st = run([tmp_path / "f"], tmp_path / "set2", frames=5, stride=3, cut_threshold=None)
    assert st.rejected_cuts == 0 and st.written == 6


def test_hsv_matches_opencv_convention():
    x = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0.5, 0.5, 0.5]]).T.reshape(3, 1, 4)
    hsv = rgb_to_hsv_cv(x).reshape(3, 4).T
    assert torch.allclose(hsv, torch.tensor([[0, 255, 255], [60, 255, 255], [120, 255, 255], [0, 0, 127.5]]))


def test_shards_partition_exactly_and_share_one_folder(tmp_path):
    src = write_folder(tmp_path / "f", moving(40, step=1))
    run([src], tmp_path / "all", frames=3)
    out = tmp_path / "sharded"
    for i in range(2):
        run([src], out, frames=3, shard=(i, 2))
    full = SampleSet(tmp_path / "all")
    parts = [set(json.loads(l)["id"] for l in (out / f"samples.shard-{i}-of-2.jsonl").read_text().splitlines()) for i in range(2)]
    assert parts[0] and parts[1] and not parts[0] & parts[1]
    assert parts[0] | parts[1] == set(full.ids())
    assert all(in_shard(i, (0, 2)) for i in parts[0])
    assert set_contents(out)[0] == set_contents(tmp_path / "all")[0]


def test_resume_gives_the_same_set(tmp_path):
    src = write_folder(tmp_path / "f", moving(25, step=1))
    kw = dict(frames=3, noise="rsblur", saturation=True, seed=5)
    run([src], tmp_path / "whole", **kw)
    # an interrupted run: stopped after 3 samples, plus a half-written manifest line
    part = tmp_path / "part"
    run([src], part, max_samples=3, **kw)
    with open(part / "samples.jsonl", "a") as f:
        f.write('{"id": "f_0000')
    st = run([src], part, **kw)
    assert st.already_done == 3 and st.written == 5
    assert set_contents(part) == set_contents(tmp_path / "whole")
    # removing the last manifest lines (files may stay) redoes exactly those samples
    lines = (part / "samples.jsonl").read_text().splitlines()
    (part / "samples.jsonl").write_text("\n".join(lines[:-2]) + "\n")
    st = run([src], part, **kw)
    assert st.written == 2 and set_contents(part) == set_contents(tmp_path / "whole")


def test_other_options_refuse_to_resume(tmp_path):
    src = write_folder(tmp_path / "f", moving(6))
    run([src], tmp_path / "s", frames=3)
    with pytest.raises(BlurtoolsError, match="other options"):
        run([src], tmp_path / "s", frames=5)


def test_bad_window_sizes_write_nothing(tmp_path):
    src = write_folder(tmp_path / "f", moving(5))
    with pytest.raises(UsageError, match="odd"):
        run([src], tmp_path / "even", frames=4)
    with pytest.raises(BlurtoolsError, match="no window of 7 frames"):
        run([src], tmp_path / "long", frames=7)
    assert not (tmp_path / "even").exists() and not (tmp_path / "long").exists()


def test_mixed_sizes_and_unreadable_video_write_nothing(tmp_path):
    folder = write_folder(tmp_path / "mixed", moving(5))
    write_folder(folder, moving(1, h=10, w=10), start=99)
    with pytest.raises(BlurtoolsError, match="differs"):
        run([folder], tmp_path / "out", frames=3)
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(BlurtoolsError, match="bad.mp4"):
        run([write_folder(tmp_path / "ok", moving(5)), tmp_path / "bad.mp4"], tmp_path / "out", frames=3)
    assert not (tmp_path / "out").exists()


def test_noise_is_seeded_per_sample(tmp_path):
    src = write_folder(tmp_path / "f", static(6))
    run([src], tmp_path / "a", frames=3, noise="realblur", seed=1)
    run([src], tmp_path / "b", frames=3, noise="realblur", seed=1)
    run([src], tmp_path / "c", frames=3, noise="realblur", seed=2)
    a, b, c = (set_contents(tmp_path / x)[0] for x in "abc")
    assert a == b and a != c
    blurry = read_array(tmp_path / "a" / "blurry" / "f_000000.png").astype(float)
    sharp = read_array(tmp_path / "a" / "sharp" / "f_000000" / "0001.png").astype(float)
    assert 0.3 < np.abs(blurry - sharp).mean() < 8


def test_interp_linear_and_16bit(tmp_path):
    src = write_folder(tmp_path / "f", moving(3, step=2))
    run([src], tmp_path / "s", frames=3, interp=4, interp_method="linear", bits=16)
    s = SampleSet(tmp_path / "s")
    smp = s[0]
    assert smp.extra["exposure_frames"] == 9 and smp.extra["interp"] == 4
    blurry = read_array(smp.blurry)
    assert blurry.dtype == np.uint16
    sharp = np.stack([read_array(p) for p in smp.sharp]).astype(np.float64) / 65535
    lin = sharp ** 2.2
    # linear cross-fades between 3 frames, 4x: weights 1/9 (end frames 1/2 of a step... ) = trapezoid rule
    w = np.array([2.5, 4.0, 2.5]) / 9.0
    want = np.tensordot(w, lin, 1) ** (1 / 2.2)
    assert np.abs(blurry / 65535 - want).max() < 2e-4


def test_cli_blur_synth_end_to_end(tmp_path):
    src = write_video(tmp_path / "clip.mp4", moving(12, step=1))
    out = tmp_path / "set"
    r = invoke("blur-synth", str(src), "-o", str(out), "--frames", "5", "--crf", "srgb", "--json", "--quiet")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["written"] == 2 and summary["tail_frames"] == 2
    meta = json.loads((out / "meta.json").read_text())
    assert meta["tool"] == "blur-synth" and meta["options"]["crf"] == "srgb" and meta["options"]["frames"] == 5
    assert "version" in meta and meta["options"]["sources"] == [str(src)]
    r = invoke("blur-synth", str(src), "-o", str(out), "--frames", "5", "--crf", "srgb", "--quiet")
    assert r.returncode == 0 and "2 already done" in r.stdout


@pytest.mark.parametrize("args, code, msg", [
    (["--frames", "4"], 2, "odd"),
    (["--frames", "31"], 1, "no window of 31 frames"),
    (["--crf", "gamma:x"], 2, "gamma"),
    (["--shard", "2/2"], 2, "shard"),
])
def test_cli_errors(tmp_path, args, code, msg):
    src = write_folder(tmp_path / "f", moving(6))
    r = invoke("blur-synth", str(src), "-o", str(tmp_path / "out"), "--quiet", *args)
    assert r.returncode == code, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and msg in last
    assert not (tmp_path / "out").exists()


def test_standalone_executable_unreadable_video(tmp_path):
    """The blur-synth executable itself: exit status 1 and one error line for an empty video."""
    (tmp_path / "zero.mp4").write_bytes(b"")
    r = run_standalone("blur_synth", str(tmp_path / "zero.mp4"), "-o", str(tmp_path / "out"))
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines() == [f"error: {tmp_path / 'zero.mp4'}: empty file"] or \
        (r.stderr.startswith("error: ") and "zero.mp4" in r.stderr)
    assert not (tmp_path / "out").exists()


def test_interp_flow_static_scene_and_frame_count(tmp_path):
    """Optical-flow upsampling (ops.flow): a static scene stays sharp; the exposure has (N-1)M+1 frames."""
    src = write_folder(tmp_path / "f", static(3, h=20, w=24))
    run([src], tmp_path / "s", frames=3, interp=3, interp_method="flow")
    smp = SampleSet(tmp_path / "s")[0]
    assert smp.extra["exposure_frames"] == 7
    assert np.abs(read_array(smp.blurry).astype(int) - read_array(smp.middle).astype(int)).max() <= 1
