"""Published checkpoints through the registry and `blurtools deblur`: NAFNet ({'params': ...}), Carbajal et al.'s
TwoHeads.pkl (bare state dict, --save-kernels) and spandrel's other deblurrers, in their authors' containers
with seeded random values, 16-bit PNG in and out, and the errors."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from blurtools.errors import BlurtoolsError
from blurtools.io.images import array_to_tensor, read_array, write_image
from blurtools.models import load
from blurtools.models.nafnet import NAFNet
from blurtools.models.two_heads import TwoHeadsNet

NAF = dict(width=4, enc_blocks=[1, 1, 1, 2], middle_blocks=1, dec_blocks=[1, 1, 1, 1])


def run(*args):
    from typer.testing import CliRunner

    from blurtools.cli.main import app

    res = CliRunner().invoke(app, ["deblur", *map(str, args)])
    res.returncode = res.exit_code
    return res


def _seeded(module, seed, scale):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return module.eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("published")
    naf = _seeded(NAFNet(**NAF), 1, 0.2)
    torch.save({"params": {f"module.{k[4:]}": v for k, v in naf.state_dict().items()}}, root / "NAFNet-GoPro-width4.pth")
    heads = _seeded(TwoHeadsNet(basis=4, width=2), 2, 0.3)
    torch.save(heads.state_dict(), root / "TwoHeads.pkl")
    g = torch.Generator().manual_seed(3)
    image = F.interpolate(torch.rand(1, 3, 6, 7, generator=g), size=(40, 50), mode="bilinear")[0]
    write_image(root / "in16.png", image, bits=16)
    return root, naf, heads


def _read16(path):
    a = read_array(path)
    assert a.dtype == np.uint16
    return array_to_tensor(a)


def test_registry_detects_the_release_containers(files, tmp_path):
    root, naf, heads = files
    a = load(root / "NAFNet-GoPro-width4.pth", kind="image")
    assert a.layout == "nafnet-release" and a.spec.name == "nafnet" and a.args["width"] == 4
    assert a.args["tlc_base"] is None                      # not the deblurring blocks: the plain network
    b = load(root / "TwoHeads.pkl", kind="image")
    assert b.layout == "two-heads-release" and b.args == {**b.args, "basis": 4, "width": 2, "kernel_size": 33}
    bare = {k[4:]: v for k, v in naf.state_dict().items()}
    torch.save(bare, tmp_path / "bare.pth")
    assert load(tmp_path / "bare.pth").layout == "nafnet-release"
    with pytest.raises(BlurtoolsError, match="is an image model"):
        load(root / "TwoHeads.pkl", kind="video")


def test_spandrel_recognises_fftformer(tmp_path):
    from spandrel.architectures.FFTformer import FFTformer

    net = _seeded(FFTformer(dim=8, num_blocks=[1, 1, 1], num_refinement_blocks=1), 4, 0.1)
    torch.save({"params": net.state_dict()}, tmp_path / "fftformer.pth")
    loaded = load(tmp_path / "fftformer.pth", kind="image")
    assert loaded.layout == "spandrel" and loaded.args["arch"] == "FFTformer" and loaded.module.pad_multiple == 32
    x = torch.rand(1, 3, 40, 36)
    with torch.no_grad():
        want = net(F.pad(x, (0, 28, 0, 24), mode="reflect"))[..., :40, :36]
        assert torch.allclose(loaded.module(x), want, atol=1e-5)


def test_nafnet_16_bit_in_and_out_is_the_network_alone(files, tmp_path):
    root, naf, _ = files
    res = run(root / "in16.png", "-o", tmp_path / "out.png", "--weights", root / "NAFNet-GoPro-width4.pth",
              "--device", "cpu")
    assert res.returncode == 0, res.output
    got = _read16(tmp_path / "out.png")
    x = _read16(root / "in16.png")
    with torch.no_grad():
        want = naf(x[None])[0].clamp(0, 1)
    assert (got - want).abs().max() < 2e-5                    # 16-bit rounding only
    record = json.loads(_png_text(tmp_path / "out.png")["blurtools"])
    assert record["model"]["layout"] == "nafnet-release" and record["options"]["refine"] == "none"
    assert "refine" not in record["model"]


def test_refine_classical_only_when_asked(files, tmp_path):
    root, _, _ = files
    res = run(root / "in16.png", "-o", tmp_path / "out.png", "--weights", root / "NAFNet-GoPro-width4.pth",
              "--refine", "classical", "--device", "cpu")
    assert res.returncode == 0, res.output
    record = json.loads(_png_text(tmp_path / "out.png")["blurtools"])
    assert record["options"]["refine"] == "classical" and record["model"]["refine"]["method"] == "classical"


def test_two_heads_restores_and_saves_kernels(files, tmp_path):
    root, _, heads = files
    res = run(root / "in16.png", "-o", tmp_path / "out", "--weights", root / "TwoHeads.pkl",
              "--save-kernels", tmp_path / "k", "--device", "cpu")
    assert res.returncode == 0, res.output
    got = _read16(tmp_path / "out" / "in16.png")
    x = _read16(root / "in16.png")[None]
    with torch.no_grad():
        kernels, mixing = heads.estimate(x)
        want = heads(x)[0].clamp(0, 1)
    assert (got - want).abs().max() < 2e-5
    k = np.load(tmp_path / "k" / "in16.kernels.npy")
    m = np.load(tmp_path / "k" / "in16.mixing.npy")
    assert k.shape == (4, 33, 33) and m.shape == (4, 40, 50) and k.dtype == np.float32
    assert np.allclose(k.sum((1, 2)), 1, atol=1e-5) and np.allclose(m.sum(0), 1, atol=1e-5)
    assert np.abs(k - kernels[0].numpy()).max() < 1e-6 and np.abs(m - mixing[0].numpy()).max() < 1e-6
    doc = json.loads((tmp_path / "k" / "in16.kernels.json").read_text())
    assert doc["orientation"] == "correlation" and doc["model"]["layout"] == "two-heads-release"
    assert doc["kernels"]["shape"] == [4, 33, 33] and doc["tool"] == "blurtools deblur"
    picture = read_array(tmp_path / "k" / "in16.kernels.png")
    assert picture.ndim == 3 and picture.shape[2] == 3 and picture.std() > 0


def test_save_kernels_needs_a_kernel_basis_network(files, tmp_path):
    root, _, _ = files
    res = run(root / "in16.png", "-o", tmp_path / "out.png", "--weights", root / "NAFNet-GoPro-width4.pth",
              "--save-kernels", tmp_path / "k")
    assert res.returncode == 2 and "estimates no kernel basis" in res.output
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "k").exists()


def test_unknown_file_lists_the_known_layouts(tmp_path):
    torch.save({"params": {"conv.weight": torch.zeros(3, 3, 3, 3)}}, tmp_path / "mystery.pth")
    write_image(tmp_path / "a.png", torch.rand(3, 40, 40))
    res = run(tmp_path / "a.png", "-o", tmp_path / "o.png", "--weights", tmp_path / "mystery.pth")
    assert res.returncode == 1
    for name in ("mystery.pth", "conv.weight", "nafnet-release", "two-heads-release", "spandrel"):
        assert name in res.output


def _png_text(path):
    from PIL import Image

    with Image.open(path) as im:
        return dict(im.text)


def test_save_kernels_of_blurtools_kernel_basis_network(tmp_path):
    from blurtools.models.kernel_basis import KernelBasisNet
    from blurtools.train.checkpoint import save_checkpoint, weights_record

    net = KernelBasisNet(basis=3, kernel_size=9, width=4, depth=2, rl_iters=2)
    save_checkpoint(tmp_path / "kb.pt", weights_record(net, "kernel-basis", {}, step=1))
    write_image(tmp_path / "a.png", torch.rand(3, 36, 44))
    res = run(tmp_path / "a.png", "-o", tmp_path / "out", "--weights", tmp_path / "kb.pt", "--refine", "none",
              "--save-kernels", tmp_path / "k")
    assert res.returncode == 0, res.output
    assert np.load(tmp_path / "k" / "a.kernels.npy").shape == (3, 9, 9)
    assert np.load(tmp_path / "k" / "a.mixing.npy").shape == (3, 36, 44)
    assert json.loads((tmp_path / "k" / "a.kernels.json").read_text())["orientation"] == "convolution"
