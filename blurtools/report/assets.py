"""The pictures of a report: small embedded thumbnails, full-size images and error maps beside the page.

Thumbnails are JPEG data URIs inside the HTML (about 20 kB each at 320 px), so the page shows every sample
without any other file. Full-size images are loaded only when the viewer opens a sample: by default they
are copied into the folder ``NAME_files/`` beside ``NAME.html`` (the page plus that folder can be moved
anywhere); ``link`` refers to the originals by relative path instead; ``none`` keeps the page alone (the
viewer then zooms the thumbnails). Error maps |A - GT| are written there too, as PNG.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
from pathlib import Path
from typing import Optional

import numpy as np

from blurtools.io.arrays import read_array

IMAGE_MODES = ("copy", "link", "none")
#: Formats every browser shows; other files are converted to PNG for the page.
BROWSER_FORMATS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")
THUMB_SIDE = 320
#: Error maps saturate at this fraction of the peak (|A - GT| >= 1/8 of the range is white).
ERROR_FULL_SCALE = 0.125

# A perceptually ordered dark-to-bright map (black, purple, red, orange, pale yellow), 256 entries.
_ANCHORS = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21],
                     [250, 193, 39], [252, 255, 164]], dtype=np.float64)
ERROR_LUT = np.stack([np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_ANCHORS)), _ANCHORS[:, c])
                      for c in range(3)], axis=1).round().astype(np.uint8)


def to_rgb8(array: np.ndarray) -> np.ndarray:
    """Any decoded image (H, W[, C]) -> uint8 (H, W, 3) for display: alpha dropped, gray repeated, 16-bit scaled."""
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] in (2, 4):
        a = a[:, :, :-1]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype == np.uint16:
        return (a.astype(np.float32) / 257.0).round().astype(np.uint8)
    return (np.clip(a.astype(np.float32), 0, 1) * 255).round().astype(np.uint8)


def thumbnail_uri(rgb: np.ndarray, side: int = THUMB_SIDE, quality: int = 82) -> str:
    """uint8 (H, W, 3) -> ``data:image/jpeg;base64,...`` at most ``side`` px on its longer side."""
    from PIL import Image

    im = Image.fromarray(rgb)
    im.thumbnail((side, side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def error_map(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """|pred - gt| averaged over channels, coloured with ERROR_LUT: uint8 (H, W, 3).

    Both uint8 (H, W, 3) display images; black means equal, white an error of >= ERROR_FULL_SCALE of the range.
    """
    diff = np.abs(pred.astype(np.int16) - gt.astype(np.int16)).mean(axis=2)
    index = np.clip(diff * (255.0 / (255.0 * ERROR_FULL_SCALE)), 0, 255).astype(np.uint8)
    return ERROR_LUT[index]


def png_bytes(rgb: np.ndarray, level: int = 3) -> bytes:
    """uint8 (H, W, 3) -> PNG file bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


class AssetFolder:
    """Where the full-size pictures of one page go: ``files_dir`` (built under a temporary name first).

    ``page_dir`` is the folder of the HTML file; every reference handed out is relative to it.
    """

    def __init__(self, page_dir: Path, files_dir: Path, mode: str):
        if mode not in IMAGE_MODES:
            raise ValueError(f"image mode {mode!r}: choose one of {', '.join(IMAGE_MODES)}")
        self.page_dir, self.files_dir, self.mode = page_dir, files_dir, mode
        self.count = 0

    def _rel(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.page_dir)).as_posix()

    def write(self, name: str, data: bytes) -> str:
        """Store ``data`` as files_dir/name; the page's relative reference to it."""
        target = self.files_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        self.count += 1
        return self._rel(target)

    def full_size(self, source: Path, name: str, rgb: Optional[np.ndarray]) -> Optional[str]:
        """A reference to the full-size picture of ``source`` (None in mode none).

        Browser formats are copied (or linked to) as they are; others become PNG from ``rgb``.
        """
        if self.mode == "none":
            return None
        if source.suffix.lower() in BROWSER_FORMATS:
            if self.mode == "link":
                return self._rel(source.resolve())
            target = self.files_dir / (name + source.suffix.lower())
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            self.count += 1
            return self._rel(target)
        if rgb is None:
            rgb = to_rgb8(read_array(source))
        return self.write(name + ".png", png_bytes(rgb))
