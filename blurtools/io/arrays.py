"""Decoding image files to their native numpy arrays, without torch (listing and decoding start fast).

:func:`read_array` reads any PNG/JPEG/TIFF/BMP/WebP a user has: 8- and 16-bit, gray, gray+alpha, RGB,
RGBA. An 8-bit PNG is decoded by Pillow in one call, with its image data joined into one zlib stream first,
so the decoder holds Python's lock only at the start and the end: threads decode side by side, and beside
a thread that imports torch (``blurtools score`` decodes its first pairs while torch loads).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np

from blurtools.errors import BlurtoolsError
from blurtools.io.png16 import SIGNATURE, decode_png16, png_header

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".ppm", ".pgm")


def is_image_path(path: "str | Path") -> bool:
    """True when the file name has an image extension blurtools reads."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def read_array(path: "str | Path") -> np.ndarray:
    """Decode an image file to its native numpy array (uint8/uint16/float; (H, W) or (H, W, C)).

    Raises:
        BlurtoolsError: naming the file when it is missing, empty, truncated or not an image.
    """
    path = Path(path)
    if not path.exists():
        raise BlurtoolsError(f"{path}: no such file")
    if path.is_dir():
        raise BlurtoolsError(f"{path}: is a folder, expected an image file")
    if path.stat().st_size == 0:
        raise BlurtoolsError(f"{path}: empty file")
    with open(path, "rb") as f:
        head = f.read(32)
    if head[:8] == SIGNATURE:
        try:
            depth = png_header(head)[2]
        except Exception:
            raise BlurtoolsError(f"{path}: not a valid PNG file") from None
        if depth == 16:
            return decode_png16(path)
    if head[:8] == SIGNATURE:
        array = _read_png_with_pillow(path)
        if array is not None:
            return array
    import imageio.v3 as iio

    try:
        array = iio.imread(path)
    except Exception as exc:  # imageio raises many types for undecodable input
        text = str(exc)
        if "Could not find a backend" in text:  # imageio's own wording is malformed; say it plainly
            raise BlurtoolsError(f"{path}: cannot read as an image (not in a format blurtools reads: PNG, JPEG, TIFF, "
                                 "BMP, WebP...)") from None
        first = text.strip().splitlines()[0] if text.strip() else "no detail"
        raise BlurtoolsError(f"{path}: cannot read as an image ({type(exc).__name__}: {first[:200]})") from None
    array = np.asarray(array)
    if array.ndim == 4:  # a multi-page file (e.g. an animated GIF): its first page
        array = array[0]
    if array.ndim not in (2, 3) or array.size == 0:
        raise BlurtoolsError(f"{path}: not a 2-D image (shape {array.shape})")
    return array


def one_image_data_chunk(data: bytes) -> bytes:
    """The PNG file ``data`` with its IDAT chunks joined into one (CRC recomputed); other chunks unchanged.

    Pillow hands a PNG's image data to zlib chunk by chunk (encoders write 8-64 KB chunks), taking Python's
    lock between chunks; with one chunk the whole decode runs without it. A file whose chunk lengths run
    past its end is returned unchanged (the decoder then names the problem).
    """
    view = memoryview(data)
    pos, before, image_data, after = 8, [], [], []
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        end = pos + 12 + length
        if end > len(data):
            return data
        if data[pos + 4:pos + 8] == b"IDAT":
            image_data.append(view[pos + 8:pos + 8 + length])
        else:
            (after if image_data else before).append(view[pos:end])
        pos = end
    if len(image_data) < 2:
        return data
    crc = zlib.crc32(b"IDAT")
    for piece in image_data:
        crc = zlib.crc32(piece, crc)
    size = sum(len(piece) for piece in image_data)
    # one copy of the file: views of its pieces joined once
    return b"".join([view[:8], *before, struct.pack(">I", size), b"IDAT", *image_data, struct.pack(">I", crc), *after])


def _read_png_with_pillow(path: Path) -> "np.ndarray | None":
    """An 8-bit gray/RGB(A) PNG decoded by Pillow directly (a third faster than through imageio's plugin
    layer, the same array), its image data in one piece (:func:`one_image_data_chunk`); None for any other
    kind of PNG, which imageio then reads."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(one_image_data_chunk(path.read_bytes()))) as im:
            if im.mode not in ("L", "LA", "RGB", "RGBA") or getattr(im, "n_frames", 1) != 1:
                return None
            im.decodermaxblock = 1 << 62  # the whole stream in one decoder call, outside Python's lock
            im.load()
            array = np.array(im)  # writable, as every reader expects
    except Exception:  # anything unusual: imageio reads it or names the problem
        return None
    return array if array.ndim in (2, 3) and array.size else None
