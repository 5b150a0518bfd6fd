"""Niu, Xia, Pan: all the frames of a blurry image from one network.

W. Niu, K. Xia, Y. Pan, "Contiguous Loss for Motion-Based, Non-Aligned Image Deblurring", Symmetry 13(4),
630, 2021. One convolutional network encodes the blurry image with convolutions and pooling, processes it
with residual blocks, decodes it, and outputs all N frames at once (3*N channels reshaped to (N, 3)); a
VGG-like discriminator (their Table 2) judges single frames for the adversarial term.

The paper's Table 1 layer list was not available to us; this network follows its description (a
residual encoder-decoder with pooling, one output head for all frames) with widths after the
DeblurGAN-style residual generators it compares with: full-resolution features of ``width`` maps, two
max-pool levels (2*width, 4*width), ``blocks`` residual blocks at 1/4 size, transposed-convolution
up-sampling with additive skips, and a global residual: every output frame = blurry + its own residual
(so an untrained network starts from the blurry image). Any H, W: inputs are reflect-padded to a
multiple of 4 and cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from blurtools.errors import BlurtoolsError
from blurtools.models.contract import Model
from blurtools.ops.geometry import pad_to_multiple


class _ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class NiuNet(Model):
    """forward(blurry (B, 3, H, W) in [0, 1]) -> (B, frames, 3, H, W), all frames in one pass.

    Args:
        frames: N frames out (7 published; any N >= 1).
        width: full-resolution feature maps (64); 2x and 4x at 1/2 and 1/4 size.
        blocks: residual blocks at 1/4 size (9).

    Sub-module names: ``encoder``, ``body``, ``decoder`` (trained together: one stage).

    Example::

        >>> net = NiuNet(width=4, blocks=1)
        >>> tuple(net(torch.rand(2, 3, 13, 11)).shape)
        (2, 7, 3, 13, 11)
    """

    kind = "video"
    frames = 7
    pad_multiple = 4
    receptive_field = 202  # measured: the gradient support of one output pixel (default architecture)

    def __init__(self, frames: int = 7, width: int = 64, blocks: int = 9):
        super().__init__()
        if frames < 1 or width < 1 or blocks < 0:
            raise BlurtoolsError(f"NiuNet: need frames >= 1, width >= 1, blocks >= 0; got {frames}, {width}, {blocks}")
        self.frames = frames
        w1, w2, w4 = width, 2 * width, 4 * width
        relu = nn.ReLU
        self.encoder = nn.ModuleDict(dict(
            level1=nn.Sequential(nn.Conv2d(3, w1, 7, padding=3), relu(inplace=True), _ResBlock(w1)),
            level2=nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(w1, w2, 3, padding=1), relu(inplace=True),
                                 _ResBlock(w2)),
            level4=nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(w2, w4, 3, padding=1), relu(inplace=True)),
        ))
        self.body = nn.Sequential(*[_ResBlock(w4) for _ in range(blocks)])
        self.decoder = nn.ModuleDict(dict(
            up2=nn.Sequential(nn.ConvTranspose2d(w4, w2, 4, stride=2, padding=1), relu(inplace=True)),
            level2=_ResBlock(w2),
            up1=nn.Sequential(nn.ConvTranspose2d(w2, w1, 4, stride=2, padding=1), relu(inplace=True)),
            level1=_ResBlock(w1),
            out=nn.Conv2d(w1, 3 * frames, 7, padding=3),
        ))
        # A small start for the residuals: the first outputs are near the blurry image.
        with torch.no_grad():
            self.decoder["out"].weight.mul_(0.1)
            self.decoder["out"].bias.zero_()

    def forward(self, blurry: torch.Tensor) -> torch.Tensor:
        if blurry.dim() != 4 or blurry.shape[1] != 3:
            raise BlurtoolsError(f"NiuNet: expected blurry (B, 3, H, W), got {tuple(blurry.shape)}")
        x, (h, w) = pad_to_multiple(blurry, 4)
        e1 = self.encoder["level1"](x)
        e2 = self.encoder["level2"](e1)
        e4 = self.body(self.encoder["level4"](e2))
        d2 = self.decoder["level2"](self.decoder["up2"](e4) + e2)
        d1 = self.decoder["level1"](self.decoder["up1"](d2) + e1)
        res = self.decoder["out"](d1)
        b = x.shape[0]
        frames = x.unsqueeze(1) + res.view(b, self.frames, 3, *x.shape[-2:])
        return frames[..., :h, :w]


class NiuDiscriminator(nn.Module):
    """VGG-like discriminator (Niu et al. Table 2, after SRGAN): frames (B, 3, H, W) -> logits (B,).

    Eight 3x3 convolutions (width, width, 2w, 2w, 4w, 4w, 8w, 8w maps; stride 2 on every second; batch
    norm after all but the first; leaky ReLU 0.2), global average pooling (so any size works), a dense
    layer of 16*width units, leaky ReLU, and one output logit (the sigmoid lives in the loss).
    """

    def __init__(self, width: int = 64):
        super().__init__()
        if width < 1:
            raise BlurtoolsError(f"NiuDiscriminator: width must be >= 1, got {width}")
        chans = [width, width, 2 * width, 2 * width, 4 * width, 4 * width, 8 * width, 8 * width]
        layers, cin = [], 3
        for i, cout in enumerate(chans):
            layers.append(nn.Conv2d(cin, cout, 3, stride=1 + i % 2, padding=1, bias=i == 0))
            if i:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(cin, 16 * width), nn.LeakyReLU(0.2, inplace=True),
                                  nn.Linear(16 * width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise BlurtoolsError(f"NiuDiscriminator: expected (B, 3, H, W), got {tuple(x.shape)}")
        f = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.head(f).squeeze(1)
