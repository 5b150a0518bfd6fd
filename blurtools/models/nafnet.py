"""NAFNet: the published deblurring networks of Chen et al., built by spandrel from their state dicts.

Citation: L. Chen, X. Chu, X. Zhang, J. Sun, "Simple Baselines for Image Restoration", ECCV 2022
(arXiv 2204.04676). Released weights: ``NAFNet-GoPro-width32.pth``, ``NAFNet-GoPro-width64.pth``,
``NAFNet-REDS-width64.pth`` (deblurring; also the SIDD denoisers, same layout), each
``{'params': state_dict}``.

The architecture itself comes from spandrel (MIT; ``spandrel.architectures.NAFNet``): a U-Net of NAFBlocks
(LayerNorm, 1x1 and depthwise 3x3 convolutions, a simple gate, simplified channel attention), input and
output RGB in [0, 1], a global residual (output = input + network), zero padding right/bottom to a multiple
of 2^levels (16) inside the network, cropped back.

What the authors' inference adds, reproduced here: their GoPro and REDS test configurations run
``NAFNetLocal`` ("test-time local converter", Chu et al. 2021, arXiv 2112.04491): every channel attention's
global average becomes a local box mean whose side, at full resolution, is 1.5 x the 256-pixel training crop
(384 px; 384 / 2^l on level l), edge-replicated to the map's size. On inputs up to 384 x 384 (after padding)
this is the plain network. ``tlc_base=None`` gives the plain network (the authors' SIDD configurations).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from blurtools.errors import BlurtoolsError
from blurtools.models.contract import Model
from blurtools.models.files import strip_prefix

__all__ = ["NAFNet", "LocalMean", "nafnet_args_from_state_dict", "unwrap_params", "detect_release", "convert_release",
           "TLC_TRAIN_SIZE"]

TLC_TRAIN_SIZE = 256          # the training crop of the published GoPro / REDS models
DEBLUR_BLOCKS = ((1, 1, 1, 28), 1, (1, 1, 1, 1))   # encoder, middle, decoder blocks of the deblurring models


class LocalMean(nn.Module):
    """Box mean of side ``size`` x ``size`` over (B, C, H, W), edge-replicated back to (H, W).

    Maps no larger than the box get the global mean (B, C, 1, 1), like ``AdaptiveAvgPool2d(1)``. The box
    sums come from an integral image (two cumulative sums), the box is clipped to the map's side, and the
    (H - k1 + 1, W - k2 + 1) valid means are padded by replication, centred (the extra pixel right/bottom).
    """

    def __init__(self, size: int):
        super().__init__()
        self.size = int(size)

    def extra_repr(self) -> str:
        return f"size={self.size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if self.size >= h and self.size >= w:
            return F.adaptive_avg_pool2d(x, 1)
        k1, k2 = min(h, self.size), min(w, self.size)
        s = F.pad(x.cumsum(dim=-1).cumsum_(dim=-2), (1, 0, 1, 0))
        box = (s[..., k1:, k2:] + s[..., :-k1, :-k2] - s[..., :-k1, k2:] - s[..., k1:, :-k2]) / (k1 * k2)
        dh, dw = h - box.shape[-2], w - box.shape[-1]
        return F.pad(box, (dw // 2, (dw + 1) // 2, dh // 2, (dh + 1) // 2), mode="replicate")


def _level_blocks(net: nn.Module) -> Sequence[Tuple[int, nn.Module]]:
    """(level, NAFBlock) for every block: encoder i at level i, middle at the bottom, decoder j going up."""
    n = len(net.encoders)
    out = [(i, b) for i, enc in enumerate(net.encoders) for b in enc]
    out += [(n, b) for b in net.middle_blks]
    out += [(n - 1 - j, b) for j, dec in enumerate(net.decoders) for b in dec]
    return out


class NAFNet(Model):
    """NAFNet (spandrel's module) with the authors' test-time local statistics.

    Args:
        width: channels of the first level (32 or 64 in the releases).
        enc_blocks, middle_blocks, dec_blocks: NAFBlocks per encoder level, in the middle, per decoder level
            (deblurring releases: (1, 1, 1, 28), 1, (1, 1, 1, 1); SIDD: (2, 2, 4, 8), 12, (2, 2, 2, 2)).
        channels: image channels (3).
        tlc_base: side in full-resolution pixels of the channel attention's box mean (384 as the authors'
            deblurring tests; level l uses tlc_base / 2^l); None = the plain network's global means.

    Shapes: ``forward((B, 3, H, W) in [0, 1]) -> (B, 3, H, W)``, not clamped (any H, W >= 1; the network
    zero-pads right/bottom to a multiple of ``pad_multiple`` and crops back).
    """

    kind = "image"
    frames = None
    pad_multiple = 16
    # the box means of the local statistics span tlc_base pixels on every level (the plain network: the
    # whole input); windows overlapping by this much reproduce the whole-image result closely
    receptive_field = 384

    def __init__(self, width: int = 32, enc_blocks: Sequence[int] = DEBLUR_BLOCKS[0],
                 middle_blocks: int = DEBLUR_BLOCKS[1], dec_blocks: Sequence[int] = DEBLUR_BLOCKS[2],
                 channels: int = 3, tlc_base: Optional[int] = 384):
        super().__init__()
        from spandrel.architectures.NAFNet import NAFNet as SpandrelNAFNet

        enc_blocks, dec_blocks = [int(b) for b in enc_blocks], [int(b) for b in dec_blocks]
        if width < 1 or channels < 1 or middle_blocks < 0 or len(enc_blocks) != len(dec_blocks):
            raise BlurtoolsError(f"NAFNet: need width >= 1 and as many decoder as encoder levels, got width={width}, "
                                 f"enc_blocks={enc_blocks}, dec_blocks={dec_blocks}")
        if tlc_base is not None and tlc_base < 2 ** len(enc_blocks):
            raise BlurtoolsError(f"NAFNet: tlc_base {tlc_base} is smaller than the coarsest level's 2^{len(enc_blocks)}")
        self.net = SpandrelNAFNet(img_channel=channels, width=width, middle_blk_num=middle_blocks,
                                  enc_blk_nums=enc_blocks, dec_blk_nums=dec_blocks)
        self.pad_multiple = 2 ** len(enc_blocks)
        self.tlc_base = tlc_base
        if tlc_base is not None:
            for level, block in _level_blocks(self.net):
                # the authors size each box from the training crop: (256 / 2^l) * 1.5 on level l
                train_side = TLC_TRAIN_SIZE // 2 ** level
                block.sca[0] = LocalMean(train_side * tlc_base // TLC_TRAIN_SIZE)
        self.receptive_field = int(tlc_base) if tlc_base is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise BlurtoolsError(f"NAFNet: expected (B, C, H, W), got {tuple(x.shape)}")
        return self.net(x)


# ----------------------------------------------------------------------------------- published files

def unwrap_params(obj: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    """The state dict inside a BasicSR-style file: ``obj['params']`` (or ``params_ema``), else None."""
    for key in ("params", "params_ema"):
        inner = obj.get(key) if isinstance(obj, Mapping) else None
        if isinstance(inner, Mapping):
            return inner
    return None


def _count(sd: Mapping[str, Any], prefix: str) -> int:
    """How many numbered children ``prefix.N.`` the keys mention (N = 0, 1, ...)."""
    n = 0
    while any(k.startswith(f"{prefix}.{n}.") for k in sd):
        n += 1
    return n


def nafnet_args_from_state_dict(sd: Mapping[str, torch.Tensor]) -> Dict[str, Any]:
    """The :class:`NAFNet` arguments of an authors' state dict (keys ``intro.weight``, ``encoders.0.0...``).

    The deblurring layout (blocks (1, 1, 1, 28), 1, (1, 1, 1, 1)) gets the authors' test-time local
    statistics (tlc_base 384), any other (the SIDD denoisers) the plain network, as their test configurations do.
    """
    intro = sd["intro.weight"]
    enc = [_count(sd, f"encoders.{i}") for i in range(_count(sd, "encoders"))]
    dec = [_count(sd, f"decoders.{i}") for i in range(_count(sd, "decoders"))]
    middle = _count(sd, "middle_blks")
    deblur = (tuple(enc), middle, tuple(dec)) == DEBLUR_BLOCKS
    return {"width": int(intro.shape[0]), "enc_blocks": enc, "middle_blocks": middle, "dec_blocks": dec,
            "channels": int(intro.shape[1]), "tlc_base": 384 if deblur else None}


_RELEASE_KEYS = ("intro.weight", "ending.weight", "encoders.0.0.beta", "middle_blks.0.sca.1.weight", "ups.0.0.weight")


def detect_release(obj: Mapping[str, Any]) -> bool:
    """Whether a loaded file is an authors' NAFNet file: ``{'params': sd}`` (or a bare sd), ``module.`` optional.

    The state dict is recognised by spandrel's NAFNet detector (its key names), after a quick look at a few
    of them (importing spandrel takes seconds; files of other models never pay for it).
    """
    sd = strip_prefix(unwrap_params(obj) or obj)
    if not all(isinstance(sd.get(k), torch.Tensor) for k in _RELEASE_KEYS):
        return False
    from spandrel import MAIN_REGISTRY

    return bool(MAIN_REGISTRY["NAFNet"].architecture.detect(sd))


def convert_release(obj: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor]]:
    """``(model_args, state_dict)`` of :class:`NAFNet` for an authors' file (see :func:`detect_release`)."""
    sd = strip_prefix(unwrap_params(obj) or obj)
    return nafnet_args_from_state_dict(sd), {f"net.{k}": v for k, v in sd.items()}
