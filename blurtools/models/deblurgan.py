"""DeblurGAN generator and WGAN-GP PatchGAN critic, with the Laplacian of the input as a 4th channel.

Citation: O. Kupyn, V. Budzan, M. Mykhailych, D. Mishkin, J. Matas, "DeblurGAN: Blind Motion Deblurring Using
Conditional Adversarial Networks", CVPR 2018 (generator, critic, WGAN-GP with lambda 10, perceptual content
loss weight 100, 5 critic updates per generator update). The input variant with the Laplacian of the
blurry image as an extra channel is the one this project's seed uses.

Generator (the ResNet generator of Johnson et al. as DeblurGAN uses it): reflect-pad + 7x7 conv, two strided
3x3 convs, ``n_blocks`` (9) residual blocks (3x3 conv, instance norm, ReLU, dropout 0.5, 3x3 conv, instance
norm), two transposed 3x3 convs, reflect-pad + 7x7 conv, tanh, and a global skip:
output = clamp(blurry + tanh(...), -1, 1) in the [-1, 1] range it works in.

Critic: the 70x70 PatchGAN (4x4 convs, strides 2, 2, 2, 1, 1, LeakyReLU 0.2) with no sigmoid, as a WGAN-GP
critic needs; normalisation is instance norm (DeblurGAN) or none, never batch norm, which would couple the
samples that the gradient penalty treats one by one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from blurtools.errors import BlurtoolsError
from blurtools.models.contract import Model
from blurtools.ops.geometry import pad_to_multiple

_LUMA = (0.299, 0.587, 0.114)


def laplacian(x: torch.Tensor) -> torch.Tensor:
    """4-neighbour Laplacian of the luminance of x: (B, 3, H, W) -> (B, 1, H, W), replicate borders."""
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    gray = F.pad((x * w).sum(1, keepdim=True), (1, 1, 1, 1), mode="replicate")
    k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=x.dtype, device=x.device)
    return F.conv2d(gray, k.view(1, 1, 3, 3))


class _ResnetBlock(nn.Module):
    def __init__(self, ch: int, dropout: float):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch), nn.ReLU(True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.block(x)


class DeblurGANGenerator(Model):
    """DeblurGAN's ResNet generator on blurry RGB + its Laplacian.

    Args:
        width: channels of the first conv (ngf, 64); the bottleneck has 4x.
        n_blocks: residual blocks (9).
        dropout: dropout inside the residual blocks (0.5, DeblurGAN's default; 0 turns it off).
        laplacian: feed the Laplacian of the blurry image as a 4th input channel (True).

    ``forward(blurry)``: (B, 3, H, W) in [0, 1], any H, W (reflect-padded to a multiple of 4 inside) ->
    (B, 3, H, W) in [0, 1]. The Laplacian channel is computed inside, so callers pass plain RGB.

    Example::

        g = DeblurGANGenerator(width=8, n_blocks=2, dropout=0.0)
        out = g(torch.rand(1, 3, 37, 53))      # (1, 3, 37, 53)
    """

    kind = "image"
    frames = None
    pad_multiple = 4
    receptive_field = None  # instance norm: every output pixel depends on the whole input

    def __init__(self, width: int = 64, n_blocks: int = 9, dropout: float = 0.5, laplacian: bool = True):
        super().__init__()
        if width < 1 or n_blocks < 0 or not 0.0 <= dropout < 1.0:
            raise BlurtoolsError(f"DeblurGANGenerator: need width >= 1, n_blocks >= 0, 0 <= dropout < 1 "
                                 f"(got {width}, {n_blocks}, {dropout})")
        self.use_laplacian = laplacian
        cin = 4 if laplacian else 3
        w = width
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(cin, w, 7), nn.InstanceNorm2d(w), nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(w * mult, w * mult * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(w * mult * 2),
                       nn.ReLU(True)]
        layers += [_ResnetBlock(4 * w, dropout) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(w * mult, w * mult // 2, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(w * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, 3, 7), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, blurry: torch.Tensor) -> torch.Tensor:
        if blurry.dim() != 4 or blurry.shape[1] != 3:
            raise BlurtoolsError(f"DeblurGANGenerator: expected blurry (B, 3, H, W), got {tuple(blurry.shape)}")
        x, (h, w) = pad_to_multiple(blurry * 2 - 1, self.pad_multiple)
        inp = torch.cat([x, laplacian(x)], 1) if self.use_laplacian else x
        out = torch.clamp(x + self.body(inp), -1, 1)
        return (out[..., :h, :w] + 1) / 2


class DeblurGANCritic(nn.Module):
    """70x70 PatchGAN critic for WGAN-GP (no sigmoid).

    Args:
        width: channels of the first conv (ndf, 64).
        n_layers: strided conv layers (3 gives the 70x70 receptive field).
        norm: "instance" (DeblurGAN) or "none".

    ``forward(x)``: (B, 3, H, W) in [0, 1] -> (B, 1, h, w) map of patch scores (unbounded).
    """

    def __init__(self, width: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        if norm not in ("instance", "none"):
            raise BlurtoolsError(f"DeblurGANCritic: norm must be 'instance' or 'none' (batch norm breaks "
                                 f"the per-sample gradient penalty), got {norm!r}")
        if width < 1 or n_layers < 1:
            raise BlurtoolsError(f"DeblurGANCritic: need width >= 1 and n_layers >= 1, got {width}, {n_layers}")
        def normed(c):
            return [nn.InstanceNorm2d(c)] if norm == "instance" else []

        layers = [nn.Conv2d(3, width, 4, stride=2, padding=2), nn.LeakyReLU(0.2, True)]
        prev = width
        for n in range(1, n_layers + 1):
            cur = width * min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(prev, cur, 4, stride=stride, padding=2), *normed(cur), nn.LeakyReLU(0.2, True)]
            prev = cur
        layers.append(nn.Conv2d(prev, 1, 4, stride=1, padding=2))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise BlurtoolsError(f"DeblurGANCritic: expected (B, 3, H, W), got {tuple(x.shape)}")
        return self.body(x * 2 - 1)
