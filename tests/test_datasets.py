"""blurtools.data datasets: pack and sample-set datasets agree, crops, frames, workers, errors."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from blurtools.data import (Augment, H5Dataset, SampleSetDataset, open_dataset, pack_sets, sample_rng,
                            select_frames)
from blurtools.errors import BlurtoolsError
from blurtools.io.sampleset import SampleSet, SampleSetWriter


def make_set(root, n=4, size=(12, 16), frames=5, bits=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = SampleSetWriter(root, "blur-synth", {"crf": "gamma:2.2"}, bits=bits)
    for i in range(n):
        fr = [torch.rand(3, *size, generator=g) for _ in range(frames)]
        w.add(f"s{i}", torch.stack(fr).mean(0), fr)
    return Path(root)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    src = make_set(root / "set", n=6)
    pack_sets([src], root / "p.h5")
    return src, root / "p.h5"


def test_sample_set_dataset_returns_the_set_pixels(data):
    src, _ = data
    ds, sset = SampleSetDataset(src), SampleSet(src)
    assert len(ds) == 6 and ds.frames == 5
    for i in range(len(ds)):
        b, s = sset.read(i)
        item = ds[i]
        assert item["blurry"].dtype == torch.float32 and item["blurry"].shape == (3, 12, 16)
        assert item["sharp"].shape == (5, 3, 12, 16)
        assert torch.equal(item["blurry"], b) and torch.equal(item["sharp"], s)


@pytest.mark.parametrize("kwargs", [{}, {"patch": 8}, {"patch": (6, 10), "frames": 3},
                                    {"patch": 8, "augment": Augment(noise_sigma=0.03), "seed": 4},
                                    {"frames": 1, "augment": Augment()}])
def test_pack_and_sample_set_give_identical_tensors(data, kwargs):
    src, pack = data
    a, b = H5Dataset(pack, **kwargs), SampleSetDataset(src, **kwargs)
    for epoch in (0, 1):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        for i in range(len(a)):
            x, y = a[i], b[i]
            assert x["id"] == y["id"]
            assert torch.equal(x["blurry"], y["blurry"]) and torch.equal(x["sharp"], y["sharp"])


def test_sixteen_bit_pack_round_trip(tmp_path):
    src = make_set(tmp_path / "set", n=2, bits=16)
    pack_sets([src], tmp_path / "p.h5")
    ds, sset = open_dataset(tmp_path / "p.h5"), SampleSet(src)
    b, s = sset.read(1)
    assert torch.equal(ds[1]["blurry"], b) and torch.equal(ds[1]["sharp"], s)
    assert len(torch.unique(ds[1]["blurry"])) > 256  # really 16-bit levels


def test_crops_without_augment_are_centred_and_with_augment_seeded(data):
    _, pack = data
    full = H5Dataset(pack)[2]
    centred = H5Dataset(pack, patch=(4, 6))[2]
    assert torch.equal(centred["blurry"], full["blurry"][:, 4:8, 5:11])
    ds = H5Dataset(pack, patch=4, augment=Augment.none(), seed=1)
    first = ds[2]["blurry"]
    assert torch.equal(ds[2]["blurry"], first)  # same epoch, same crop
    crops = set()
    for epoch in range(12):
        ds.set_epoch(epoch)
        crops.add(ds[2]["blurry"].sum().item())
    assert len(crops) > 6  # the position changes with the epoch


def test_dataset_matches_augmenting_the_whole_sample(data):
    # training may preload whole samples and cut them itself: both paths must draw the same crops
    _, pack = data
    aug = Augment(noise_sigma=(0, 0.05))
    ds, whole = H5Dataset(pack, patch=8, augment=aug, seed=9), H5Dataset(pack)
    ds.set_epoch(3)
    for i in range(len(ds)):
        b, s = aug(whole[i]["blurry"], whole[i]["sharp"], sample_rng(9, 3, i), patch=8)
        assert torch.equal(ds[i]["blurry"], b) and torch.equal(ds[i]["sharp"], s)


def test_augmented_pack_samples_keep_the_mean_property(tmp_path):
    # blurry stored as the rounded mean of stored frames: alignment means the mean stays within rounding
    src = make_set(tmp_path / "set", n=3, size=(10, 10))
    pack_sets([src], tmp_path / "p.h5")
    ds = H5Dataset(tmp_path / "p.h5", patch=6, augment=Augment(), seed=2)
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(3):
            item = ds[i]
            assert (item["blurry"] - item["sharp"].mean(0)).abs().max() <= 1.01 / 255


def test_frame_selection():
    assert select_frames(7, None) is None and select_frames(7, 7) is None
    assert select_frames(7, 1) == [3]
    assert select_frames(7, 3) == [0, 3, 6]
    assert select_frames(9, 7) == [0, 1, 3, 4, 5, 7, 8]
    with pytest.raises(BlurtoolsError, match="has 7 sharp frames"):
        select_frames(7, 9)


def test_frames_argument_reads_the_chosen_frames(data):
    src, pack = data
    all_frames = H5Dataset(pack)[1]["sharp"]
    middle = H5Dataset(pack, frames=1)[1]["sharp"]
    three = SampleSetDataset(src, frames=3)[1]["sharp"]
    assert torch.equal(middle[0], all_frames[2])
    assert torch.equal(three, all_frames[[0, 2, 4]])


def test_two_dataloader_workers_read_the_same_pack(data):
    _, pack = data
    ds = H5Dataset(pack, patch=8, augment=Augment(), seed=0)
    _ = ds[0]  # the parent has a handle open before the workers fork: they must open their own
    expected = {ds[i]["id"]: ds[i]["sharp"] for i in range(len(ds))}
    loader = DataLoader(ds, batch_size=2, num_workers=2, shuffle=True)
    seen = {}
    for _ in range(2):
        for batch in loader:
            assert batch["blurry"].shape == (2, 3, 8, 8) and batch["sharp"].shape == (2, 5, 3, 8, 8)
            for k, sid in enumerate(batch["id"]):
                seen[sid] = batch["sharp"][k]
    assert seen.keys() == expected.keys()
    assert all(torch.equal(seen[k], expected[k]) for k in seen)


def test_dataset_pickles_without_its_file_handle(data):
    _, pack = data
    ds = H5Dataset(pack, as_tuple=True)
    b, s = ds[3]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._file is None
    b2, s2 = clone[3]
    assert torch.equal(b, b2) and torch.equal(s, s2)
    ds.close()
    assert torch.equal(ds[3][0], b)


def test_open_dataset_picks_by_path_type(data, tmp_path):
    src, pack = data
    assert isinstance(open_dataset(src), SampleSetDataset)
    assert isinstance(open_dataset(pack), H5Dataset)
    with pytest.raises(BlurtoolsError, match="no such file"):
        open_dataset(tmp_path / "missing.h5")
    (tmp_path / "folder").mkdir()
    with pytest.raises(BlurtoolsError, match="folder.*not a sample set"):
        open_dataset(tmp_path / "folder")


def test_read_time_errors_name_the_sample(tmp_path):
    src = make_set(tmp_path / "set", n=3)
    pack_sets([src], tmp_path / "p.h5")
    with pytest.raises(BlurtoolsError, match=r"sample s0: image 12x16 is smaller than the patch 20x20"):
        H5Dataset(tmp_path / "p.h5", patch=20)[0]
    (src / "sharp" / "s1" / "0003.png").unlink()
    ds = SampleSetDataset(src)
    assert ds[0]["id"] == "s0"
    with pytest.raises(BlurtoolsError, match=r"sample s1: missing file sharp/s1/0003\.png"):
        ds[1]
    (src / "blurry" / "s2.png").write_bytes(b"not an image")
    with pytest.raises(BlurtoolsError, match=r"sample s2.*s2\.png"):
        ds[2]
    with pytest.raises(IndexError):
        ds[3]
