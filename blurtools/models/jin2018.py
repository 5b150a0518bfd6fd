"""The networks of Jin et al.'s released cascade, with the authors' layer names, to run their published weights.

M. Jin, G. Meishvili, P. Favaro, "Learning to Extract a Video Sequence from a Single Motion-Blurred
Image", CVPR 2018. The authors released four networks (PyTorch 0.3): the centre frame x4 from the blurry
image y, then the pairs (x3, x5), (x2, x6), (x1, x7). Layer names, shapes and wiring below follow their
public code, so their ``state_dict_G`` tensors load unchanged (``blurtools/models/jin.py`` is this
project's own trainable variant of the method, with its own layout).

Every network treats the three colours one at a time with shared weights (here: folded into the batch,
which is the same function since every operation is per sample and per channel) and works at a reduced
resolution after a space-to-depth rearrangement:

* blocks: pre-activation residual blocks ``x + conv1(a1(x)) + conv4(a4(conv2(a2(x))))`` with
  ``a = ReLU(InstanceNorm(affine))``, a 1x1 ``conv1`` and two 3x3 convolutions (dilated in some blocks);
  fuse blocks ``conv1(a1(x)) + conv2(a2(x))`` (1x1 and 3x3, no skip) bring features down to the
  space-to-depth channels. No convolution has a bias.
* centre network (``center_v3.pth``): space-to-depth by 4 (16 channels), 5x5 conv to 144 features, four
  groups of three blocks (plain; dilations (1,2), (2,4), (4,8); (8,4), (4,2), (2,1); plain), each group's
  output fused to 16 channels, the four summed with the rearranged input, depth-to-space, then at full
  resolution over the three colours: 3x3 conv to 64, one block, a, 3x3 conv to 3, plus y.
* pair networks: space-to-depth by 5 (25 channels) of y and of two reference frames s1, s2; 5x5 convs of
  y (64 features), s1 (32) and s2 (32), concatenated; groups of n plain blocks, four dilated blocks
  ((1,2), (4,8), (8,4), (2,1)), n plain blocks (n = 4 in the 3/5 networks, 2 in the others), each group
  fused to 25 channels and summed with the rearranged s2; depth-to-space; 3x3 conv to 32, one fuse
  block, a, 3x3 conv to 3. The result is a residual over a reference frame:

      x3 = N3(y, x4, x4) + x4;     x5 = N5(y, x3, x4) + x4            (F35_N8.pth: two networks)
      x2 = N26(y, x4, x3) + x3;    x6 = N26(y, x4, x5) + x5           (F26_N9_from_F35_N8.pth)
      x1 = N17(y, x3, x2) + x2;    x7 = N17(y, x5, x6) + x6           (F17_N9_from_F26_N9_from_F35_N8.pth)

Values: RGB in [0, 1], no normalisation; frames are passed on unclamped (as the authors' demo does) and
the cascade returns them unclamped; writers clamp. Instance norm makes every output pixel depend on
statistics of the whole image (``receptive_field`` None): tiled windows give a slightly different result,
so blurtools runs these models on whole images unless told otherwise. Sides are reflect-padded to a
multiple of 4 (centre) or 20 (cascade) and cropped back; the authors' demo instead crops the image to
multiples of 20.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from blurtools.errors import BlurtoolsError
from blurtools.models.contract import Model
from blurtools.models.jin import FuseBlock, per_channel_s2d
from blurtools.ops.geometry import pad_to_multiple

__all__ = ["Jin2018Centre", "Jin2018Cascade", "PairNet", "FIRST_PAIR_BLOCKS", "PAIR_BLOCKS"]

FIRST_PAIR_BLOCKS = 4      # plain blocks per side group in the 3/5 networks (N8: 4 + 4 dilated + 4)
PAIR_BLOCKS = 2            # in the 2/6 and 1/7 networks (N9: 2 + 4 dilated + 2)
_CENTRE_DILATIONS = (((1, 2), (2, 4), (4, 8)), ((8, 4), (4, 2), (2, 1)))
_PAIR_DILATIONS = ((1, 2), (4, 8), (8, 4), (2, 1))


def _act(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return F.relu(norm(x))


class _Block(nn.Module):
    """``x + conv1(a1(x)) + conv4(a4(conv2(a2(x))))``; keys norm1, norm2, norm4, conv1, conv2, conv4.

    The same function as :class:`blurtools.models.jin._ResBlock`, under the authors' names (``norm4``,
    ``conv4`` where that one has ``norm3``, ``conv3``), so that their files load key for key.
    """

    def __init__(self, ch: int, d2: int = 1, d4: int = 1):
        super().__init__()
        self.norm1 = nn.InstanceNorm2d(ch, affine=True)
        self.norm2 = nn.InstanceNorm2d(ch, affine=True)
        self.norm4 = nn.InstanceNorm2d(ch, affine=True)
        self.conv1 = nn.Conv2d(ch, ch, 1, bias=False)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=d2, dilation=d2, bias=False)
        self.conv4 = nn.Conv2d(ch, ch, 3, padding=d4, dilation=d4, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(_act(self.norm1, x)) + self.conv4(_act(self.norm4, self.conv2(_act(self.norm2, x))))


def _plain(ch: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[_Block(ch) for _ in range(n)])


def _dilated(ch: int, dilations: Sequence[Tuple[int, int]]) -> nn.Sequential:
    return nn.Sequential(*[_Block(ch, d2, d4) for d2, d4 in dilations])


def _d2s(x: torch.Tensor, r: int) -> torch.Tensor:
    """(3B, r*r, h, w) -> (B, 3, h*r, w*r): the inverse of :func:`per_channel_s2d`."""
    y = F.pixel_shuffle(x, r)
    return y.reshape(-1, 3, *y.shape[-2:])


def _check(name: str, x: torch.Tensor) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise BlurtoolsError(f"{name}: expected (B, 3, H, W) RGB, got {tuple(x.shape)}")


class Jin2018Centre(Model):
    """The released centre-frame network (``center_v3.pth``): blurry image -> the middle sharp frame x4.

    ``forward(blurry)``: (B, 3, H, W) RGB in [0, 1], any H, W (reflect-padded to a multiple of 4 inside,
    cropped back) -> (B, 3, H, W), about [0, 1], unclamped.
    """

    kind = "image"
    frames = None
    pad_multiple = 4
    receptive_field = None    # instance norm: every output pixel depends on the whole input

    def __init__(self) -> None:
        super().__init__()
        self.conv1_B = nn.Conv2d(16, 144, 5, padding=2, bias=False)
        self.LocalGrad1 = _plain(144, 3)
        self.LocalGrad2 = _dilated(144, _CENTRE_DILATIONS[0])
        self.LocalGrad3 = _dilated(144, _CENTRE_DILATIONS[1])
        self.LocalGrad4 = _plain(144, 3)
        for i in range(1, 5):
            setattr(self, f"fuse{i}", nn.Sequential(FuseBlock(144, 16)))
        self.conv2 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.GlobalGrad = _plain(64, 1)
        self.norm3 = nn.InstanceNorm2d(64, affine=True)
        self.conv3 = nn.Conv2d(64, 3, 3, padding=1, bias=False)

    def centre(self, blurry: torch.Tensor) -> torch.Tensor:
        """The network on sides that are multiples of 4 (no padding): (B, 3, H, W) -> (B, 3, H, W)."""
        y0 = per_channel_s2d(blurry, 4)
        f1 = self.LocalGrad1(self.conv1_B(y0))
        f2 = self.LocalGrad2(f1)
        f3 = self.LocalGrad3(f2)
        f4 = self.LocalGrad4(f3)
        fused = self.fuse1(f1) + self.fuse2(f2) + self.fuse3(f3) + self.fuse4(f4)
        out = self.GlobalGrad(self.conv2(_d2s(fused + y0, 4)))
        return self.conv3(_act(self.norm3, out)) + blurry

    def forward(self, blurry: torch.Tensor) -> torch.Tensor:
        _check("Jin2018Centre", blurry)
        h, w = blurry.shape[-2:]
        return self.centre(pad_to_multiple(blurry, self.pad_multiple)[0])[..., :h, :w]


class PairNet(nn.Module):
    """One frame network of the pairs (the authors' N8_IN / N9_IN): the residual of a frame over its reference.

    Args:
        blocks: plain blocks before and after the four dilated ones (4: N8_IN, 2: N9_IN).

    ``forward(y0, s1, s2)``: the space-to-depth (by 5) blurry image and reference frames, each
    (3B, 25, H/5, W/5) -> (B, 3, H, W) residual (added by the caller to its reference frame).
    """

    def __init__(self, blocks: int):
        super().__init__()
        self.conv1_B = nn.Conv2d(25, 64, 5, padding=2, bias=False)
        self.conv1_S1 = nn.Conv2d(25, 32, 5, padding=2, bias=False)
        self.conv1_S2 = nn.Conv2d(25, 32, 5, padding=2, bias=False)
        self.LocalGrad1 = _plain(128, blocks)
        self.LocalGrad2 = _dilated(128, _PAIR_DILATIONS)
        self.LocalGrad3 = _plain(128, blocks)
        for i in range(1, 4):
            setattr(self, f"fuse{i}", nn.Sequential(FuseBlock(128, 25)))
        self.conv2 = nn.Conv2d(3, 32, 3, padding=1, bias=False)
        self.GlobalGrad = nn.Sequential(FuseBlock(32, 32))
        self.norm3 = nn.InstanceNorm2d(32, affine=True)
        self.conv3 = nn.Conv2d(32, 3, 3, padding=1, bias=False)

    def forward(self, y0: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        f1 = self.LocalGrad1(torch.cat([self.conv1_B(y0), self.conv1_S1(s1), self.conv1_S2(s2)], 1))
        f2 = self.LocalGrad2(f1)
        f3 = self.LocalGrad3(f2)
        fused = self.fuse1(f1) + self.fuse2(f2) + self.fuse3(f3)
        out = self.GlobalGrad(self.conv2(_d2s(fused + s2, 5)))
        return self.conv3(_act(self.norm3, out))


class _FirstPair(nn.Module):
    """``F35_N8.pth``: two networks, generateFrame3 and generateFrame5."""

    def __init__(self) -> None:
        super().__init__()
        self.generateFrame3 = PairNet(FIRST_PAIR_BLOCKS)
        self.generateFrame5 = PairNet(FIRST_PAIR_BLOCKS)


class _OuterPair(nn.Module):
    """``F26_N9...pth`` / ``F17_N9...pth``: one network used on both sides, under the authors' name."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.net_name = name
        self.add_module(name, PairNet(PAIR_BLOCKS))

    def net(self) -> PairNet:
        return getattr(self, self.net_name)


class Jin2018Cascade(Model):
    """The released cascade: blurry image -> the seven frames x1 ... x7, in the authors' order.

    Submodules ``centre`` (``center_v3.pth``), ``pair35`` (``F35_N8.pth``), ``pair26``
    (``F26_N9_from_F35_N8.pth``), ``pair17`` (``F17_N9_from_F26_N9_from_F35_N8.pth``); below each, the
    authors' own keys.

    ``forward(blurry)``: (B, 3, H, W) RGB in [0, 1], any H, W (reflect-padded to a multiple of 20 inside,
    cropped back) -> (B, 7, 3, H, W), frames x1 ... x7 (x4 the middle), about [0, 1], unclamped.
    """

    kind = "video"
    frames = 7
    pad_multiple = 20         # space-to-depth by 4 (centre) and by 5 (pairs)
    receptive_field = None    # instance norm: every output pixel depends on the whole input

    def __init__(self) -> None:
        super().__init__()
        self.centre = Jin2018Centre()
        self.pair35 = _FirstPair()
        self.pair26 = _OuterPair("generateFrame2_6")
        self.pair17 = _OuterPair("generateFrame1_7")

    def cascade(self, y: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """x1 ... x7 of ``y`` (B, 3, H, W) with sides multiples of 20, each (B, 3, H, W)."""
        x4 = self.centre.centre(y)
        y0, r4 = per_channel_s2d(y, 5), per_channel_s2d(x4, 5)
        x3 = self.pair35.generateFrame3(y0, r4, r4) + x4
        r3 = per_channel_s2d(x3, 5)
        x5 = self.pair35.generateFrame5(y0, r3, r4) + x4
        r5 = per_channel_s2d(x5, 5)
        n26 = self.pair26.net()
        x2 = n26(y0, r4, r3) + x3
        x6 = n26(y0, r4, r5) + x5
        n17 = self.pair17.net()
        x1 = n17(y0, r3, per_channel_s2d(x2, 5)) + x2
        x7 = n17(y0, r5, per_channel_s2d(x6, 5)) + x6
        return x1, x2, x3, x4, x5, x6, x7

    def forward(self, blurry: torch.Tensor) -> torch.Tensor:
        _check("Jin2018Cascade", blurry)
        h, w = blurry.shape[-2:]
        frames = self.cascade(pad_to_multiple(blurry, self.pad_multiple)[0])
        return torch.stack(frames, 1)[..., :h, :w]
