"""Reading sample-set images in their native depth for packing and for the sample-set dataset.

PNG sizes and bit depths come from the file header (32 bytes), so planning a pack of thousands of 720p
samples costs milliseconds; pixels come from :func:`blurtools.io.images.read_array` as uint8/uint16.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np

from blurtools.errors import BlurtoolsError
from blurtools.io.arrays import read_array
from blurtools.io.png16 import SIGNATURE, png_header
from blurtools.io.sampleset import Sample, SampleSet


def probe(path: "str | Path") -> Tuple[int, int, np.dtype]:
    """(height, width, dtype) of an image file without decoding it when it is a PNG.

    Raises:
        BlurtoolsError: naming the file when it is missing or unreadable.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except FileNotFoundError:
        raise BlurtoolsError(f"{path}: no such file") from None
    except OSError as exc:
        raise BlurtoolsError(f"{path}: cannot read ({exc.strerror})") from None
    if head[:8] == SIGNATURE:
        try:
            w, h, depth, _, _ = png_header(head)
        except Exception:
            raise BlurtoolsError(f"{path}: not a valid PNG file") from None
        return h, w, np.dtype(np.uint16 if depth == 16 else np.uint8)
    a = read_array(path)
    return a.shape[0], a.shape[1], a.dtype


def to_rgb(array: np.ndarray, path: "str | Path") -> np.ndarray:
    """(H, W[, C]) uint8/uint16 -> (H, W, 3) of the same dtype: gray repeated, alpha dropped."""
    if array.dtype not in (np.uint8, np.uint16):
        raise BlurtoolsError(f"{path}: {array.dtype} pixels; packs hold 8- or 16-bit images")
    if array.ndim == 2:
        array = array[:, :, None]
    c = array.shape[2]
    if c in (2, 4):
        array = array[:, :, :-1]
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    if array.shape[2] != 3:
        raise BlurtoolsError(f"{path}: {c} channels; expected gray or RGB (with or without alpha)")
    return array


def read_rgb(path: "str | Path") -> np.ndarray:
    """Read an image file as (H, W, 3) uint8/uint16, its native depth."""
    return to_rgb(read_array(path), path)


def read_sample_arrays(sset: SampleSet, sample: Sample, frames: "Sequence[int] | None" = None,
                       box: "Tuple[int, int, int, int] | None" = None) -> Tuple[np.ndarray, np.ndarray]:
    """One sample's blurry (H, W, 3) and sharp (K, H, W, 3) arrays, native dtype, optionally cropped.

    Args:
        frames: indices of the sharp frames to read (all when None).
        box: (y, x, h, w) crop applied after decoding.
    Raises:
        BlurtoolsError: naming the set, the sample and the file for a missing or unreadable file, and
            for frames whose size or bit depth differ from the blurry image.
    """
    sset.check_files(sample)
    paths: List[Path] = list(sample.sharp) if frames is None else [sample.sharp[k] for k in frames]
    try:
        blurry = read_rgb(sample.blurry)
        sharp = [read_rgb(p) for p in paths]
    except BlurtoolsError as exc:
        raise BlurtoolsError(f"{sset.root}: sample {sample.id}: {exc}") from None
    for p, frame in zip(paths, sharp):
        if frame.shape != blurry.shape or frame.dtype != blurry.dtype:
            raise BlurtoolsError(f"{sset.root}: sample {sample.id}: {p.name} is {frame.shape[1]}x{frame.shape[0]} "
                                 f"{frame.dtype}, the blurry image is {blurry.shape[1]}x{blurry.shape[0]} {blurry.dtype}")
    if box is not None:
        y, x, h, w = box
        blurry = blurry[y:y + h, x:x + w]
        sharp = [s[y:y + h, x:x + w] for s in sharp]
    return np.ascontiguousarray(blurry), np.stack(sharp)
