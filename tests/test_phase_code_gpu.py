"""The same sets on the GPU as on the CPU (skipped where there is no CUDA device)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _synth_data import invoke, moving, write_folder
from blurtools.io.images import read_array
from blurtools.ops.phase_psf import phase_psf_stack, sweep_psis
from blurtools.synth.phase_coding import CodedExposure

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_coded_exposure_cuda_matches_cpu():
    stack = phase_psf_stack(sweep_psis(-4, 10, 7))
    x = torch.rand(7, 3, 45, 77, generator=torch.Generator().manual_seed(0))
    cpu = CodedExposure(stack, "cpu")(x)
    gpu = CodedExposure(stack, "cuda")(x.cuda())
    assert gpu.is_cuda and (gpu.cpu() - cpu).abs().max() < 1e-5


@pytest.mark.parametrize("tool", ["blur-synth", "phase-code"])
def test_cli_cuda_matches_cpu(tmp_path, tool):
    src = write_folder(tmp_path / "f", moving(10, h=40, w=48))
    for dev in ("cpu", "cuda"):
        r = invoke(tool, src, "-o", tmp_path / dev, "--frames", "5", "--device", dev, "--quiet",
                   "--noise", "rsblur", "--saturation")
        assert r.returncode == 0, r.stderr
    for name in ("f_000000.png", "f_000005.png"):
        a = read_array(tmp_path / "cpu" / "blurry" / name).astype(int)
        b = read_array(tmp_path / "cuda" / "blurry" / name).astype(int)
        assert np.abs(a - b).max() <= 1
