"""Issue 17 item 7: `train` checks the per-sample checksums of the pack as it reads and stops with the id."""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _train_tiny as tiny  # noqa: E402
from blurtools.cli.main import app  # noqa: E402
from blurtools.data import H5Dataset, pack_sets  # noqa: E402
from blurtools.errors import BlurtoolsError  # noqa: E402

SMALL = ["--batch", "2", "--patch", "12", "--device", "cpu", "--model-arg", "width=4", "--steps", "4", "--quiet"]


def _flip_a_byte(pack: Path, index: int) -> None:
    """Corrupt sample ``index``'s blurry chunk on disk, as a bad disk or copy would."""
    with h5py.File(pack, "r") as f:
        offset = f["blurry"].id.get_chunk_info(index).byte_offset
    with open(pack, "r+b") as fh:
        fh.seek(offset + 5)
        byte = fh.read(1)
        fh.seek(offset + 5)
        fh.write(bytes([byte[0] ^ 0xFF]))


@pytest.fixture()
def corrupt_pack(tmp_path):
    pack = tmp_path / "p.h5"
    pack_sets([tiny.make_set(tmp_path / "set", samples=4, frames=3, size=16)], pack)
    _flip_a_byte(pack, 2)
    return pack


@pytest.fixture(autouse=True)
def tiny_models(monkeypatch):
    tiny.install(monkeypatch.setitem)


def _train(*args):
    return CliRunner().invoke(app, ["train", "--model", "tiny", *map(str, args)])


def test_the_dataset_refuses_a_sample_whose_checksum_fails(corrupt_pack):
    ds = H5Dataset(corrupt_pack, patch=8)
    ds[0], ds[1], ds[3]  # the intact samples read
    with pytest.raises(BlurtoolsError, match=r"p\.h5: sample s002 .*checksum.*pack-h5 --verify"):
        ds[2]
    whole = H5Dataset(corrupt_pack)
    with pytest.raises(BlurtoolsError, match=r"sample s002"):
        whole[2]


@pytest.mark.parametrize("extra", [[], ["--workers", "1"], ["--preload"]])
def test_train_stops_with_the_sample_id(corrupt_pack, tmp_path, extra):
    res = _train("--data", corrupt_pack, "--out", tmp_path / "run", *SMALL, *extra)
    assert res.exit_code == 1, res.output
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and "sample s002" in last and "checksum" in last, res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "run" / "weights.pt").exists()
