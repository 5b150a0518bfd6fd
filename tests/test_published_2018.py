"""Jin et al. 2018 and DeblurGAN 2018 releases: files built in the authors' containers, detected, computed exactly."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _authors_2018 as ref  # noqa: E402
from _legacy_files import save_legacy  # noqa: E402
from blurtools.errors import BlurtoolsError  # noqa: E402
from blurtools.models.deblurgan import DeblurGANGenerator  # noqa: E402
from blurtools.models.deblurgan_release import convert_deblurgan_2018, is_deblurgan_2018  # noqa: E402
from blurtools.models.files import read_weights_file  # noqa: E402
from blurtools.models.jin2018 import Jin2018Centre  # noqa: E402
from blurtools.models.jin2018_release import convert_centre, load_cascade, refuse_pair, release_part  # noqa: E402


@pytest.fixture(scope="module")
def jin_release(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jin") / "models"
    return folder, ref.write_jin_release(folder)


def test_each_released_file_is_recognised_by_its_contents(jin_release, tmp_path):
    folder, _ = jin_release
    parts = [release_part(read_weights_file(folder / n)) for n in ref.JIN_FILES]
    assert parts == ["centre", "pair35", "pair26", "pair17"]
    assert release_part(read_weights_file(save_legacy({"w": torch.ones(1)}, tmp_path / "x.pth"))) is None
    with pytest.raises(BlurtoolsError, match="folder holding the four"):
        refuse_pair(read_weights_file(folder / "F35_N8.pth"))


def test_centre_network_matches_the_authors_formula(jin_release):
    folder, states = jin_release
    args, sd = convert_centre(read_weights_file(folder / "center_v3.pth"))
    net = Jin2018Centre(**args)
    net.load_state_dict(sd)
    net.eval()
    y = torch.rand(1, 3, 40, 60, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got, want = net(y), ref.jin_centre_ref(states[0], y)
    assert (got - want).abs().max() < 1e-4


def test_cascade_from_the_folder_gives_the_authors_frames_in_order(jin_release):
    folder, states = jin_release
    cascade, files = load_cascade([folder])
    assert {p: f.name for p, f in files.items()} == dict(zip(("centre", "pair35", "pair26", "pair17"), ref.JIN_FILES))
    y = torch.rand(1, 3, 40, 60, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got, want = cascade(y), ref.jin_cascade_ref(states, y)
    assert got.shape == (1, 7, 3, 40, 60)
    assert (got - want).abs().max() < 2e-4
    # the frames are distinct and in the authors' order: frame i is closest to reference frame i
    d = torch.cdist(got[0].flatten(1), want[0].flatten(1))
    assert torch.equal(d.argmin(1), torch.arange(7))


def test_cascade_from_four_paths_any_order_and_any_size(jin_release):
    folder, states = jin_release
    cascade, _ = load_cascade([folder / n for n in reversed(ref.JIN_FILES)])
    y = torch.rand(1, 3, 43, 57)
    with torch.no_grad():
        out = cascade(y)
    assert out.shape == (1, 7, 3, 43, 57) and torch.isfinite(out).all()


def test_cascade_errors_name_what_is_missing(jin_release, tmp_path):
    folder, _ = jin_release
    with pytest.raises(BlurtoolsError, match=r"missing .*1/7 pair network \(F17_N9"):
        load_cascade([folder / n for n in ref.JIN_FILES[:3]])
    with pytest.raises(BlurtoolsError, match="given twice"):
        load_cascade([folder / ref.JIN_FILES[0], folder / ref.JIN_FILES[0]])
    other = save_legacy({"w": torch.ones(1)}, tmp_path / "other.pth")
    with pytest.raises(BlurtoolsError, match="none of the four"):
        load_cascade([other, *[folder / n for n in ref.JIN_FILES]])


def test_a_file_that_does_not_fit_is_refused_with_the_keys(jin_release, tmp_path):
    _, states = jin_release
    sd = dict(states[0])
    sd["conv3.weight"] = torch.zeros(3, 32, 3, 3)
    del sd["fuse1.0.conv2.weight"]
    top = read_weights_file(save_legacy({"state_dict_G": sd}, tmp_path / "bad.pth"))
    with pytest.raises(BlurtoolsError, match=r"1 missing \(e.g. fuse1.0.conv2.weight\).*conv3.weight"):
        convert_centre(top)


def test_deblurgan_release_is_a_configuration_of_the_generator(tmp_path):
    sd = ref.write_deblurgan_release(tmp_path / "latest_net_G.pth")
    top = read_weights_file(tmp_path / "latest_net_G.pth")
    assert is_deblurgan_2018(top)
    assert not is_deblurgan_2018({"body.1.weight": torch.ones(64, 4, 7, 7)})
    args, state = convert_deblurgan_2018(top)
    assert args == {"width": 64, "n_blocks": 9, "dropout": 0.5, "laplacian": False}
    net = DeblurGANGenerator(**args)
    net.load_state_dict(state)
    net.eval()
    x = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        got, want = net(x), ref.deblurgan_ref(sd, x)
    assert (got - want).abs().max() < 1e-5
    with torch.no_grad():                       # any size: padded to a multiple of 4 and cropped back
        assert net(torch.rand(1, 3, 30, 45)).shape == (1, 3, 30, 45)
