"""Reading weights files: legacy PyTorch 0.3 / Python 2.7 files with weights_only, and refusing code."""

from __future__ import annotations

import collections
import os
import pickle
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _legacy_files import save_legacy, seeded_state  # noqa: E402
from blurtools.errors import BlurtoolsError  # noqa: E402
from blurtools.models.files import drop_running_stats, pickle_globals, read_weights_file, strip_prefix  # noqa: E402


def test_legacy_python2_file_reads_tensors_exactly(tmp_path):
    sd = seeded_state({"conv1_B.weight": (144, 16, 5, 5), "norm3.weight": (64,), "norm3.running_mean": (64,),
                       "norm3.running_var": (64,)}, seed=3)
    path = save_legacy({"state_dict_G": sd}, tmp_path / "center_v3.pth")
    raw = path.read_bytes()
    assert not raw.startswith(b"PK")                          # the legacy format, not a zip
    assert pickle.SHORT_BINSTRING + b"\x0cstate_dict_G" in raw  # Python 2 byte strings
    assert b"cuda:0" in raw and b"ctorch.cuda\nFloatStorage\n" in raw
    assert "torch._utils._rebuild_tensor" in pickle_globals(path)
    state = read_weights_file(path)
    assert list(state) == ["state_dict_G"]
    assert list(state["state_dict_G"]) == list(sd)
    for k, v in sd.items():
        got = state["state_dict_G"][k]
        assert got.device.type == "cpu" and got.dtype == torch.float32 and torch.equal(got, v)


def test_latin1_byte_strings_are_decoded(tmp_path):
    sd = collections.OrderedDict([("caf\xe9.weight", torch.ones(2))])
    state = read_weights_file(save_legacy(sd, tmp_path / "latin.pth"))
    assert list(state) == ["caf\xe9.weight"]


def test_current_zip_files_read_too(tmp_path):
    sd = {"params": {"a": torch.arange(3.0)}}
    torch.save(sd, tmp_path / "new.pth")
    assert torch.equal(read_weights_file(tmp_path / "new.pth")["params"]["a"], torch.arange(3.0))


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize("legacy", [True, False])
@pytest.mark.parametrize("protocol", [2, 4])
def test_code_carrying_pickle_is_refused_with_the_reason(tmp_path, legacy, protocol):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict_G": {"w": torch.ones(1)}, "x": _Evil()}, path, pickle_protocol=protocol,
               _use_new_zipfile_serialization=not legacy)
    with pytest.raises(BlurtoolsError) as e:
        read_weights_file(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    assert "carries code" in msg and ("posix.system" in msg or "os.system" in msg)


def test_raw_code_pickle_is_refused(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps(_Evil(), protocol=0))
    with pytest.raises(BlurtoolsError, match="carries code"):
        read_weights_file(path)


def test_not_a_torch_file_and_missing_file(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00\x01 not a pickle at all")
    with pytest.raises(BlurtoolsError, match="junk.pth"):
        read_weights_file(junk)
    with pytest.raises(BlurtoolsError, match="no such file"):
        read_weights_file(tmp_path / "absent.pth")
    torch.save([torch.ones(1)], tmp_path / "list.pth")
    with pytest.raises(BlurtoolsError, match="not a mapping"):
        read_weights_file(tmp_path / "list.pth")


def test_truncated_legacy_file(tmp_path):
    path = save_legacy({"w": torch.ones(1000)}, tmp_path / "cut.pth")
    path.write_bytes(path.read_bytes()[:-2000])
    with pytest.raises(BlurtoolsError, match="cut.pth"):
        read_weights_file(path)


def test_a_file_the_safe_loader_cannot_read_says_why_and_never_advises_unsafe_loading(tmp_path):
    path = save_legacy({"k" * 300: torch.ones(1)}, tmp_path / "long_key.pth")   # a Python 2 BINSTRING
    with pytest.raises(BlurtoolsError) as e:
        read_weights_file(path)
    msg = str(e.value)
    assert "long_key.pth" in msg and "Unsupported operand" in msg
    assert "weights_only" not in msg and "False" not in msg


def test_drop_running_stats_and_strip_prefix():
    sd = {"a.weight": 1, "a.running_mean": 2, "a.running_var": 3, "b.num_batches_tracked": 4}
    assert drop_running_stats(sd) == {"a.weight": 1}
    assert strip_prefix({"module.a": 1, "module.b": 2}) == {"a": 1, "b": 2}
    assert strip_prefix({"module.a": 1, "b": 2}) == {"module.a": 1, "b": 2}


def test_scan_never_executes(tmp_path, monkeypatch):
    calls = []
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Evil(), protocol=2))
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a))
    assert any(g.endswith(".system") for g in pickle_globals(path))
    with pytest.raises(BlurtoolsError):
        read_weights_file(path)
    assert calls == []
