"""DeblurGAN-v2 (MobileNet FPN): the released layout is recognised and computes the authors' inference."""

import pytest
import torch

from blurtools.errors import BlurtoolsError
from blurtools.models.deblurgan_v2 import DeblurGANv2, convert_official, detect_official

from _deblurgan_v2_official import authors_predict, official_file


def _net(top):
    args, state = convert_official(top)
    net = DeblurGANv2(**args)
    net.load_state_dict(state, strict=True)
    return net.eval()


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_released_layout_matches_the_authors_inference(norm):
    top = official_file(seed=1, norm=norm)
    assert detect_official(top)
    args, _ = convert_official(top)
    assert args == {"width": 64, "fpn_width": 128, "norm": norm}
    net = _net(top)
    image = torch.rand(1, 3, 70, 101, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = net(image)
    want = authors_predict(top, image)
    assert out.shape == image.shape
    assert (out - want).abs().max().item() < 2e-4
    assert (out - image).abs().mean().item() > 1e-2      # the residual does something


def test_padding_adds_a_block_even_on_multiples_of_32():
    top = official_file(seed=3)
    net = _net(top)
    image = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out = net(image)
    assert (out - authors_predict(top, image)).abs().max().item() < 2e-4


def test_each_image_is_normalised_by_itself():
    net = _net(official_file(seed=5))
    g = torch.Generator().manual_seed(6)
    a, b = torch.rand(1, 3, 40, 56, generator=g), torch.rand(1, 3, 40, 56, generator=g)
    with torch.no_grad():
        alone = net(a)
        batched = net(torch.cat([a, b]))[:1]
    assert (alone - batched).abs().max().item() < 2e-4    # float summation order only


def test_second_names_of_the_backbone_are_the_ones_the_authors_load():
    top = official_file(seed=7)
    sd = dict(top["model"])
    sd["module.fpn.features.3.conv.0.weight"] = torch.zeros_like(sd["module.fpn.features.3.conv.0.weight"])
    _, state = convert_official({"model": sd})
    assert torch.equal(state["fpn.enc1.1.conv.0.weight"], top["model"]["module.fpn.enc1.1.conv.0.weight"])
    assert not any(k.startswith("fpn.features.") or k.endswith("running_mean") for k in state)


def test_other_files_are_not_taken_for_it():
    assert not detect_official({"params": {"intro.weight": torch.zeros(1)}})
    assert not detect_official({"model": {"fpn.enc0.0.0.weight": torch.zeros(1)}})
    assert not detect_official({"model": "not a state dict"})


def test_bad_arguments_are_refused():
    with pytest.raises(BlurtoolsError):
        DeblurGANv2(norm="group")
    with pytest.raises(BlurtoolsError):
        DeblurGANv2(fpn_width=33)
