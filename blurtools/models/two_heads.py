"""The published two-head kernel network of Carbajal et al. 2021, and their restoration with it.

Citation: G. Carbajal, P. Vitoria, M. Delbracio, P. Musé, J. Lezama, "Non-uniform blur kernel estimation via
adaptive basis decomposition", arXiv 2102.01026, 2021. Released weights: ``TwoHeads.pkl``, a bare state dict.

Why a file of its own beside :mod:`blurtools.models.kernel_basis` (the project's trainable variant of the same
idea): the released network differs in ways that change its function, not just its key names. It has its own
widths (64, 64, 128 ... 1024 over the levels) and a separate input convolution for gray images; its kernel decoder
keeps 256 channels one level longer (256, 256, 128, 64 where the variant has 128, 64, 64); it never pads the
image: max-pooling drops odd rows, and each decoder level zero-pads its up-sampled map (centred) to the skip's
size; it sees ``blurry ** 2.2 - 0.5``; and its kernels are correlation kernels. The key names below are the
authors' (``inc_rgb.0.weight``, ``down1.double_conv.0.weight``, ``kernel_up3.feat.0.weight``...).

Architecture: encoder ``inc_rgb`` (3x3 conv + LeakyReLU 0.01), five ``Down`` (two 3x3 convs, keep the map,
2x2 max-pool), ``feat`` (3x3 conv). Mixing head: five ``Up`` (2x2 transposed conv, two 3x3 convs, zero-pad to
the skip, concatenate [skip, x], 3x3 conv) and ``masks_end`` (three 3x3 convs) then a softmax over the K
maps. Kernel head: from the global mean of the bottom features, five ``Up`` whose skips are the global means
of the encoder levels tiled to 2, 4, ... 32 pixels, ``kernels_end`` (2x2 conv with padding 1: 33 pixels, two
3x3 convs), a softmax over each kernel's taps.

Restoration (``forward``): :func:`blurtools.ops.saturated_rl.saturated_rl`, the authors' Richardson-Lucy with
saturated pixels handled, in linear light.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from blurtools.errors import BlurtoolsError
from blurtools.models.contract import Model
from blurtools.ops.saturated_rl import saturated_rl

__all__ = ["TwoHeadsNet", "two_heads_args_from_state_dict", "detect_release", "convert_release", "MIN_SIDE"]

MIN_SIDE = 32       # five 2x max-poolings


def _conv(cin: int, cout: int, k: int = 3, padding: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=padding), nn.LeakyReLU(0.01, inplace=True))


def _double(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.01, inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.01, inplace=True))


class _Down(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.double_conv = _double(cin, cout)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        feat = self.double_conv(x)
        return feat, F.max_pool2d(feat, 2)


class _Up(nn.Module):
    """Transposed conv x2, two convs, zero-pad (centred) to the skip's size, [skip, x], one conv."""

    def __init__(self, cin: int, skip: int, cout: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cin, 2, stride=2)
        self.double_conv = _double(cin, cout)
        self.feat = _conv(skip + cout, cout)

    def forward(self, x: torch.Tensor, skip: "torch.Tensor | None" = None) -> torch.Tensor:
        x = self.double_conv(self.up(x))
        if skip is not None:
            dy, dx = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
            x = torch.cat([skip, F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])], dim=1)
        return self.feat(x)


def _tiled_mean(x: torch.Tensor, side: int) -> torch.Tensor:
    return x.mean((2, 3), keepdim=True).repeat(1, 1, side, side)


class TwoHeadsNet(Model):
    """Carbajal et al.'s two-head network (the released layout) with their restoration.

    Args:
        basis: K, the number of basis kernels and mixing maps (25 released).
        kernel_size: 33 (released) or 65 (one more kernel level).
        width: channels of the first level (64 released); the levels have 1, 1, 2, 4, 8, 16 times as many.
        gamma: the inputs' gamma: the network sees ``blurry ** gamma - 0.5``, the restoration runs on
            ``blurry ** gamma`` (2.2 released; 1.0 for linear data such as Köhler's).
        iterations, threshold, lam: the restoration's Richardson-Lucy iterations (30), saturation threshold
            (0.99) and regulariser weight (1e-3), as the authors' deblurring script.

    Shapes: ``estimate((B, 3, H, W) in [0, 1]) -> kernels (B, K, k, k)`` (correlation kernels, each summing
    to 1) ``and mixing (B, K, H, W)`` (summing to 1 over K); ``forward`` gives the restored (B, 3, H, W),
    non-negative, not clipped. H, W >= 32.
    """

    kind = "image"
    frames = None
    pad_multiple = 1
    # the kernel head averages the whole image, and the restoration stops on the whole image's error
    receptive_field = None

    def __init__(self, basis: int = 25, kernel_size: int = 33, width: int = 64, gamma: float = 2.2,
                 iterations: int = 30, threshold: float = 0.99, lam: float = 1e-3):
        super().__init__()
        if basis < 1 or kernel_size not in (33, 65) or width < 1 or gamma <= 0 or iterations < 0:
            raise BlurtoolsError(f"TwoHeadsNet: need basis >= 1, kernel_size 33 or 65, width >= 1, gamma > 0, "
                                 f"iterations >= 0; got {basis}, {kernel_size}, {width}, {gamma}, {iterations}")
        self.basis, self.kernel_size = int(basis), int(kernel_size)
        self.gamma, self.iterations, self.threshold, self.lam = float(gamma), int(iterations), float(threshold), float(lam)
        w = self.width = int(width)
        self.inc_rgb = _conv(3, w)
        self.inc_gray = _conv(1, w)
        chans = [w, w, 2 * w, 4 * w, 8 * w, 16 * w]
        for i in range(5):
            setattr(self, f"down{i + 1}", _Down(chans[i], chans[i + 1]))
        self.feat = _conv(16 * w, 16 * w)
        for i, (cin, skip, cout) in enumerate([(16, 16, 8), (8, 8, 4), (4, 4, 2), (2, 2, 1), (1, 1, 1)]):
            setattr(self, f"up{i + 1}", _Up(cin * w, skip * w, cout * w))
        self.masks_end = nn.Sequential(*_conv(w, w), *_conv(w, w), nn.Conv2d(w, basis, 3, padding=1))
        for i, (cin, skip, cout) in enumerate([(16, 16, 8), (8, 8, 4), (4, 4, 4), (4, 2, 2), (2, 1, 1)]):
            setattr(self, f"kernel_up{i + 1}", _Up(cin * w, skip * w, cout * w))
        if kernel_size == 65:
            self.kernel_up6 = _Up(w, 0, w)
        self.kernels_end = nn.Sequential(*_conv(w, w, 2, 1), *_conv(w, w), nn.Conv2d(w, basis, 3, padding=1))

    def _encode(self, x: torch.Tensor):
        h = self.inc_rgb(x) if x.shape[1] == 3 else self.inc_gray(x)
        feats = []
        for i in range(5):
            f, h = getattr(self, f"down{i + 1}")(h)
            feats.append(f)
        return feats, self.feat(h)

    def _kernels(self, feats, bottom: torch.Tensor) -> torch.Tensor:
        k = bottom.mean((2, 3), keepdim=True)
        for i in range(5):
            k = getattr(self, f"kernel_up{i + 1}")(k, _tiled_mean(feats[4 - i], 2 ** (i + 1)))
        if self.kernel_size == 65:
            k = self.kernel_up6(k)
        logits = self.kernels_end(k)
        b = logits.shape[0]
        taps = torch.softmax(logits.reshape(b, self.basis, -1), dim=2)
        return taps.reshape(b, self.basis, self.kernel_size, self.kernel_size)

    def estimate(self, blurry: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Correlation kernels (B, K, k, k) and mixing maps (B, K, H, W) of (B, 3 or 1, H, W) in [0, 1]."""
        if blurry.dim() != 4 or blurry.shape[1] not in (1, 3):
            raise BlurtoolsError(f"TwoHeadsNet: expected (B, 3, H, W), got {tuple(blurry.shape)}")
        if min(blurry.shape[-2:]) < MIN_SIDE:
            raise BlurtoolsError(f"TwoHeadsNet: the image ({blurry.shape[-1]}x{blurry.shape[-2]}) needs at least "
                                 f"{MIN_SIDE} pixels per side")
        feats, bottom = self._encode(blurry.clamp(0, 1) ** self.gamma - 0.5)
        kernels = self._kernels(feats, bottom)
        h = bottom
        for i in range(5):
            h = getattr(self, f"up{i + 1}")(h, feats[4 - i])
        return kernels, torch.softmax(self.masks_end(h), dim=1)

    def restore(self, blurry: torch.Tensor, kernels: torch.Tensor, mixing: torch.Tensor) -> torch.Tensor:
        """The authors' restoration of ``blurry`` (B, C, H, W) with given kernels and mixing."""
        return saturated_rl(blurry, kernels, mixing, self.iterations, self.gamma, self.threshold, self.lam)

    def forward(self, blurry: torch.Tensor) -> torch.Tensor:
        kernels, mixing = self.estimate(blurry)
        return self.restore(blurry, kernels, mixing)


def two_heads_args_from_state_dict(sd: Mapping[str, Any]) -> Dict[str, Any]:
    """:class:`TwoHeadsNet` arguments of a released state dict: K from the last kernel conv, 65 with ``kernel_up6``."""
    return {"basis": int(sd["kernels_end.4.weight"].shape[0]), "width": int(sd["inc_rgb.0.weight"].shape[0]),
            "kernel_size": 65 if "kernel_up6.up.weight" in sd else 33}


_RELEASE_KEYS = ("inc_rgb.0.weight", "down5.double_conv.2.weight", "up5.feat.0.weight", "masks_end.4.weight",
                 "kernel_up1.up.weight", "kernels_end.4.weight")


def detect_release(obj: Mapping[str, Any]) -> bool:
    """Whether a loaded file is the released ``TwoHeads.pkl`` layout: a bare state dict with the authors' keys."""
    return all(isinstance(obj.get(k), torch.Tensor) for k in _RELEASE_KEYS)


def convert_release(obj: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor]]:
    """``(model_args, state_dict)`` of :class:`TwoHeadsNet` for the released file (keys unchanged)."""
    return two_heads_args_from_state_dict(obj), dict(obj)
