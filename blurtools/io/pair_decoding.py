"""Decoding the image pairs of a score run ahead of their scoring, in threads, without torch.

``blurtools score`` starts :func:`decode_pairs` as soon as the pairs are matched; the scorer (which needs
torch, a couple of seconds to load) then takes the decoded pairs in order. Memory stays flat in the number
of pairs: at most :data:`DECODE_AHEAD_BYTES` of decoded images wait (64 pairs at most, and never fewer
than the decoding threads plus one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from blurtools.errors import BlurtoolsError
from blurtools.io.arrays import read_array
from blurtools.io.pairs import Pair
from blurtools.io.prefetch import Prefetch, prefetch

#: Decoded bytes that may wait for the scorer: 46 pairs of 1280x720 RGB, 4 pairs of 4K RGB 16-bit.
DECODE_AHEAD_BYTES = 256 << 20
#: Most pairs decoded ahead, however small.
DECODE_AHEAD_PAIRS = 64


@dataclass(frozen=True)
class DecodedPair:
    """A pair of images as decoded: ``pred`` and ``gt`` are native arrays (H, W[, C]) of one size, uint8,
    uint16 or float (see :func:`blurtools.io.arrays.read_array`)."""

    pair: Pair
    pred: np.ndarray
    gt: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.pred.nbytes + self.gt.nbytes)


def decode_pair(pair: Pair) -> DecodedPair:
    """Decode one image pair; raises BlurtoolsError naming the file that cannot be read, or both files
    when their sizes differ."""
    a, b = read_array(pair.pred), read_array(pair.gt)  # type: ignore[arg-type]
    if a.shape[:2] != b.shape[:2]:
        raise BlurtoolsError(f"{pair.pred}: size {a.shape[1]}x{a.shape[0]} differs from its ground truth "
                             f"{pair.gt} ({b.shape[1]}x{b.shape[0]})")
    return DecodedPair(pair, a, b)


def decode_pairs(pairs: Iterable[Pair], workers: int) -> Prefetch:
    """The pairs decoded by ``workers`` threads, as :class:`DecodedPair` in order; the decoding starts now (a
    decoding error is raised when its pair's turn comes; ``close()`` stops it early)."""
    return prefetch(decode_pair, pairs, workers, ahead=DECODE_AHEAD_PAIRS, max_bytes=DECODE_AHEAD_BYTES,
                    nbytes=lambda d: d.nbytes)
