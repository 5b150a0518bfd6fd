"""Reading and writing still images as float tensors.

Any PNG/JPEG/TIFF/BMP a user has (8- or 16-bit; gray, gray+alpha, RGB, RGBA) is read into a float32
tensor (C, H, W) in [0, 1]; written back as 8- or 16-bit PNG (or any format imageio knows for 8-bit).
Alpha is dropped (blur physics concerns the colour channels); gray becomes RGB unless ``keep_gray``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from blurtools.errors import BlurtoolsError
from blurtools.io.atomic import atomic_path, atomic_write_bytes
from blurtools.io.arrays import IMAGE_EXTENSIONS, is_image_path, read_array  # noqa: F401 (re-exported)
from blurtools.io.png16 import encode_png16


def array_to_tensor(array: np.ndarray, keep_gray: bool = False) -> torch.Tensor:
    """uint8/uint16/bool/float array (H, W[, C]) -> float32 (C, H, W) in [0, 1], alpha dropped."""
    a = np.asarray(array)
    if a.dtype == np.uint8:
        scale = 255.0
    elif a.dtype == np.uint16:
        scale = 65535.0
    elif a.dtype == bool:
        a, scale = a.astype(np.uint8), 1.0
    elif np.issubdtype(a.dtype, np.integer):
        scale = float(np.iinfo(a.dtype).max)
    else:
        scale = 1.0
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] in (2, 4):  # drop alpha
        a = a[:, :, :-1]
    if a.shape[2] > 4:
        raise BlurtoolsError(f"unsupported channel count {a.shape[2]}")
    source = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)
    t = torch.empty(source.shape, dtype=torch.float32).copy_(source).div_(scale)
    if t.shape[0] == 1 and not keep_gray:
        t = t.expand(3, -1, -1).contiguous()
    return t if a.dtype.kind in "ub" else t.clamp_(0, 1)


def read_image(path: "str | Path", keep_gray: bool = False) -> torch.Tensor:
    """Read an image file as float32 (C, H, W) in [0, 1]: C = 3, or 1 for gray with ``keep_gray``.

    Example:
        >>> x = read_image("photo.jpg")      # (3, H, W)
    """
    array = read_array(path)
    if min(array.shape[:2]) == 0:
        raise BlurtoolsError(f"{path}: zero-size image")
    return array_to_tensor(array, keep_gray=keep_gray)


def read_image_bits(path: "str | Path") -> int:
    """Bit depth of the stored samples: 16 for 16-bit files, 8 otherwise."""
    array = read_array(path)
    return 16 if array.dtype == np.uint16 else 8


def tensor_to_array(image: torch.Tensor, bits: int = 8) -> np.ndarray:
    """float (C, H, W) in [0, 1] -> uint8/uint16 (H, W, C) or (H, W) for one channel, rounded."""
    if image.dim() != 3 or image.shape[0] not in (1, 3, 4):
        raise BlurtoolsError(f"expected an image tensor (C, H, W) with C in 1, 3, 4, got {tuple(image.shape)}")
    if bits not in (8, 16):
        raise BlurtoolsError(f"bit depth must be 8 or 16, got {bits}")
    peak = 255.0 if bits == 8 else 65535.0
    a = np.ascontiguousarray((image.detach().float().clamp(0, 1) * peak).round().cpu().numpy().transpose(1, 2, 0))
    a = a.astype(np.uint8 if bits == 8 else np.uint16)
    return a[:, :, 0] if a.shape[2] == 1 else a


def write_image(path: "str | Path", image: torch.Tensor, bits: int = 8) -> None:
    """Write float (C, H, W) in [0, 1] to ``path`` atomically; 16-bit needs a .png path.

    The extension picks the format (PNG, JPEG, TIFF, BMP...). The file appears only when complete.
    """
    path = Path(path)
    array = tensor_to_array(image, bits)
    if bits == 16:
        if path.suffix.lower() != ".png":
            raise BlurtoolsError(f"{path}: 16-bit output needs a .png file")
        atomic_write_bytes(path, encode_png16(array))
        return
    import imageio.v3 as iio

    with atomic_path(path) as tmp:
        iio.imwrite(tmp, array, extension=path.suffix.lower() or ".png")
