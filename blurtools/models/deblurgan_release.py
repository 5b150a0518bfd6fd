"""DeblurGAN's released generator (``latest_net_G.pth``) as a configuration of :class:`DeblurGANGenerator`.

O. Kupyn et al., "DeblurGAN: Blind Motion Deblurring Using Conditional Adversarial Networks", CVPR 2018.
The authors' file is a bare state dict (PyTorch 0.3, legacy format) of their 2018 ``ResnetGenerator``:
``model.N`` layers of one ``nn.Sequential`` (reflection padding + 7x7 conv, two stride-2 3x3 convs,
``n_blocks`` residual blocks ``model.N.conv_block.M`` of two 3x3 convolutions with instance norm and
dropout, two transposed convs, reflection padding + 7x7 conv, tanh), every conv with a bias, instance
norm without affine parameters (PyTorch 0.3 stored unused running statistics for it). With their
``--learn_residual`` the output is ``clamp(x + G(x), -1, 1)`` on RGB normalised to [-1, 1].

That is exactly :class:`blurtools.models.deblurgan.DeblurGANGenerator` with ``laplacian=False`` (its
layers are built in the same order: ``body.N`` for ``model.N``, ``block.M`` for ``conv_block.M``), whose
forward maps [0, 1] to [-1, 1] and back, reflect-pads the sides to a multiple of 4 (the authors' network
needs them) and crops back. The published weights were trained with dropout 0.5, which this
configuration records; it is off in eval mode, as a user wants (the authors' test script never called
``eval()``, leaving it on).
"""

from __future__ import annotations

import re
from typing import Any, Dict, Mapping, Tuple

import torch

from blurtools.errors import BlurtoolsError
from blurtools.models.files import drop_running_stats, strip_prefix

__all__ = ["is_deblurgan_2018", "convert_deblurgan_2018"]

_BLOCK = re.compile(r"^model\.(\d+)\.conv_block\.(\d+)\.weight$")


def _state(top: Mapping[str, Any]) -> Dict[str, Any]:
    return strip_prefix(top) if all(isinstance(v, torch.Tensor) for v in top.values()) else {}


def is_deblurgan_2018(top: Mapping[str, Any]) -> bool:
    """Whether a loaded file is the authors' bare ResnetGenerator state dict (RGB in, residual blocks)."""
    sd = _state(top)
    first = sd.get("model.1.weight")
    return (isinstance(first, torch.Tensor) and first.dim() == 4 and tuple(first.shape[1:]) == (3, 7, 7)
            and any(_BLOCK.match(k) for k in sd))


def convert_deblurgan_2018(top: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``latest_net_G.pth`` contents -> (model_args, state dict) for :class:`DeblurGANGenerator`.

    ``width`` (ngf) is read from the first convolution, ``n_blocks`` from the residual blocks present,
    ``dropout`` from where each block's second convolution sits (index 6 after a dropout layer, 5 without).
    """
    sd = drop_running_stats(_state(top))
    width = int(sd["model.1.weight"].shape[0])
    blocks = sorted({int(m.group(1)) for m in map(_BLOCK.match, sd) if m})
    seconds = {int(m.group(2)) for m in map(_BLOCK.match, sd) if m and m.group(2) != "1"}
    if blocks != list(range(10, 10 + len(blocks))) or len(seconds) != 1 or seconds - {5, 6}:
        raise BlurtoolsError(f"not DeblurGAN's 2018 ResnetGenerator: residual blocks at model.{blocks} with second "
                             f"convolutions at conv_block.{sorted(seconds)} (expected model.10... and conv_block.6 or .5)")
    args = {"width": width, "n_blocks": len(blocks), "dropout": 0.5 if seconds == {6} else 0.0, "laplacian": False}
    renamed = {k.replace("model.", "body.", 1).replace(".conv_block.", ".block."): v.float() for k, v in sd.items()}
    return args, renamed
