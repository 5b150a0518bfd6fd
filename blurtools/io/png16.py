"""PNG encoding (8 and 16 bit) and 16-bit PNG decoding.

Pillow (and so imageio) reads 16-bit RGB PNGs as 8-bit and cannot write them, so blurtools carries a small
codec for bit depth 16: colour types gray, gray+alpha, RGB and RGBA, non-interlaced, every filter type.
Arrays are ``uint16`` of shape (H, W) or (H, W, C).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from blurtools.errors import BlurtoolsError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(array: np.ndarray, compress_level: int = 6, text: "dict[str, str] | None" = None) -> bytes:
    """Encode a uint8 or uint16 (H, W) or (H, W, 1|2|3|4) array as a PNG of that depth.

    One filter (Up) on every row and a chosen zlib level: at level 1 about 9x faster than Pillow's
    default for files ~10% larger. ``text`` adds tEXt chunks (provenance) after the header.
    """
    a = np.asarray(array)
    if a.dtype not in (np.uint8, np.uint16):
        raise BlurtoolsError(f"encode_png: expected uint8 or uint16, got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        color, ch = 0, 1
    elif a.ndim == 3 and a.shape[2] in (2, 3, 4):
        ch = a.shape[2]
        color = {2: 4, 3: 2, 4: 6}[ch]
    else:
        raise BlurtoolsError(f"encode_png: unsupported shape {a.shape}")
    h, w = a.shape[:2]
    depth = 16 if a.dtype == np.uint16 else 8
    dtype = ">u2" if depth == 16 else np.uint8
    rows = np.ascontiguousarray(a, dtype=dtype).view(np.uint8).reshape(h, w * ch * depth // 8)
    raw = np.empty((h, rows.shape[1] + 1), np.uint8)
    raw[:, 0] = 2  # Up filter; on the first row it sees a zero prior row: the raw bytes themselves
    raw[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])  # uint8 arithmetic wraps mod 256, as Up wants
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    texts = b"".join(_chunk(b"tEXt", k.encode("latin-1") + b"\0" + v.encode("latin-1", "replace"))
                     for k, v in (text or {}).items())
    return (SIGNATURE + _chunk(b"IHDR", ihdr) + texts + _chunk(b"IDAT", zlib.compress(raw.tobytes(), compress_level))
            + _chunk(b"IEND", b""))


def encode_png16(array: np.ndarray, compress_level: int = 6) -> bytes:
    """Encode a uint16 array as a 16-bit PNG (see :func:`encode_png`)."""
    if np.asarray(array).dtype != np.uint16:
        raise BlurtoolsError(f"encode_png16: expected uint16, got {np.asarray(array).dtype}")
    return encode_png(array, compress_level)


def encode_png8(array: np.ndarray, compress_level: int = 1) -> bytes:
    """Encode a uint8 array as an 8-bit PNG (see :func:`encode_png`)."""
    if np.asarray(array).dtype != np.uint8:
        raise BlurtoolsError(f"encode_png8: expected uint8, got {np.asarray(array).dtype}")
    return encode_png(array, compress_level)


def png_header(data: bytes) -> "tuple[int, int, int, int, int]":
    """(width, height, bit_depth, colour_type, interlace) of PNG bytes."""
    if data[:8] != SIGNATURE or data[12:16] != b"IHDR":
        raise BlurtoolsError("not a PNG file")
    w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return w, h, depth, color, interlace


def _unfilter(raw: np.ndarray, h: int, stride: int, bpp: int) -> np.ndarray:
    out = np.zeros((h, stride), np.uint8)
    prior = np.zeros(stride, np.int32)
    for y in range(h):
        ftype = raw[y, 0]
        line = raw[y, 1:].astype(np.int32)
        if ftype == 0:
            cur = line
        elif ftype == 1:
            cur = line.reshape(-1, bpp).cumsum(axis=0).reshape(-1) & 0xFF
        elif ftype == 2:
            cur = (line + prior) & 0xFF
        elif ftype in (3, 4):
            cur = np.zeros(stride, np.int32)
            left = np.zeros(bpp, np.int32)
            upleft = np.zeros(bpp, np.int32)
            for x in range(0, stride, bpp):
                up = prior[x:x + bpp]
                if ftype == 3:
                    val = (line[x:x + bpp] + ((left + up) >> 1)) & 0xFF
                else:
                    p = left + up - upleft
                    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
                    pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
                    val = (line[x:x + bpp] + pred) & 0xFF
                cur[x:x + bpp] = val
                left, upleft = val, up
        else:
            raise BlurtoolsError(f"corrupt PNG: unknown filter type {ftype} on row {y}")
        out[y] = cur
        prior = cur
    return out


def decode_png16(path: "str | Path") -> np.ndarray:
    """Decode a 16-bit, non-interlaced PNG into uint16 (H, W) or (H, W, C).

    Raises:
        BlurtoolsError: naming the file when it is truncated, corrupt, interlaced or not 16-bit.
    """
    data = Path(path).read_bytes()
    try:
        w, h, depth, color, interlace = png_header(data)
    except (struct.error, BlurtoolsError):
        raise BlurtoolsError(f"{path}: not a valid PNG file") from None
    if depth != 16 or color not in _CHANNELS:
        raise BlurtoolsError(f"{path}: decode_png16 handles 16-bit gray/RGB(A) PNGs only")
    if interlace:
        raise BlurtoolsError(f"{path}: interlaced 16-bit PNGs are not supported; re-save without interlacing")
    pos, idat, ended = 8, [], False
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        if pos + 12 + length > len(data):
            break
        if kind == b"IDAT":
            idat.append(data[pos + 8:pos + 8 + length])
        elif kind == b"IEND":
            ended = True
            break
        pos += 12 + length
    ch = _CHANNELS[color]
    stride = w * ch * 2
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error:
        raise BlurtoolsError(f"{path}: truncated or corrupt PNG (image data does not decompress)") from None
    if not ended or len(raw) < h * (stride + 1):
        raise BlurtoolsError(f"{path}: truncated PNG (image data ends early)")
    rows = _unfilter(np.frombuffer(raw, np.uint8, count=h * (stride + 1)).reshape(h, stride + 1), h, stride, ch * 2)
    a = rows.view(">u2").reshape(h, w, ch).astype(np.uint16)
    return a[:, :, 0] if ch == 1 else a
