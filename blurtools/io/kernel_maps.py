"""Writing a kernel-basis estimate: the basis kernels, the mixing maps, and a picture of them for people.

For an input ``STEM`` a kernel-basis network (the project's ``kernel-basis``, Carbajal et al.'s released
``two-heads``) estimated K basis kernels and K per-pixel mixing maps; :func:`write_kernel_maps` writes:

* ``STEM.kernels.npy``: float32 (K, k, k), the network's basis as it outputs it;
* ``STEM.mixing.npy``: float32 (K, H, W), the mixing maps at the input's size (summing to 1 over K);
* ``STEM.kernels.json``: how they were made (tool, version, options, model) and the kernels' orientation:
  ``"correlation"`` (blurry = sum_k mixing_k * (sharp correlated with kernel_k): the released network) or
  ``"convolution"`` (the kernels are point-spread functions: the project's network);
* ``STEM.kernels.png``: the K kernels as point-spread functions (each scaled to its own peak) in a grid,
  the mixing maps in a grid of the same order, and the image, dimmed to gray, with the local blur
  ``sum_k mixing_k(p) kernel_k`` drawn in red at a lattice of points ``p``.

Every file is written atomically.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

from blurtools.errors import BlurtoolsError
from blurtools.io.atomic import atomic_write_bytes, atomic_write_text
from blurtools.io.contact_sheet import thumbnail, to_rgb8

__all__ = ["write_kernel_maps", "kernel_picture", "ORIENTATIONS"]

ORIENTATIONS = ("correlation", "convolution")
_GAP = 6
_BACKGROUND = 28
_FIELD_SIDE = 1024      # the kernel field is drawn on the image scaled to at most this many pixels


def _grid(tiles: List[np.ndarray], columns: int) -> np.ndarray:
    """uint8 (h, w) tiles of one size in rows of ``columns``, separated by ``_GAP`` pixels."""
    th, tw = tiles[0].shape
    rows = math.ceil(len(tiles) / columns)
    out = np.full((rows * (th + _GAP) + _GAP, columns * (tw + _GAP) + _GAP), _BACKGROUND, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        out[_GAP + r * (th + _GAP):_GAP + r * (th + _GAP) + th, _GAP + c * (tw + _GAP):_GAP + c * (tw + _GAP) + tw] = tile
    return out


def _psfs(kernels: np.ndarray, orientation: str) -> np.ndarray:
    """(K, k, k) as point-spread functions (correlation kernels flipped on both axes)."""
    return kernels[:, ::-1, ::-1] if orientation == "correlation" else kernels


def _kernel_tiles(psfs: np.ndarray, scale: int) -> List[np.ndarray]:
    peaks = psfs.reshape(len(psfs), -1).max(1).clip(min=1e-12)
    tiles = (psfs / peaks[:, None, None] * 255 + 0.5).astype(np.uint8)
    return [np.kron(t, np.ones((scale, scale), np.uint8)) for t in tiles]


def _mixing_tiles(mixing: np.ndarray, side: int) -> List[np.ndarray]:
    from PIL import Image

    k, h, w = mixing.shape
    f = side / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return [np.asarray(Image.fromarray((m.clip(0, 1) * 255 + 0.5).astype(np.uint8)).resize(size, Image.BILINEAR))
            for m in mixing]


def _field(image: Any, psfs: np.ndarray, mixing: np.ndarray) -> np.ndarray:
    """The image dimmed to gray with the local point-spread function drawn in red at a lattice of points."""
    k = psfs.shape[-1]
    h, w = mixing.shape[-2:]
    small = thumbnail(image, min(h, max(k * 3, round(h * min(1.0, _FIELD_SIDE / max(h, w))))))
    gray = small.astype(np.float32).mean(2) / 255 * 0.6 + 0.4
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    sh, sw = gray.shape
    step = 2 * k
    for y in range(k, sh - k // 2, step):
        for x in range(k, sw - k // 2, step):
            py, px = min(h - 1, round(y * h / sh)), min(w - 1, round(x * w / sw))
            local = np.tensordot(mixing[:, py, px], psfs, axes=1)
            local = (local - local.min()) / max(float(local.max() - local.min()), 1e-12)
            y0, x0 = y - k // 2, x - k // 2
            patch = rgb[y0:y0 + k, x0:x0 + k]
            hh, ww = patch.shape[:2]
            a = local[:hh, :ww, None]
            patch[:] = patch * (1 - a) + np.array([1.0, 0.1, 0.1]) * a
    return (rgb.clip(0, 1) * 255 + 0.5).astype(np.uint8)


def kernel_picture(image: Any, kernels: np.ndarray, mixing: np.ndarray, orientation: str) -> np.ndarray:
    """uint8 (h, w, 3): the basis kernels (top left), the mixing maps (top right), the kernel field (below).

    Args:
        image: the blurry image, float (3, H, W) in [0, 1] (tensor or array) or uint8 (H, W, 3).
        kernels: (K, k, k); mixing: (K, H, W); orientation: one of :data:`ORIENTATIONS`.
    """
    columns = math.ceil(math.sqrt(len(kernels)))
    psfs = _psfs(np.asarray(kernels, np.float32), orientation)
    scale = max(1, 96 // psfs.shape[-1])
    top_left = _grid(_kernel_tiles(psfs, scale), columns)
    top_right = _grid(_mixing_tiles(np.asarray(mixing, np.float32), psfs.shape[-1] * scale), columns)
    field = _field(image, psfs, np.asarray(mixing, np.float32))
    width = max(top_left.shape[1] + top_right.shape[1], field.shape[1] + 2 * _GAP)
    height = max(top_left.shape[0], top_right.shape[0]) + field.shape[0] + _GAP
    canvas = np.full((height, width, 3), _BACKGROUND, np.uint8)
    canvas[:top_left.shape[0], :top_left.shape[1]] = top_left[:, :, None]
    canvas[:top_right.shape[0], top_left.shape[1]:top_left.shape[1] + top_right.shape[1]] = top_right[:, :, None]
    y = max(top_left.shape[0], top_right.shape[0])
    canvas[y:y + field.shape[0], _GAP:_GAP + field.shape[1]] = field
    return canvas


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array, dtype=np.float32))
    return buf.getvalue()


def write_kernel_maps(folder: "str | Path", stem: str, image: Any, kernels: np.ndarray, mixing: np.ndarray,
                      orientation: str, record: Dict[str, Any]) -> List[Path]:
    """Write ``folder/stem.kernels.npy``, ``.mixing.npy``, ``.kernels.json`` and ``.kernels.png``.

    Args:
        image: the blurry input (float (3, H, W) in [0, 1]); kernels: (K, k, k); mixing: (K, H, W).
        orientation: "correlation" or "convolution" (recorded, and used to draw point-spread functions).
        record: provenance (tool, version, options, model, source) stored in the JSON file.

    Returns:
        The four paths written.
    """
    kernels, mixing = np.asarray(kernels), np.asarray(mixing)
    if kernels.ndim != 3 or mixing.ndim != 3 or kernels.shape[0] != mixing.shape[0]:
        raise BlurtoolsError(f"{stem}: kernels (K, k, k) and mixing (K, H, W) expected, got {kernels.shape} and "
                             f"{mixing.shape}")
    if orientation not in ORIENTATIONS:
        raise BlurtoolsError(f"{stem}: kernel orientation must be one of {ORIENTATIONS}, got {orientation!r}")
    folder = Path(folder)
    paths = [folder / f"{stem}.kernels.npy", folder / f"{stem}.mixing.npy", folder / f"{stem}.kernels.json",
             folder / f"{stem}.kernels.png"]
    atomic_write_bytes(paths[0], _npy_bytes(kernels))
    atomic_write_bytes(paths[1], _npy_bytes(mixing))
    doc = {**record, "orientation": orientation, "kernels": {"file": paths[0].name, "shape": list(kernels.shape)},
           "mixing": {"file": paths[1].name, "shape": list(mixing.shape)}}
    atomic_write_text(paths[2], json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    from blurtools.io.png16 import encode_png

    picture = kernel_picture(to_rgb8(image), kernels, mixing, orientation)
    atomic_write_bytes(paths[3], encode_png(picture, text={"Software": str(record.get("tool", "blurtools"))}))
    return paths
