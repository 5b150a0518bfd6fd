"""Convolutional LSTM cell.

Shi et al., "Convolutional LSTM Network: A Machine Learning Approach for Precipitation Nowcasting",
NeurIPS 2015 (without the peephole terms, as most vision uses do). Purohit, Shah, Rajagopalan (CVPR 2019)
build their recurrent video encoder and decoder on it.

    i, f, o = sigmoid(.), g = tanh(.)  from  conv([x, h_prev])
    c = f * c_prev + i * g
    h = o * tanh(c)

Example::

    >>> import torch
    >>> cell = ConvLSTMCell(8, 16)
    >>> h, c = cell(torch.rand(2, 8, 5, 7))
    >>> tuple(h.shape), tuple(c.shape)
    ((2, 16, 5, 7), (2, 16, 5, 7))
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from blurtools.errors import BlurtoolsError

State = Tuple[torch.Tensor, torch.Tensor]


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step.

    Args:
        in_channels: channels of the input x.
        hidden_channels: channels of h and c.
        kernel_size: odd size of the gate convolution (same padding).

    Call: ``h, c = cell(x, state)`` with x (B, in_channels, H, W) and state (h, c) of
    (B, hidden_channels, H, W) each, or None for zeros.
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size % 2 != 1:
            raise BlurtoolsError(f"ConvLSTMCell: kernel_size must be odd, got {kernel_size}")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.gates = nn.Conv2d(in_channels + hidden_channels, 4 * hidden_channels, kernel_size,
                               padding=kernel_size // 2)
        # Forget-gate bias 1 keeps the memory open early in training (Jozefowicz et al. 2015).
        with torch.no_grad():
            self.gates.bias.zero_()
            self.gates.bias[hidden_channels:2 * hidden_channels].fill_(1.0)

    def zero_state(self, x: torch.Tensor) -> State:
        """(h, c) of zeros matching x's batch, size, dtype and device."""
        z = x.new_zeros(x.shape[0], self.hidden_channels, x.shape[-2], x.shape[-1])
        return z, z.clone()

    def forward(self, x: torch.Tensor, state: Optional[State] = None) -> State:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise BlurtoolsError(f"ConvLSTMCell: expected (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        h, c = self.zero_state(x) if state is None else state
        if h.shape[-2:] != x.shape[-2:] or h.shape[1] != self.hidden_channels:
            raise BlurtoolsError(f"ConvLSTMCell: state {tuple(h.shape)} does not fit input {tuple(x.shape)}")
        i, f, o, g = self.gates(torch.cat((x, h), dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c
