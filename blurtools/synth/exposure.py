"""An exposure: the sharp frames a sample keeps and the light that reaches the sensor while it is open.

The two synthesis tools differ only in what they do with the light: blur-synth averages it, phase-code
convolves each instant with the coded lens's PSF first. Both see the same :class:`Exposure`:

- ``sharp``: the N display-space frames saved as the sample's ground truth (uint8/uint16 (H, W, 3)).
- ``dense()``: the L linear-light frames (3, H, W) spanning the exposure, in time order. Without temporal
  upsampling L = N; with ``--interp M`` frames are interpolated between neighbours and L = (N-1) M + 1
  (REDS-style: the exposure runs from the first to the last captured frame).
- ``mean()``: the average of ``dense()`` when it has a cheaper or more exact closed form (the LUT path
  for plain windows; the full trajectory kernel for still photos).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch

from blurtools.errors import BlurtoolsError, UsageError
from blurtools.ops.crf import Crf, parse_crf, to_linear
from blurtools.synth.averaging import LinearAccumulator, frame_to_linear_hwc, frames_to_tensor

INTERP_METHODS = ("flow", "linear")


@dataclass
class Exposure:
    """Sharp frames plus the light of the exposure (see the module docstring)."""

    sharp: List[np.ndarray]
    length: int
    dense: Callable[[], Iterator[torch.Tensor]]
    mean: Optional[Callable[[], torch.Tensor]] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    files: Dict[str, bytes] = field(default_factory=dict)

    def average(self) -> torch.Tensor:
        """Mean linear light over the exposure, (3, H, W)."""
        if self.mean is not None:
            return self.mean()
        total, count = None, 0
        for frame in self.dense():
            total = frame.clone() if total is None else total.add_(frame)
            count += 1
        if count != self.length:
            raise BlurtoolsError(f"exposure produced {count} frames, expected {self.length}")
        return total / count


def _interpolate(f0: torch.Tensor, f1: torch.Tensor, ts: Sequence[float], method: str) -> torch.Tensor:
    """Frames at fractional times ``ts`` between display frames f0 and f1 (3, H, W) -> (T, 3, H, W)."""
    if method == "linear":
        t = torch.tensor(list(ts), dtype=f0.dtype, device=f0.device).view(-1, 1, 1, 1)
        return (1 - t) * f0.unsqueeze(0) + t * f1.unsqueeze(0)
    from blurtools.ops.flow import interpolate_frames

    out = interpolate_frames(f0.unsqueeze(0), f1.unsqueeze(0), list(ts), method=method)
    if isinstance(out, (list, tuple)):
        out = torch.stack([o.reshape(f0.shape) for o in out])
    return out.reshape(len(ts), *f0.shape).clamp(0, 1)


def window_exposure(frames: Sequence[np.ndarray], crf: "str | Crf", interp: int = 1, interp_method: str = "flow",
                    device: "torch.device | str" = "cpu") -> Exposure:
    """The exposure of N consecutive video frames (uint8/uint16 (H, W, 3)), upsampled ``interp`` times.

    With ``interp`` M > 1, M - 1 frames are interpolated between each pair of neighbours, in display
    space (optical flow is estimated on what the camera recorded), then mapped to linear light.
    ``linear`` interpolation blends in linear light (a cross-fade of the light, no motion).
    """
    c = parse_crf(crf)
    frames = list(frames)
    if interp < 1:
        raise UsageError(f"--interp {interp}: must be >= 1")
    if interp_method not in INTERP_METHODS:
        raise UsageError(f"--interp-method {interp_method}: choose from {', '.join(INTERP_METHODS)}")
    dev = torch.device(device)

    def plain() -> Iterator[torch.Tensor]:
        for f in frames:
            yield frame_to_linear_hwc(f, c, dev).permute(2, 0, 1)

    if interp == 1:
        def mean() -> torch.Tensor:
            acc = LinearAccumulator(c, dev)
            for f in frames:
                acc.add_frame(f)
            return acc.linear()

        return Exposure(frames, len(frames), plain, mean)

    ts = [j / interp for j in range(1, interp)]

    def dense() -> Iterator[torch.Tensor]:
        prev = None
        for f in frames:
            cur = frames_to_tensor([f], dev)[0]
            if prev is not None:
                if interp_method == "linear":
                    a, b = to_linear(prev, c), to_linear(cur, c)
                    for t in ts:
                        yield (1 - t) * a + t * b
                else:
                    for mid in _interpolate(prev, cur, ts, interp_method):
                        yield to_linear(mid, c)
            yield to_linear(cur, c)
            prev = cur

    return Exposure(frames, (len(frames) - 1) * interp + 1, dense, extra={"interp": interp})
