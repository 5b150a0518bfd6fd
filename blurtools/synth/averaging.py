"""Blur by frame averaging in linear light: B = g( (1/N) sum_i g^-1(S_i) ) (Nah et al. 2017, 2019).

Frames arrive as uint8/uint16 arrays (H, W, 3) straight from the decoder. ``g^-1`` of an integer frame is a
table look-up (256 or 65536 entries), which is exact and much cheaper than a per-pixel ``pow``; the sum is
kept in float32 in (H, W, 3) layout so no transpose is paid per frame, and ``g`` is applied once.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from blurtools.errors import BlurtoolsError
from blurtools.ops.crf import Crf, from_linear, parse_crf, to_linear

_LUTS: Dict[Tuple[str, int, str], torch.Tensor] = {}


def linear_lut(crf: "str | Crf", bits: int, device: "torch.device | str" = "cpu") -> torch.Tensor:
    """Table ``g^-1(k / (2^bits - 1))`` for k = 0 .. 2^bits - 1, float32 on ``device`` (cached)."""
    c = parse_crf(crf)
    key = (str(c), bits, str(device))
    if key not in _LUTS:
        levels = torch.arange(2 ** bits, dtype=torch.float32) / float(2 ** bits - 1)
        _LUTS[key] = to_linear(levels, c).to(device)
    return _LUTS[key]


def frame_to_linear_hwc(frame: np.ndarray, crf: "str | Crf", device: "torch.device | str" = "cpu") -> torch.Tensor:
    """uint8/uint16 (H, W, 3) -> linear light float32 (H, W, 3) on ``device`` via the look-up table."""
    if frame.dtype == np.uint8:
        bits = 8
    elif frame.dtype == np.uint16:
        bits = 16
    else:
        raise BlurtoolsError(f"frame_to_linear_hwc: expected uint8 or uint16 frames, got {frame.dtype}")
    lut = linear_lut(crf, bits, device)
    if lut.device.type == "cpu":
        # numpy's take with small-integer indices is several times faster than torch indexing or pow on CPU
        return torch.from_numpy(np.take(lut.numpy(), frame))
    if not frame.flags.writeable:  # decoder buffers are read-only; torch wants writable memory
        frame = frame.copy()
    return lut[torch.from_numpy(np.ascontiguousarray(frame)).to(device).to(torch.int32)]


def frames_to_tensor(frames: Sequence[np.ndarray], device: "torch.device | str" = "cpu") -> torch.Tensor:
    """uint8/uint16 frames (H, W, 3) -> float32 display values (N, 3, H, W) in [0, 1]."""
    peak = 255.0 if frames[0].dtype == np.uint8 else 65535.0
    t = torch.from_numpy(np.stack(frames)).to(device)
    return t.permute(0, 3, 1, 2).to(torch.float32).div_(peak)


class LinearAccumulator:
    """Running sum of frames in linear light; memory is one float32 frame whatever the count.

    Example:
        >>> acc = LinearAccumulator("gamma:2.2")
        >>> for f in frames: acc.add_frame(f)            # uint8 (H, W, 3)
        >>> blurry = acc.display()                       # (3, H, W) in [0, 1]
    """

    def __init__(self, crf: "str | Crf" = "gamma", device: "torch.device | str" = "cpu"):
        self.crf = parse_crf(crf)
        self.device = torch.device(device)
        self.sum: Optional[torch.Tensor] = None  # (H, W, 3)
        self.count = 0

    def add_frame(self, frame: np.ndarray) -> None:
        """Add one uint8/uint16 (H, W, 3) display-space frame."""
        self.add_linear_hwc(frame_to_linear_hwc(frame, self.crf, self.device))

    def add_linear_hwc(self, lin: torch.Tensor, weight: float = 1.0) -> None:
        """Add a linear-light (H, W, 3) tensor with ``weight`` (counted as ``weight`` frames)."""
        if self.sum is None:
            self.sum = lin.to(self.device, torch.float32).clone() if weight == 1.0 else lin.float() * weight
        else:
            if lin.shape != self.sum.shape:
                raise BlurtoolsError(f"frame size {tuple(lin.shape)} differs from the window's {tuple(self.sum.shape)}")
            self.sum.add_(lin.to(self.device), alpha=weight)
        self.count += weight

    def add_linear(self, lin: torch.Tensor, weight: float = 1.0) -> None:
        """Add linear-light (3, H, W) or (K, 3, H, W) frames (each counted ``weight``)."""
        if lin.dim() == 3:
            lin = lin.unsqueeze(0)
        for f in lin:
            self.add_linear_hwc(f.permute(1, 2, 0), weight)

    def linear(self) -> torch.Tensor:
        """Mean in linear light, (3, H, W)."""
        if self.sum is None or self.count == 0:
            raise BlurtoolsError("LinearAccumulator: no frames added")
        return (self.sum / self.count).permute(2, 0, 1)

    def display(self) -> torch.Tensor:
        """``g`` of the mean: the blurry image (3, H, W) in [0, 1]."""
        return from_linear(self.linear(), self.crf)


def average_frames(frames: torch.Tensor, crf: "str | Crf" = "gamma") -> torch.Tensor:
    """Blur by averaging display-space frames in linear light.

    Args:
        frames: (N, C, H, W) or (B, N, C, H, W) float in [0, 1], display (camera-encoded) values.
        crf: the camera response ``g`` (``linear``, ``gamma``, ``gamma:G``, ``srgb``).
    Returns:
        (C, H, W) or (B, C, H, W): ``g(mean_i g^-1(frames_i))``.

    Example:
        >>> average_frames(torch.rand(7, 3, 32, 32), "srgb").shape
        torch.Size([3, 32, 32])
    """
    if frames.dim() not in (4, 5):
        raise BlurtoolsError(f"average_frames: expected (N, C, H, W) or (B, N, C, H, W), got {tuple(frames.shape)}")
    return from_linear(to_linear(frames, crf).mean(dim=-4), crf)
