"""The image files of deblur: reading an input (with its alpha channel) and writing an output (PNG with
provenance text and alpha, other formats through imageio, ``-`` for standard output)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from blurtools.errors import BlurtoolsError
from blurtools.io.images import array_to_tensor, read_array, tensor_to_array

log = logging.getLogger(__name__)


def encode_png(array: np.ndarray, text: Optional[Dict[str, str]] = None) -> bytes:
    """PNG bytes of a uint8 or uint16 (H, W) / (H, W, 1..4) array, with tEXt chunks ``text`` after IHDR."""
    from blurtools.io.png16 import encode_png as _encode

    return _encode(array, compress_level=6, text=text)


def read_input(path: Path) -> Tuple[torch.Tensor, int]:
    """Read an input image as float (C, H, W) in [0, 1] (C = 1 for gray, else 3) and its bit depth."""
    return _input_tensor(path, read_array(path))


def _input_tensor(path: Path, array: np.ndarray) -> Tuple[torch.Tensor, int]:
    if array.ndim < 2 or min(array.shape[:2]) == 0:
        raise BlurtoolsError(f"{path}: zero-size image ({'x'.join(str(s) for s in array.shape[:2][::-1])})")
    bits = 16 if array.dtype == np.uint16 else 8
    try:
        return array_to_tensor(array, keep_gray=True), bits
    except BlurtoolsError as exc:
        raise BlurtoolsError(f"{path}: {exc}") from None


def read_input_with_alpha(path: Path) -> Tuple[torch.Tensor, int, Optional[np.ndarray]]:
    """:func:`read_input` and the input's alpha channel ((H, W) uint8/uint16), None when it has none."""
    array = read_array(path)
    image, bits = _input_tensor(path, array)
    alpha = np.ascontiguousarray(array[..., -1]) if array.ndim == 3 and array.shape[2] in (2, 4) else None
    return image, bits, alpha


def write_output_image(path: Path, image: torch.Tensor, bits: int, text: Optional[Dict[str, str]] = None,
                       alpha: Optional[np.ndarray] = None) -> None:
    """Write float (C, H, W) in [0, 1] atomically: PNG with provenance text, other extensions via imageio.

    ``alpha`` (H, W) of the input's depth is kept as the PNG's alpha channel (the picture is deblurred, its
    transparency is the input's). 16 bits and alpha only fit PNG; other formats are written with 8 bits and
    no alpha (a warning says so).
    """
    from blurtools.io.atomic import atomic_write_bytes
    from blurtools.io.images import write_image

    if str(path) == "-" or path.suffix.lower() == ".png":
        array = tensor_to_array(image, bits)
        if alpha is not None:
            array = np.concatenate([array.reshape(*array.shape[:2], -1), alpha[..., None].astype(array.dtype)], axis=2)
        data = encode_png(array, text)
        if str(path) == "-":  # standard output: the PNG bytes
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            atomic_write_bytes(path, data)
        return
    if bits == 16:
        log.warning("%s: 16-bit input written with 8 bits (only .png holds 16)", path)
    if alpha is not None:
        log.warning("%s: the input's alpha channel is dropped (only .png keeps it)", path)
    write_image(path, image, bits=8)
