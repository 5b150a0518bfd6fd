"""Dense deblurring module (DM): fast single-image deblurring with residual dense blocks.

Citation: K. Purohit, A. Shah, A. N. Rajagopalan, "Bringing Alive Blurred Moments", CVPR 2019, section 2.5
(the deblurring module; 30.58 dB on GoPro at 0.02 s and 17.9 MB).

Architecture, as the paper describes it:

* space-to-depth: the input is pixel-unshuffled by ``s2d`` (2) so that every convolution runs at reduced
  resolution: the speed of the module comes from here;
* an encoder of residual dense blocks (RDBs, Zhang et al. 2018) at three sub-scales (1/s2d, 1/2s2d,
  1/4s2d of the input), joined by strided 3x3 convolutions;
* a bottleneck of RDBs at the coarsest scale;
* a decoder of deconvolution (transposed-convolution) up-sampling blocks, each followed by a residual block,
  with projection skip connections (1x1 convolutions) from the encoder features of the same scale;
* residual scaling (``res_scale``, 0.2) on every RDB and residual block; no normalisation layers;
* depth-to-space back to full resolution and a global residual: output = blurry + predicted residual.

The default configuration has 4.73M parameters, 18.9 MB (18.0 MiB) in float32, against the 17.9 MB of the
paper (:func:`param_count`). Exact widths are not published; ``width``/``growth``/``rdb_layers``/``blocks``/
``bottleneck`` set them.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from blurtools.errors import BlurtoolsError
from blurtools.models.contract import Model
from blurtools.ops.geometry import pad_to_multiple


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


class ResidualDenseBlock(nn.Module):
    """RDB: ``layers`` densely connected 3x3 conv + LeakyReLU, 1x1 local fusion, scaled local residual."""

    def __init__(self, channels: int, growth: int, layers: int, res_scale: float):
        super().__init__()
        self.res_scale = res_scale
        self.convs = nn.ModuleList(
            nn.Conv2d(channels + i * growth, growth, 3, padding=1) for i in range(layers))
        self.fuse = nn.Conv2d(channels + layers * growth, channels, 1)
        self.act = _act()

    def forward(self, x):
        feats = [x]
        for conv in self.convs:
            feats.append(self.act(conv(torch.cat(feats, 1))))
        return x + self.res_scale * self.fuse(torch.cat(feats, 1))


class _ResBlock(nn.Module):
    def __init__(self, channels: int, res_scale: float):
        super().__init__()
        self.res_scale = res_scale
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), _act(),
                                  nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x):
        return x + self.res_scale * self.body(x)


class _UpBlock(nn.Module):
    """Deconvolution x2, projection of the encoder skip added, then a residual block."""

    def __init__(self, cin: int, cout: int, skip: int, res_scale: float):
        super().__init__()
        self.deconv = nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), _act())
        self.project = nn.Conv2d(skip, cout, 1)
        self.refine = _ResBlock(cout, res_scale)

    def forward(self, x, skip):
        return self.refine(self.deconv(x) + self.project(skip))


class DenseDeblurModule(Model):
    """The deblurring module of Purohit et al. 2019.

    Args:
        width: channels at the finest encoder scale; the next two scales have 2x and 4x (64).
        growth: RDB growth rate at the finest scale, doubled at the next scales (32).
        rdb_layers: conv layers inside each RDB (4).
        blocks: RDBs per encoder scale, finest first (2, 2, 1).
        bottleneck: RDBs in the bottleneck at the coarsest scale (1).
        s2d: space-to-depth factor of the input (2).
        res_scale: residual scaling of the RDBs and residual blocks (0.2).

    ``forward(blurry)``: (B, 3, H, W) in [0, 1], any H, W (reflect-padded to a multiple of 4 * s2d inside,
    cropped back) -> (B, 3, H, W). The output is clamped to [0, 1] in eval mode only, so that training
    gradients reach pixels the residual pushes out of range.

    Example::

        net = DenseDeblurModule(width=8, growth=4, rdb_layers=2, blocks=(1, 1, 1), bottleneck=1)
        out = net(torch.rand(1, 3, 37, 53))      # (1, 3, 37, 53)
    """

    kind = "image"
    frames = None
    pad_multiple = 8          # 4 * s2d (two stride-2 levels after space-to-depth by s2d)
    receptive_field = 282  # measured: the gradient support of one output pixel (default architecture)

    def __init__(self, width: int = 64, growth: int = 32, rdb_layers: int = 4,
                 blocks: Sequence[int] = (2, 2, 1), bottleneck: int = 1, s2d: int = 2, res_scale: float = 0.2):
        super().__init__()
        blocks = tuple(int(b) for b in blocks)
        if len(blocks) != 3 or min(blocks) < 1:
            raise BlurtoolsError(f"DenseDeblurModule: blocks must be three counts >= 1, got {blocks}")
        if min(width, growth, rdb_layers, s2d) < 1 or bottleneck < 0:
            raise BlurtoolsError("DenseDeblurModule: width, growth, rdb_layers and s2d must be >= 1, "
                                 f"bottleneck >= 0 (got {width}, {growth}, {rdb_layers}, {s2d}, {bottleneck})")
        self.pad_multiple = 4 * s2d
        self.s2d = s2d
        c = [width, 2 * width, 4 * width]
        g = [growth, 2 * growth, 2 * growth]
        cin = 3 * s2d * s2d

        def rdbs(n, ch, gr):
            return nn.Sequential(*[ResidualDenseBlock(ch, gr, rdb_layers, res_scale) for _ in range(n)])

        self.head = nn.Sequential(nn.Conv2d(cin, c[0], 3, padding=1), _act())
        self.enc1 = rdbs(blocks[0], c[0], g[0])
        self.down1 = nn.Sequential(nn.Conv2d(c[0], c[1], 3, stride=2, padding=1), _act())
        self.enc2 = rdbs(blocks[1], c[1], g[1])
        self.down2 = nn.Sequential(nn.Conv2d(c[1], c[2], 3, stride=2, padding=1), _act())
        self.enc3 = rdbs(blocks[2], c[2], g[2])
        self.bottleneck = rdbs(bottleneck, c[2], g[2])
        self.up2 = _UpBlock(c[2], c[1], c[1], res_scale)
        self.up1 = _UpBlock(c[1], c[0], c[0], res_scale)
        self.tail = nn.Conv2d(c[0], cin, 3, padding=1)
        # Start near the identity map (small residual) so early training only learns a correction; not
        # exactly zero, which would leave every other layer without gradient on the first step.
        with torch.no_grad():
            self.tail.weight.mul_(0.1)
            self.tail.bias.zero_()

    def forward(self, blurry: torch.Tensor) -> torch.Tensor:
        if blurry.dim() != 4 or blurry.shape[1] != 3:
            raise BlurtoolsError(f"DenseDeblurModule: expected blurry (B, 3, H, W), got {tuple(blurry.shape)}")
        x, (h, w) = pad_to_multiple(blurry, self.pad_multiple)
        e0 = self.head(F.pixel_unshuffle(x, self.s2d))
        e1 = self.enc1(e0)
        e2 = self.enc2(self.down1(e1))
        e3 = self.bottleneck(self.enc3(self.down2(e2)))
        d1 = self.up1(self.up2(e3, e2), e1)
        residual = F.pixel_shuffle(self.tail(d1), self.s2d)
        out = (x + residual)[..., :h, :w]
        return out if self.training else out.clamp(0, 1)


def param_count(model: Optional[nn.Module] = None) -> int:
    """Number of parameters of ``model`` (default: a DenseDeblurModule in its default configuration).

    Multiply by 4 for the float32 size in bytes (the paper's 17.9 MB is ~4.5M parameters).
    """
    model = DenseDeblurModule() if model is None else model
    return sum(p.numel() for p in model.parameters())
