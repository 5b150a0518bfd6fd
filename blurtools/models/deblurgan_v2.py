"""DeblurGAN-v2 generator with the MobileNet-v2 feature pyramid (the released ``fpn_mobilenet.h5``).

Citation: O. Kupyn, T. Martyniuk, J. Wu, Z. Wang, "DeblurGAN-v2: Deblurring (Orders-of-Magnitude) Faster
and Better", ICCV 2019. The MobileNet backbone: M. Sandler et al., "MobileNetV2: Inverted Residuals and
Linear Bottlenecks", CVPR 2018. Published GoPro figure of the MobileNet generator: 28.17 dB PSNR.

Network: a MobileNet-v2 backbone (a 3x3 stride-2 stem and the inverted residual blocks up to the
160-channel stage) gives five encoder maps at 1/2 ... 1/32; 1x1 lateral convolutions and a top-down
pathway (nearest 2x upsampling, addition, 3x3 conv + norm + ReLU) give four pyramid maps; four heads
(two 3x3 convs with ReLU) are upsampled to 1/4 and concatenated, smoothed, upsampled, added to the 1/2
lateral map, smoothed again, upsampled to full size, and a last 3x3 conv gives the residual:
``out = clamp(x + tanh(residual), -1, 1)`` in the [-1, 1] range the network works in.

Normalisation statistics are the image's own. The authors run the released generator in training mode
("GAN inference should be in train mode to use actual stats in norm layers"), one image at a time, so
every batch-norm layer of the backbone normalises with the statistics of the image itself and the
pyramid's instance-norm layers do too; the stored running statistics are never used. This class computes
exactly that, image by image, whatever the batch size (a user wants an image's result not to depend on
the other images in its batch) and without the authors' side effect of updating running statistics.
Because statistics are taken over the whole (padded) image, every output pixel depends on every input
pixel: tiling gives a different (close, not equal) result, so whole images reproduce the authors' output.

Padding (the authors' predictor): the input, already in [-1, 1], is padded with zeros at the right and
bottom to ``(h // 32 + 1) * 32`` rows and ``(w // 32 + 1) * 32`` columns (always at least one row and one
column, even when a side already is a multiple of 32), and the output is cropped back.
"""

from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from blurtools.errors import BlurtoolsError
from blurtools.models.contract import Model

# MobileNet-v2 inverted residual stages the pyramid uses: (expansion t, channels c, blocks n, stride s).
# The 320-channel stage and the 1280-channel head of the classifier are not part of the generator.
_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2))
# which backbone blocks (0 = the stem) make each encoder level enc0 ... enc4 (1/2, 1/4, 1/8, 1/16, 1/32)
ENCODER_SLICES = ((0, 2), (2, 4), (4, 7), (7, 11), (11, 16))
_LATERAL_IN = (16, 24, 32, 64, 160)
NORMS = ("instance", "batch")
BLOCK = 32


class ImageNorm(nn.Module):
    """Normalisation with each image's own per-channel statistics, optionally with a learned affine map.

    Equals ``nn.BatchNorm2d`` in training mode on a batch of one image (biased variance, eps 1e-5) and
    ``nn.InstanceNorm2d``; running statistics are neither kept nor used.

    ``forward(x)``: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, affine: bool, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        if affine:
            self.weight = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Means over rows of means over columns, of the centred values: ONNX runtimes sum a whole plane in
        # one float32 pass (and InstanceNormalization uses E[x^2] - E[x]^2), which loses ~1e-4 on a large
        # image; two short reductions keep the exported graph as exact as PyTorch.
        centred = x - x.mean(dim=3, keepdim=True).mean(dim=2, keepdim=True)
        var = centred.square().mean(dim=3, keepdim=True).mean(dim=2, keepdim=True)
        y = centred * torch.rsqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return y


def _conv_norm(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> List[nn.Module]:
    layers: List[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), ImageNorm(cout, True)]
    if act:
        layers.append(nn.ReLU6())
    return layers


class InvertedResidual(nn.Module):
    """MobileNet-v2 block: 1x1 expansion (skipped when t = 1), 3x3 depthwise, 1x1 linear projection,
    with an identity skip when the stride is 1 and the channels stay the same."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.skip = stride == 1 and cin == cout
        layers = _conv_norm(cin, hidden, 1) if expand != 1 else []
        layers += _conv_norm(hidden, hidden, 3, stride, groups=hidden) + _conv_norm(hidden, cout, 1, act=False)
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.skip else self.conv(x)


def _backbone() -> List[nn.Module]:
    blocks: List[nn.Module] = [nn.Sequential(*_conv_norm(3, 32, 3, 2))]
    cin = 32
    for t, c, n, s in _STAGES:
        for i in range(n):
            blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    return blocks


def _conv_norm_relu(cin: int, cout: int, norm: str) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), ImageNorm(cout, norm == "batch"), nn.ReLU())


class _Head(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int):
        super().__init__()
        self.block0 = nn.Conv2d(cin, mid, 3, padding=1, bias=False)
        self.block1 = nn.Conv2d(mid, cout, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.block1(F.relu(self.block0(x))))


class _Pyramid(nn.Module):
    """The backbone and the top-down pathway: image (B, 3, H, W) -> the 1/2 lateral map and four maps."""

    def __init__(self, fpn_width: int, norm: str):
        super().__init__()
        blocks = _backbone()
        for level, (a, b) in enumerate(ENCODER_SLICES):
            setattr(self, f"enc{level}", nn.Sequential(*blocks[a:b]))
        for i in (1, 2, 3):
            setattr(self, f"td{i}", _conv_norm_relu(fpn_width, fpn_width, norm))
        for level, cin in enumerate(_LATERAL_IN):
            setattr(self, f"lateral{level}", nn.Conv2d(cin, fpn_width // 2 if level == 0 else fpn_width, 1, bias=False))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        enc = []
        for level in range(5):
            x = getattr(self, f"enc{level}")(x)
            enc.append(x)
        lat = [getattr(self, f"lateral{level}")(e) for level, e in enumerate(enc)]
        maps = [lat[4]]
        for i, level in enumerate((3, 2, 1), start=1):
            maps.append(getattr(self, f"td{i}")(lat[level] + F.interpolate(maps[-1], scale_factor=2, mode="nearest")))
        return lat[0], maps[3], maps[2], maps[1], maps[0]


class DeblurGANv2(Model):
    """DeblurGAN-v2 generator, MobileNet-v2 FPN backbone.

    Args:
        width: channels of the segmentation heads (``num_filters``, 64).
        fpn_width: channels of the pyramid maps (``num_filters_fpn``, 128).
        norm: the pyramid's norm layers: "instance" (no learned parameters, the released file) or
            "batch" (per-image statistics with a learned affine map). The backbone always has affine norms.

    ``forward(blurry)``: (B, 3, H, W) in [0, 1], any H, W -> (B, 3, H, W) in [0, 1]. Works in [-1, 1]
    (``2 x - 1``) with the authors' zero padding to ``(side // 32 + 1) * 32``; each image is normalised
    with its own statistics, so the result of an image does not depend on its batch.

    Example::

        net = DeblurGANv2(width=16, fpn_width=32)
        out = net(torch.rand(2, 3, 45, 70))      # (2, 3, 45, 70)
    """

    kind = "image"
    frames = None
    # the network pads itself by the authors' rule; windows need no padding from the caller
    pad_multiple = 1
    # None: every output pixel depends on the whole image through the per-image normalisation statistics
    receptive_field = None

    def __init__(self, width: int = 64, fpn_width: int = 128, norm: str = "instance"):
        super().__init__()
        if norm not in NORMS:
            raise BlurtoolsError(f"DeblurGANv2: norm must be one of {', '.join(NORMS)}, got {norm!r}")
        if width < 2 or fpn_width < 2 or fpn_width % 2:
            raise BlurtoolsError(f"DeblurGANv2: need width >= 2 and an even fpn_width >= 2 (got {width}, {fpn_width})")
        self.fpn = _Pyramid(fpn_width, norm)
        for i in (1, 2, 3, 4):
            setattr(self, f"head{i}", _Head(fpn_width, width, width))
        self.smooth = _conv_norm_relu(4 * width, width, norm)
        self.smooth2 = _conv_norm_relu(width, width // 2, norm)
        self.final = nn.Conv2d(width // 2, 3, 3, padding=1)

    def residual_net(self, x: torch.Tensor) -> torch.Tensor:
        """The authors' generator on (B, 3, H, W) in [-1, 1] with H, W multiples of 32 -> [-1, 1]."""
        map0, map1, map2, map3, map4 = self.fpn(x)
        heads = [F.interpolate(self.head4(map4), scale_factor=8, mode="nearest"),
                 F.interpolate(self.head3(map3), scale_factor=4, mode="nearest"),
                 F.interpolate(self.head2(map2), scale_factor=2, mode="nearest"),
                 self.head1(map1)]
        smoothed = F.interpolate(self.smooth(torch.cat(heads, dim=1)), scale_factor=2, mode="nearest")
        smoothed = F.interpolate(self.smooth2(smoothed + map0), scale_factor=2, mode="nearest")
        return torch.clamp(torch.tanh(self.final(smoothed)) + x, -1, 1)

    def forward(self, blurry: torch.Tensor) -> torch.Tensor:
        if blurry.dim() != 4 or blurry.shape[1] != 3:
            raise BlurtoolsError(f"DeblurGANv2: expected blurry (B, 3, H, W), got {tuple(blurry.shape)}")
        h, w = blurry.shape[-2:]
        x = F.pad(blurry * 2 - 1, (0, (w // BLOCK + 1) * BLOCK - w, 0, (h // BLOCK + 1) * BLOCK - h))
        return (self.residual_net(x)[..., :h, :w] + 1) / 2


# ----------------------------------------------------------------------- the authors' released file

_MODULE = "module."
_UNUSED = ("running_mean", "running_var", "num_batches_tracked")


def _bare(sd: "dict") -> "dict":
    return {k[len(_MODULE):] if k.startswith(_MODULE) else k: v for k, v in sd.items()}


DESCRIBE = ("DeblurGAN-v2 release (fpn_mobilenet.h5, a torch file): {'model': state_dict} with 'module.' keys, "
            "the MobileNet backbone stored under two names")


def detect_official(top: "dict") -> bool:
    """Does the loaded file look like the authors' ``fpn_mobilenet.h5`` (``{'model': state_dict}``)?"""
    sd = top.get("model") if isinstance(top, dict) else None
    if not isinstance(sd, dict):
        return False
    keys = _bare(sd)
    return all(k in keys for k in ("fpn.enc0.0.0.weight", "fpn.lateral4.weight", "head1.block0.weight", "final.weight"))


def convert_official(top: "dict") -> Tuple[dict, dict]:
    """The authors' ``{'model': state_dict}`` -> (model_args, state_dict of :class:`DeblurGANv2`).

    Drops the ``module.`` prefix (DataParallel), the second name under which the backbone is stored
    (``fpn.features.N``, the same tensors as ``fpn.encK.M``; its blocks 16-18 are never used), and the
    running statistics that the authors' training-mode inference never reads.
    """
    sd = _bare(top["model"])
    width, fpn_width = (int(s) for s in sd["head1.block0.weight"].shape[:2])
    norm = "batch" if "fpn.td1.1.weight" in sd else "instance"
    state = {k: v for k, v in sd.items() if not k.startswith("fpn.features.") and k.rsplit(".", 1)[-1] not in _UNUSED}
    return dict(width=width, fpn_width=fpn_width, norm=norm), state

