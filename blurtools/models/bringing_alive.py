"""Purohit, Shah, Rajagopalan: "Bringing Alive Blurred Moments", CVPR 2019.

A video autoencoder learns how frames move: the recurrent video encoder (RVE, ``video_encoder``) reads
the sharp frames through convolution blocks of 16, 32, 64, 128 maps and a ConvLSTM and ends in a state;
the recurrent video decoder (RVD, ``decoder``) starts its own ConvLSTM from that state and, one frame at
a time, encodes the central sharp frame with the frame it made last (flow encoder), updates the ConvLSTM,
decodes flows at four scales (1/8, 1/4, 1/2, 1, coarse to fine, with skips from the flow encoder), and
warps the central frame by the full-resolution flow (a per-pixel bilinear transformer, ``grid_sample``)
into the next frame. The blurred-image encoder (BIE, ``blur_encoder``: 7 convolutions with batch norm
and leaky ReLU) maps the blurry image and the central sharp frame into that same state, so the decoder
turns a blurry photo into its video. At test time the central frame comes from the deblurring module
``dm`` (Purohit et al.'s DenseDeblurModule, :mod:`blurtools.models.dm`).

The number of frames is free: the encoder reads any N and the decoder unrolls any N (``self.frames`` is
what forward() makes). Inputs are padded to a multiple of 16 (four stride-2 levels) and cropped back.

Layer counts of the BIE and the ConvLSTM kernel size beyond what the paper states are our choices
(documented on the classes); the published whole (DM + video networks) is about 34 MB.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from blurtools.errors import BlurtoolsError
from blurtools.models.contract import Model
from blurtools.models.convlstm import ConvLSTMCell, State
from blurtools.models.dm import DenseDeblurModule
from blurtools.ops.geometry import pad_to_multiple
from blurtools.ops.warp import warp  # the per-pixel warping transformer

MULTIPLE = 16


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), _act())


class FrameEncoder(nn.Module):
    """Conv blocks (stride-2 conv + conv, leaky ReLU) of ``widths`` maps; returns the map after each block."""

    def __init__(self, in_channels: int, widths: Sequence[int] = (16, 32, 64, 128)):
        super().__init__()
        chans = (in_channels, *widths)
        self.blocks = nn.ModuleList(nn.Sequential(_conv(chans[i], chans[i + 1], 2), _conv(chans[i + 1], chans[i + 1]))
                                    for i in range(len(widths)))

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


class VideoEncoder(nn.Module):
    """RVE: frames (B, N, 3, H, W) -> ConvLSTM state (h, c), each (B, hidden, H/16, W/16)."""

    def __init__(self, widths: Sequence[int] = (16, 32, 64, 128), hidden: int = 128, kernel: int = 3):
        super().__init__()
        self.frame_encoder = FrameEncoder(3, widths)
        self.cell = ConvLSTMCell(widths[-1], hidden, kernel)

    def forward(self, frames: torch.Tensor) -> State:
        if frames.dim() != 5 or frames.shape[2] != 3:
            raise BlurtoolsError(f"VideoEncoder: expected (B, N, 3, H, W), got {tuple(frames.shape)}")
        b, n = frames.shape[:2]
        # The per-frame convolutions run as one batch; only the ConvLSTM is sequential.
        feats = self.frame_encoder(frames.flatten(0, 1))[-1]
        feats = feats.view(b, n, *feats.shape[1:])
        state = None
        for t in range(n):
            state = self.cell(feats[:, t], state)
        return state


class FlowDecoder(nn.Module):
    """ConvLSTM output at 1/16 -> flows at 1/8, 1/4, 1/2, 1 (coarse to fine, each refining the last).

    Skips: flow-encoder maps at 1/8, 1/4, 1/2 and the encoder's input at full size. Each flow is in pixels
    of its own scale. The flow heads start small, so an untrained decoder nearly copies the central frame.
    """

    def __init__(self, widths: Sequence[int] = (16, 32, 64, 128), hidden: int = 128, input_channels: int = 6):
        super().__init__()
        if len(widths) != 4:
            raise BlurtoolsError(f"FlowDecoder: four encoder widths expected, got {tuple(widths)}")
        outs = (widths[2], widths[1], widths[0], widths[0])  # at 1/8, 1/4, 1/2, 1
        skips = (widths[2], widths[1], widths[0], input_channels)
        prev = hidden
        self.levels = nn.ModuleList()
        self.heads = nn.ModuleList()
        for i, (out, skip) in enumerate(zip(outs, skips)):
            cin = prev + skip + (2 if i else 0)
            self.levels.append(nn.Sequential(_conv(cin, out), _conv(out, out)))
            head = nn.Conv2d(out, 2, 3, padding=1)
            # Small, not zero: a zero head would leave every layer before it without gradient at first.
            with torch.no_grad():
                head.weight.mul_(0.1)
                head.bias.zero_()
            self.heads.append(head)
            prev = out

    def forward(self, h: torch.Tensor, skips: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """skips: [map at 1/8, 1/4, 1/2, input at 1]; returns flows fine to coarse: [1, 1/2, 1/4, 1/8]."""
        x, flow, flows = h, None, []
        for level, head, skip in zip(self.levels, self.heads, skips):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            parts = [x, skip]
            if flow is not None:
                flow = 2.0 * F.interpolate(flow, size=skip.shape[-2:], mode="bilinear", align_corners=False)
                parts.append(flow)
            x = level(torch.cat(parts, dim=1))
            flow = head(x) if flow is None else flow + head(x)
            flows.append(flow)
        return flows[::-1]


class VideoDecoder(nn.Module):
    """RVD: (state, central frame (B, 3, H, W), N) -> N frames warped from the central one, and their flows.

    H, W must be multiples of 16 (the model pads). Step t encodes [centre, frame t-1] (frame -1 = centre).
    """

    def __init__(self, widths: Sequence[int] = (16, 32, 64, 128), hidden: int = 128, kernel: int = 3):
        super().__init__()
        self.flow_encoder = FrameEncoder(6, widths)
        self.cell = ConvLSTMCell(widths[-1], hidden, kernel)
        self.flow_decoder = FlowDecoder(widths, hidden, 6)

    def forward(self, state: State, centre: torch.Tensor, frames: int) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Returns frames (B, N, 3, H, W) and flows [(B, N, 2, H/s, W/s) for s = 1, 2, 4, 8]."""
        if frames < 1:
            raise BlurtoolsError(f"VideoDecoder: frames must be >= 1, got {frames}")
        if centre.shape[-1] % MULTIPLE or centre.shape[-2] % MULTIPLE:
            raise BlurtoolsError(f"VideoDecoder: H, W must be multiples of {MULTIPLE}, got {tuple(centre.shape)}")
        prev, out, flows = centre, [], []
        for _ in range(frames):
            inp = torch.cat((centre, prev), dim=1)
            f1, f2, f3, f4 = self.flow_encoder(inp)
            state = self.cell(f4, state)
            fl = self.flow_decoder(state[0], (f3, f2, f1, inp))
            prev = warp(centre, fl[0])
            out.append(prev)
            flows.append(fl)
        pyramid = [torch.stack([f[s] for f in flows], dim=1) for s in range(len(flows[0]))]
        return torch.stack(out, dim=1), pyramid


class BlurredImageEncoder(nn.Module):
    """BIE: [blurry, central frame] (B, 6, H, W) -> decoder state (h, c) at 1/16.

    Seven 3x3 convolutions; the first six with batch norm and leaky ReLU (strides 2, 2, 1, 2, 1, 2 over
    ``widths``), the seventh a plain projection to 2*hidden maps split into h (tanh, the range of a
    ConvLSTM output) and c.
    """

    def __init__(self, hidden: int = 128, widths: Sequence[int] = (32, 64, 64, 128, 128, 256)):
        super().__init__()
        if len(widths) != 6:
            raise BlurtoolsError(f"BlurredImageEncoder: six widths expected, got {tuple(widths)}")
        strides = (2, 2, 1, 2, 1, 2)
        layers, cin = [], 6
        for cout, s in zip(widths, strides):
            layers += [nn.Conv2d(cin, cout, 3, stride=s, padding=1, bias=False), nn.BatchNorm2d(cout), _act()]
            cin = cout
        layers.append(nn.Conv2d(cin, 2 * hidden, 3, padding=1))
        self.net = nn.Sequential(*layers)
        self.hidden = hidden

    def forward(self, blurry: torch.Tensor, centre: torch.Tensor) -> State:
        h, c = self.net(torch.cat((blurry, centre), dim=1)).split(self.hidden, dim=1)
        return torch.tanh(h), c


class BringingAlive(Model):
    """The full model: forward(blurry (B, 3, H, W) in [0, 1]) -> (B, frames, 3, H, W).

    Args:
        frames: frames forward() makes (any N >= 1; 7 by default).
        widths: the four conv-block widths of the video encoder and the flow encoder (16, 32, 64, 128).
        hidden: ConvLSTM state channels (128).
        kernel: ConvLSTM gate kernel size (3).
        bie_widths: widths of the BIE's first six layers.
        dm_args: keyword arguments for :class:`blurtools.models.dm.DenseDeblurModule` (None = its
            published configuration).

    Sub-modules: ``dm``, ``video_encoder`` (RVE), ``decoder`` (RVD), ``blur_encoder`` (BIE).
    """

    kind = "video"
    frames = 7
    pad_multiple = MULTIPLE   # four stride-2 levels
    receptive_field = None  # measured: every output pixel depends on the whole input

    def __init__(self, frames: int = 7, widths: Sequence[int] = (16, 32, 64, 128), hidden: int = 128,
                 kernel: int = 3, bie_widths: Sequence[int] = (32, 64, 64, 128, 128, 256),
                 dm_args: Optional[dict] = None):
        super().__init__()
        if frames < 1:
            raise BlurtoolsError(f"BringingAlive: frames must be >= 1, got {frames}")
        self.frames = frames
        self.dm = DenseDeblurModule(**(dm_args or {}))
        self.video_encoder = VideoEncoder(widths, hidden, kernel)
        self.decoder = VideoDecoder(widths, hidden, kernel)
        self.blur_encoder = BlurredImageEncoder(hidden, bie_widths)

    @staticmethod
    def pad(x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Pad (..., C, H, W) to multiples of 16; returns (padded, (H, W))."""
        lead = x.shape[:-3]
        p, hw = pad_to_multiple(x.reshape(-1, *x.shape[-3:]), MULTIPLE)
        return p.reshape(*lead, *p.shape[-3:]), hw

    def animate(self, blurry: torch.Tensor, centre: torch.Tensor, frames: Optional[int] = None
                ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """BIE + decoder on padded inputs (H, W multiples of 16): frames (B, N, 3, H, W) and flow pyramid."""
        state = self.blur_encoder(blurry, centre)
        return self.decoder(state, centre, self.frames if frames is None else frames)

    def forward(self, blurry: torch.Tensor) -> torch.Tensor:
        if blurry.dim() != 4 or blurry.shape[1] != 3:
            raise BlurtoolsError(f"BringingAlive: expected blurry (B, 3, H, W), got {tuple(blurry.shape)}")
        centre = self.dm(blurry)
        y, (h, w) = self.pad(blurry)
        c, _ = self.pad(centre)
        frames, _ = self.animate(y, c)
        return frames[..., :h, :w]
