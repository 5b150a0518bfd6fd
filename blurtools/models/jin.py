"""Jin, Meishvili, Favaro: a 7-frame video from one motion-blurred image, one pair of frames at a time.

M. Jin, G. Meishvili, P. Favaro, "Learning to Extract a Video Sequence from a Single Motion-Blurred
Image", CVPR 2018 (section 4.1; layer sizes as in the authors' public PyTorch release).

The middle frame comes first, then pairs of frames symmetric about it, each pair from the blurry image y
and the frames already estimated:

    x4 = phi_4(y);  (x3, x5) = phi_3,5(y, x4);  (x2, x6) = phi_2,6(y, x3, x4, x5);
    (x1, x7) = phi_1,7(y, x2, ..., x6)       (and phi_0,8 for 9 frames, and so on)

phi_4 (``MiddleNet``): each colour channel on its own (shared weights) is rearranged space-to-depth by 4
(16 channels at 1/4 size), a 5x5 convolution gives 144 features, 12 pre-activation residual blocks follow
(instance norm, ReLU; a 1x1 branch and a two-conv 3x3 branch; the middle six dilated 1-2, 2-4, 4-8,
8-4, 4-2, 2-1), the four groups of three blocks are each fused down to 16 channels and summed with the
input, depth-to-space returns to full size, and a last full-resolution stage (3 -> 64 -> 3 channels, one
residual block) mixes the colours and adds a residual to y.

The pair networks are built from ``FrameNet``: space-to-depth by 5 (25 channels per colour at 1/5 size),
5x5 convolutions of y (64 features) and of the reference frames (64), residual blocks at 128 features
(plain, four dilated 1-2, 4-8, 8-4, 2-1, plain), three fused groups, depth-to-space, and a small
full-resolution stage; it predicts a frame as a residual over its last reference frame. The first pair
must choose a direction of time, so it has two networks: the first extrapolates from x4 alone, the
second takes that estimate and goes the other way. Later pairs have one network used on both sides
(mirror symmetry): the frame before is extrapolated from (x4, x3, ...) outward, the frame after from
(x4, x5, ...). Published sizes: 12 blocks in phi_4 and in each net of phi_3,5; 8 in the others.

Any H, W: inputs are reflect-padded to a multiple of 20 (space-to-depth by 4 and by 5) and cropped back.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from blurtools.errors import BlurtoolsError
from blurtools.models.contract import Model
from blurtools.ops.geometry import pad_to_multiple

Dilations = Sequence[Tuple[int, int]]


def per_channel_s2d(img: torch.Tensor, r: int) -> torch.Tensor:
    """(B, C, H, W) -> (B*C, r*r, H/r, W/r): each colour through the network on its own, as in Jin et al.

    Channel ``i*r + j`` holds the pixels at offset (i, j) of each r x r cell (``F.pixel_unshuffle``).
    """
    b, c, h, w = img.shape
    return F.pixel_unshuffle(img.reshape(b * c, 1, h, w), r)


class _ResBlock(nn.Module):
    """x + conv1x1(a(x)) + conv3x3_d2(a(conv3x3_d1(a(x)))), a = ReLU(InstanceNorm(.)); no biases."""

    def __init__(self, ch: int, d1: int = 1, d2: int = 1):
        super().__init__()
        self.norm1 = nn.InstanceNorm2d(ch, affine=True)
        self.norm2 = nn.InstanceNorm2d(ch, affine=True)
        self.norm3 = nn.InstanceNorm2d(ch, affine=True)
        self.conv1 = nn.Conv2d(ch, ch, 1, bias=False)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=d1, dilation=d1, bias=False)
        self.conv3 = nn.Conv2d(ch, ch, 3, padding=d2, dilation=d2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        short = self.conv1(F.relu(self.norm1(x)))
        long = self.conv3(F.relu(self.norm3(self.conv2(F.relu(self.norm2(x))))))
        return x + short + long


class FuseBlock(nn.Module):
    """conv1x1(a(x)) + conv3x3(a(x)) down to ``out_ch`` channels (feature fusion / the small tail block)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.norm1 = nn.InstanceNorm2d(in_ch, affine=True)
        self.norm2 = nn.InstanceNorm2d(in_ch, affine=True)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.conv2 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(F.relu(self.norm1(x))) + self.conv2(F.relu(self.norm2(x)))


class _Trunk(nn.Module):
    """Groups of residual blocks; each group's output is fused to ``out_ch`` channels and all are summed."""

    def __init__(self, width: int, groups: Sequence[Dilations], out_ch: int):
        super().__init__()
        self.groups = nn.ModuleList(nn.Sequential(*[_ResBlock(width, a, b) for a, b in g]) for g in groups)
        self.fuse = nn.ModuleList(FuseBlock(width, out_ch) for _ in groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for group, fuse in zip(self.groups, self.fuse):
            x = group(x)
            total = fuse(x) if total is None else total + fuse(x)
        return total


def _small(conv: nn.Conv2d) -> None:
    # The last layer predicts a residual: start it small so an untrained net returns about its reference
    # (the blurry image, or the neighbouring frame) rather than noise.
    with torch.no_grad():
        conv.weight.mul_(0.1)


def _middle_groups(blocks: int) -> List[Dilations]:
    if blocks < 4 or blocks % 4:
        raise BlurtoolsError(f"Jin: middle_blocks must be a positive multiple of 4, got {blocks}")
    n = blocks // 4
    up = [(2 ** i, 2 ** (i + 1)) for i in range(n)]
    return [[(1, 1)] * n, up, [(b, a) for a, b in reversed(up)], [(1, 1)] * n]


def _pair_groups(blocks: int) -> List[Dilations]:
    if blocks < 4 or blocks % 2:
        raise BlurtoolsError(f"Jin: pair blocks must be even and >= 4, got {blocks}")
    n = (blocks - 4) // 2
    groups = [[(1, 1)] * n, [(1, 2), (4, 8), (8, 4), (2, 1)], [(1, 1)] * n]
    return [g for g in groups if g]


class MiddleNet(nn.Module):
    """phi_4: blurry (B, 3, H, W) -> middle frame (B, 3, H, W); any H, W."""

    def __init__(self, width: int = 144, blocks: int = 12, factor: int = 4, tail_width: int = 64):
        super().__init__()
        self.factor = factor
        r2 = factor * factor
        self.head = nn.Conv2d(r2, width, 5, padding=2, bias=False)
        self.trunk = _Trunk(width, _middle_groups(blocks), r2)
        self.tail_in = nn.Conv2d(3, tail_width, 3, padding=1, bias=False)
        self.tail_block = _ResBlock(tail_width)
        self.tail_norm = nn.InstanceNorm2d(tail_width, affine=True)
        self.tail_out = nn.Conv2d(tail_width, 3, 3, padding=1, bias=False)
        _small(self.tail_out)

    def forward(self, blurry: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(blurry, self.factor)
        b = x.shape[0]
        s = per_channel_s2d(x, self.factor)
        feat = self.trunk(self.head(s)) + s
        img = F.pixel_shuffle(feat, self.factor).reshape(b, 3, x.shape[-2], x.shape[-1])
        out = self.tail_out(F.relu(self.tail_norm(self.tail_block(self.tail_in(img))))) + x
        return out[..., :h, :w]


class FrameNet(nn.Module):
    """Predicts one frame as a residual over its last reference: (blurry, [ref_1..ref_K]) -> (B, 3, H, W)."""

    def __init__(self, refs: int, width: int = 128, blocks: int = 12, factor: int = 5, tail_width: int = 32):
        super().__init__()
        if refs < 1 or width < 2:
            raise BlurtoolsError(f"FrameNet: need refs >= 1 and width >= 2, got {refs} and {width}")
        self.refs = refs
        self.factor = factor
        r2 = factor * factor
        self.head_blurry = nn.Conv2d(r2, width // 2, 5, padding=2, bias=False)
        self.head_refs = nn.Conv2d(refs * r2, width - width // 2, 5, padding=2, bias=False)
        self.trunk = _Trunk(width, _pair_groups(blocks), r2)
        self.tail_in = nn.Conv2d(3, tail_width, 3, padding=1, bias=False)
        self.tail_block = FuseBlock(tail_width, tail_width)
        self.tail_norm = nn.InstanceNorm2d(tail_width, affine=True)
        self.tail_out = nn.Conv2d(tail_width, 3, 3, padding=1, bias=False)
        _small(self.tail_out)

    def forward(self, blurry: torch.Tensor, refs: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(refs) != self.refs:
            raise BlurtoolsError(f"FrameNet: expected {self.refs} reference frames, got {len(refs)}")
        x, (h, w) = pad_to_multiple(torch.cat([blurry, *refs], dim=1), self.factor)
        b = x.shape[0]
        parts = [per_channel_s2d(p, self.factor) for p in x.split(3, dim=1)]
        feat = torch.cat((self.head_blurry(parts[0]), self.head_refs(torch.cat(parts[1:], dim=1))), dim=1)
        feat = self.trunk(feat) + parts[-1]
        img = F.pixel_shuffle(feat, self.factor).reshape(b, 3, x.shape[-2], x.shape[-1])
        out = self.tail_out(F.relu(self.tail_norm(self.tail_block(self.tail_in(img)))))
        return out[..., :h, :w]


class FirstPair(nn.Module):
    """phi_3,5: picks a direction of time. ``before`` from (y, x4); ``after`` from (y, x3^, x4)."""

    def __init__(self, width: int = 128, blocks: int = 12, factor: int = 5, tail_width: int = 32):
        super().__init__()
        self.before = FrameNet(1, width, blocks, factor, tail_width)
        self.after = FrameNet(2, width, blocks, factor, tail_width)

    def forward(self, blurry: torch.Tensor, inner: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """inner: [x_mid]; returns (frame before, frame after)."""
        (mid,) = inner
        before = self.before(blurry, [mid]) + mid
        after = self.after(blurry, [before, mid]) + mid
        return before, after


class OuterPair(nn.Module):
    """phi_k: one network extrapolating outward on both sides from the ``k`` frames nearest the middle."""

    def __init__(self, k: int, width: int = 128, blocks: int = 8, factor: int = 5, tail_width: int = 32):
        super().__init__()
        self.k = k
        self.side = FrameNet(k, width, blocks, factor, tail_width)

    def forward(self, blurry: torch.Tensor, inner: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """inner: the 2k-1 frames already estimated, in time order; returns (frame before, frame after)."""
        c = len(inner) // 2
        if len(inner) != 2 * self.k - 1:
            raise BlurtoolsError(f"OuterPair {self.k}: expected {2 * self.k - 1} inner frames, got {len(inner)}")
        refs_before = [inner[c - j] for j in range(self.k)]
        refs_after = [inner[c + j] for j in range(self.k)]
        # Both sides in one batch: the same weights, mirrored inputs.
        b = blurry.shape[0]
        refs = [torch.cat((p, q), dim=0) for p, q in zip(refs_before, refs_after)]
        res = self.side(torch.cat((blurry, blurry), dim=0), refs) + refs[-1]
        return res[:b], res[b:]


class Jin(Model):
    """The cascade phi_4, phi_3,5, phi_2,6, phi_1,7 (and more pairs for more frames).

    Args:
        frames: odd number of output frames >= 3 (7 published; 9 adds phi_0,8).
        middle_width, middle_blocks, middle_tail: phi_4 features (144), residual blocks (12, a multiple
            of 4), full-resolution stage width (64).
        pair_width, first_pair_blocks, pair_blocks, pair_tail: pair-network features (128), blocks of
            each net of phi_3,5 (12) and of the later pairs (8), full-resolution stage width (32).

    Sub-modules: ``middle`` (phi_4) and ``pair1`` .. ``pairP`` (P = frames // 2, innermost first;
    ``pairs`` lists them). forward(blurry (B, 3, H, W) in [0, 1]) -> (B, frames, 3, H, W).

    Example::

        >>> m = Jin(middle_width=8, pair_width=8, middle_tail=4, pair_tail=4, middle_blocks=4,
        ...         first_pair_blocks=4, pair_blocks=4)
        >>> tuple(m(torch.rand(1, 3, 13, 11)).shape)
        (1, 7, 3, 13, 11)
    """

    kind = "video"
    frames = 7
    pad_multiple = 20         # space-to-depth by 4 (middle frame) and by 5 (the other frames)
    receptive_field = None  # instance norm: every output pixel depends on the whole input

    def __init__(self, frames: int = 7, middle_width: int = 144, middle_blocks: int = 12, middle_tail: int = 64,
                 pair_width: int = 128, first_pair_blocks: int = 12, pair_blocks: int = 8, pair_tail: int = 32):
        super().__init__()
        if frames < 3 or frames % 2 == 0:
            raise BlurtoolsError(f"Jin: frames must be odd and >= 3, got {frames}")
        self.frames = frames
        self.middle = MiddleNet(middle_width, middle_blocks, 4, middle_tail)
        self.pair1 = FirstPair(pair_width, first_pair_blocks, 5, pair_tail)
        for k in range(2, frames // 2 + 1):
            setattr(self, f"pair{k}", OuterPair(k, pair_width, pair_blocks, 5, pair_tail))

    @property
    def pairs(self) -> Tuple[nn.Module, ...]:
        """The pair networks, innermost first (pair k gives frames mid-k and mid+k)."""
        return tuple(getattr(self, f"pair{k}") for k in range(1, self.frames // 2 + 1))

    def extract(self, blurry: torch.Tensor, pairs: int | None = None) -> List[torch.Tensor]:
        """The middle frame and the first ``pairs`` pairs (all by default): 2*pairs+1 frames in time order."""
        if blurry.dim() != 4 or blurry.shape[1] != 3:
            raise BlurtoolsError(f"Jin: expected blurry (B, 3, H, W), got {tuple(blurry.shape)}")
        n = self.frames // 2 if pairs is None else pairs
        if not 0 <= n <= self.frames // 2:
            raise BlurtoolsError(f"Jin: pairs must be in 0..{self.frames // 2}, got {n}")
        y, (h, w) = pad_to_multiple(blurry, self.pad_multiple)
        seq = [self.middle(y)]
        for net in self.pairs[:n]:
            before, after = net(y, seq)
            seq = [before, *seq, after]
        return [f[..., :h, :w] for f in seq]

    def forward(self, blurry: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.extract(blurry), dim=1)
