"""Kernel-basis network: non-uniform blur estimation by adaptive basis decomposition, plus restoration.

Citation: G. Carbajal, P. Vitoria, M. Delbracio, P. Musé, J. Lezama, "Non-uniform blur kernel estimation via
adaptive basis decomposition", arXiv 2102.01026, 2021.

Architecture (as in the paper): a U-Net-style encoder (3x3 convs + LeakyReLU, max-pooling, ``depth`` levels,
channels width * 2^i) feeds two decoders.

* The mixing decoder is a U-Net decoder with skip connections; a softmax over its K output channels gives
  per-pixel mixing coefficients m (B, K, H, W), non-negative and summing to 1 at every pixel.
* The kernel decoder starts from the global average of the bottleneck features (1x1) and up-samples it
  (skips: the global averages of the encoder levels) to a ks x ks map with K channels; a softmax over the
  ks*ks positions of each channel makes every basis kernel non-negative and summing to 1. The kernels are
  one set per image; only the mixing varies across the image.

The blur model is blurry ~ sum_b m_b * (k_b conv sharp) (:func:`blurtools.ops.kernel_basis.reblur`). The paper
hands the estimate to a separate non-blind deconvolution; here ``forward`` is the full inference path and
restores the image itself with ``rl_iters`` unrolled Richardson-Lucy iterations under that blur model,
starting from the blurry image. The iterations have no parameters of their own, are differentiable, and
let an image loss on the restored output train the estimator end to end.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from blurtools.errors import BlurtoolsError
from blurtools.models.contract import Model
from blurtools.ops.geometry import pad_to_multiple
from blurtools.ops.kernel_basis import KernelBasisOperator
from blurtools.ops.crf import from_linear, parse_crf, to_linear
from blurtools.ops.deconv import hqs_deconv


def _act() -> nn.Module:
    return nn.LeakyReLU(0.01, inplace=True)


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), _act(), nn.Conv2d(cout, cout, 3, padding=1), _act())


class _Down(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = _double_conv(cin, cout)

    def forward(self, x):
        feat = self.conv(x)
        return feat, F.max_pool2d(feat, 2)


class _Up(nn.Module):
    """Transposed-conv x2, double conv, then fuse a skip tensor (``skip_ch`` = 0: no skip)."""

    def __init__(self, cin: int, skip_ch: int, cout: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cin, 2, stride=2)
        self.conv = _double_conv(cin, cout)
        self.fuse = nn.Sequential(nn.Conv2d(cout + skip_ch, cout, 3, padding=1), _act())

    def forward(self, x, skip=None):
        x = self.conv(self.up(x))
        if skip is not None:
            x = torch.cat([skip, x], 1)
        return self.fuse(x)


class _Encoder(nn.Module):
    def __init__(self, width: int, depth: int):
        super().__init__()
        self.chans = [width * 2 ** i for i in range(depth)]
        self.inc = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), _act())
        cins = [width] + self.chans[:-1]
        self.downs = nn.ModuleList(_Down(a, b) for a, b in zip(cins, self.chans))
        self.bottleneck = nn.Sequential(nn.Conv2d(self.chans[-1], self.chans[-1], 3, padding=1), _act())

    def forward(self, x):
        h = self.inc(x)
        feats = []
        for down in self.downs:
            f, h = down(h)
            feats.append(f)
        return feats, self.bottleneck(h)


class _MixingDecoder(nn.Module):
    def __init__(self, chans, width: int, basis: int):
        super().__init__()
        depth = len(chans)
        outs = [chans[depth - 2 - i] if i < depth - 1 else width for i in range(depth)]
        ins = [chans[-1]] + outs[:-1]
        skips = [chans[depth - 1 - i] for i in range(depth)]
        self.ups = nn.ModuleList(_Up(a, s, o) for a, s, o in zip(ins, skips, outs))
        self.head = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), _act(),
                                  nn.Conv2d(width, width, 3, padding=1), _act(),
                                  nn.Conv2d(width, basis, 3, padding=1))

    def forward(self, feats, bottom):
        h = bottom
        for up, skip in zip(self.ups, reversed(feats)):
            h = up(h, skip)
        return torch.softmax(self.head(h), dim=1)


class _KernelDecoder(nn.Module):
    def __init__(self, chans, width: int, basis: int, kernel_size: int):
        super().__init__()
        depth = len(chans)
        self.basis, self.ks = basis, kernel_size
        self.n_up = max(1, math.ceil(math.log2(kernel_size - 1)))
        outs = [max(chans[depth - 2 - i], width) if i < depth - 1 else width for i in range(self.n_up)]
        ins = [chans[-1]] + outs[:-1]
        skips = [chans[depth - 1 - i] if i < depth else 0 for i in range(self.n_up)]
        self.ups = nn.ModuleList(_Up(a, s, o) for a, s, o in zip(ins, skips, outs))
        # A 2x2 conv with padding 1 turns the 2^n map into the odd 2^n + 1 size (33 from 32).
        self.head = nn.Sequential(nn.Conv2d(width, width, 2, padding=1), _act(),
                                  nn.Conv2d(width, width, 3, padding=1), _act(),
                                  nn.Conv2d(width, basis, 3, padding=1))

    def forward(self, feats, bottom):
        h = bottom.mean((2, 3), keepdim=True)
        for i, up in enumerate(self.ups):
            size = 2 ** (i + 1)
            skip = None
            if i < len(feats):
                skip = feats[-1 - i].mean((2, 3), keepdim=True).expand(-1, -1, size, size)
            h = up(h, skip)
        logits = self.head(h)
        if logits.shape[-1] != self.ks:  # kernel sizes other than 2^n + 1
            logits = F.adaptive_avg_pool2d(logits, self.ks)
        b = logits.shape[0]
        k = torch.softmax(logits.reshape(b, self.basis, -1), dim=2)
        return k.reshape(b, self.basis, self.ks, self.ks)


def richardson_lucy(blurry: torch.Tensor, kernels: torch.Tensor, mixing: torch.Tensor, iters: int,
                    eps: float = 1e-3) -> torch.Tensor:
    """Richardson-Lucy deconvolution under the kernel-basis blur model, differentiable throughout.

    x_{t+1} = x_t * A^T(blurry / (A x_t + eps)) / A^T(1), x_0 = blurry, A from
    :class:`~blurtools.ops.kernel_basis.KernelBasisOperator`.

    Args:
        blurry: (B, C, H, W) in [0, 1].
        kernels: (B, K, ks, ks) non-negative; mixing: (B, K, H, W) non-negative.
        iters: number of iterations (>= 0).
    Returns:
        (B, C, H, W), non-negative, not clipped to 1.
    """
    op = KernelBasisOperator(kernels, mixing)
    x = blurry.clamp_min(0)
    norm = op.adjoint(torch.ones_like(x[:, :1])).clamp_min(eps)
    for _ in range(iters):
        ratio = blurry / (op.apply(x) + eps)
        x = x * op.adjoint(ratio) / norm
    return x


class KernelBasisNet(Model):
    """Estimate a kernel basis and per-pixel mixing coefficients, then restore the image.

    Args:
        basis: number of basis kernels K (25 in the paper).
        kernel_size: side of each basis kernel, odd (33 in the paper).
        width: channels of the first encoder level (64 in the paper); level i has width * 2^i.
        depth: encoder levels (5 in the paper); inputs are reflect-padded to a multiple of 2^depth.
        rl_iters: unrolled Richardson-Lucy iterations of the restoration in ``forward``.
        restore: how ``forward`` restores: ``"rl"`` (the unrolled Richardson-Lucy iterations under the
            kernel-basis blur model; differentiable, for end-to-end training) or ``"hqs"`` (the paper's
            split: the estimate handed to a separate non-blind deconvolution, here the sparse-gradient
            HQS solver of :func:`blurtools.ops.deconv.hqs_deconv` in linear light, with the mixing-weighted
            mean kernel of the image: the blur model for camera shake, one kernel per image or tile).
        hqs_lam: the HQS regulariser (``restore="hqs"``).
        crf: camera response of the inputs for ``restore="hqs"``; the deconvolution runs in linear light.

    Shapes: ``forward(blurry (B, 3, H, W) in [0, 1]) -> (B, 3, H, W)`` (in [0, 1] in eval mode; RL output is
    non-negative but may exceed 1 in train mode);
    ``estimate(blurry) -> (kernels (B, K, ks, ks), mixing (B, K, H, W))``;
    ``reblur(sharp, kernels, mixing) -> (B, 3, H, W)``.

    Example::

        net = KernelBasisNet(basis=4, kernel_size=9, width=8, depth=2, rl_iters=3)
        kernels, mixing = net.estimate(torch.rand(1, 3, 37, 53))   # (1, 4, 9, 9), (1, 4, 37, 53)
    """

    kind = "image"
    frames = None
    pad_multiple = 32         # 2 ** depth
    receptive_field = None  # kernels pooled over the image, RL over the whole input

    def __init__(self, basis: int = 25, kernel_size: int = 33, width: int = 64, depth: int = 5,
                 rl_iters: int = 10, restore: str = "rl", hqs_lam: float = 1e-3, crf: str = "gamma:2.2"):
        super().__init__()
        if basis < 1 or kernel_size < 3 or kernel_size % 2 == 0:
            raise BlurtoolsError(f"KernelBasisNet: need basis >= 1 and an odd kernel_size >= 3, got "
                                 f"basis={basis}, kernel_size={kernel_size}")
        if depth < 1 or width < 1 or rl_iters < 1:
            raise BlurtoolsError(f"KernelBasisNet: depth, width and rl_iters must be >= 1, got "
                                 f"depth={depth}, width={width}, rl_iters={rl_iters}")
        if restore not in ("rl", "hqs") or hqs_lam <= 0:
            raise BlurtoolsError(f"KernelBasisNet: restore must be rl or hqs and hqs_lam > 0, got "
                                 f"restore={restore!r}, hqs_lam={hqs_lam}")
        parse_crf(crf)
        self.pad_multiple = 2 ** depth
        self.restore_method, self.hqs_lam, self.crf = restore, float(hqs_lam), crf
        self.basis, self.kernel_size, self.depth, self.rl_iters = basis, kernel_size, depth, rl_iters
        self.encoder = _Encoder(width, depth)
        self.mixing_decoder = _MixingDecoder(self.encoder.chans, width, basis)
        self.kernel_decoder = _KernelDecoder(self.encoder.chans, width, basis, kernel_size)

    @classmethod
    def recorded_args(cls, args):
        """Without HQS restoration ``hqs_lam`` and ``crf`` do nothing; RL checkpoints record neither (nor ``restore``)."""
        if args.get("restore") == "rl":
            args = {k: v for k, v in args.items() if k not in ("restore", "hqs_lam", "crf")}
        return args

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise BlurtoolsError(f"KernelBasisNet: expected blurry (B, 3, H, W), got {tuple(x.shape)}")

    def estimate(self, blurry: torch.Tensor):
        """Basis kernels (B, K, ks, ks), each summing to 1, and mixing (B, K, H, W), summing to 1 per pixel."""
        self._check(blurry)
        x, (h, w) = pad_to_multiple(blurry, self.pad_multiple)
        # The estimator sees the image centred on 0, as the paper's network does.
        feats, bottom = self.encoder(x - 0.5)
        kernels = self.kernel_decoder(feats, bottom)
        mixing = self.mixing_decoder(feats, bottom)[..., :h, :w]
        return kernels, mixing

    @staticmethod
    def reblur(sharp: torch.Tensor, kernels: torch.Tensor, mixing: torch.Tensor) -> torch.Tensor:
        """sum_b mixing_b * (kernels_b conv sharp); see :func:`blurtools.ops.kernel_basis.reblur`."""
        return KernelBasisOperator(kernels, mixing).apply(sharp)

    @staticmethod
    def mean_kernel(kernels: torch.Tensor, mixing: torch.Tensor) -> torch.Tensor:
        """The image's blur as one kernel: sum_b mean(mixing_b) kernels_b, (B, 1, ks, ks), summing to 1."""
        return torch.einsum("bk,bkij->bij", mixing.mean(dim=(2, 3)), kernels)[:, None]

    def restore(self, blurry: torch.Tensor, kernels: torch.Tensor, mixing: torch.Tensor) -> torch.Tensor:
        """Restore with given kernels and mixing: ``rl_iters`` Richardson-Lucy steps, or HQS (``restore``).

        Clipped to [0, 1] in eval mode only, so that training gradients reach pixels that overshoot.
        """
        if self.restore_method == "hqs":
            k = self.mean_kernel(kernels, mixing)
            return from_linear(hqs_deconv(to_linear(blurry, self.crf), k, lam=self.hqs_lam), self.crf)
        out = richardson_lucy(blurry, kernels, mixing, self.rl_iters)
        return out if self.training else out.clamp(0, 1)

    def forward(self, blurry: torch.Tensor) -> torch.Tensor:
        kernels, mixing = self.estimate(blurry)
        return self.restore(blurry, kernels, mixing)
