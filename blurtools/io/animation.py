"""Animated GIF and WebP files that keep every frame, identical neighbours included.

Pillow's GIF writer and libwebp's animation encoder merge a frame that equals the previous one into a
longer display time, so a still video of 7 frames comes out as a 1-frame file. Here each frame is encoded
on its own by Pillow (a one-frame GIF, a lossless one-frame WebP) and the frames are assembled into the
animated container directly, one frame block per frame:

* GIF89a: logical screen (no global palette), NETSCAPE2.0 loop block, a comment block, then per frame a
  graphic control block (delay in 1/100 s) and the frame's image block with its palette as a local table.
* WebP: RIFF ``WEBP`` with VP8X (animation flag), ANIM (loop count), one ANMF per frame (full canvas,
  duration in ms, no blending) holding the frame's VP8L bitstream, and the comment as an XMP chunk.
"""

from __future__ import annotations

import io
import struct
from typing import List, Optional, Sequence, Tuple

import numpy as np


def _u24(value: int) -> bytes:
    return int(value).to_bytes(3, "little")


def _frame_delays(count: int, fps: float, unit: float) -> List[int]:
    """Per-frame delays in ``unit`` seconds whose running sum follows the exact frame times (no drift)."""
    ends = [round((k + 1) / (fps * unit)) for k in range(count)]
    return [max(1, e - s) for s, e in zip([0] + ends[:-1], ends)]


# ---------------------------------------------------------------------------------------------- GIF

def _sub_blocks(data: bytes, pos: int) -> int:
    """Position after the data sub-blocks starting at ``pos`` (each: length byte + bytes; 0 ends)."""
    while data[pos]:
        pos += data[pos] + 1
    return pos + 1


def _gif_image_block(frame: np.ndarray) -> Tuple[bytes, bytes]:
    """(colour table, image block from the 0x2C descriptor through its LZW data) of one frame as Pillow
    encodes it alone."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="GIF")
    data = buf.getvalue()
    packed = data[10]
    pos = 13
    table = b""
    if packed & 0x80:
        size = 3 * (2 ** ((packed & 7) + 1))
        table, pos = data[pos:pos + size], pos + size
    while data[pos] == 0x21:  # extension blocks Pillow may add: skipped
        pos = _sub_blocks(data, pos + 2)
    if data[pos] != 0x2C:
        raise ValueError("unexpected GIF block from the encoder")
    descriptor = bytearray(data[pos:pos + 10])
    pos += 10
    if descriptor[9] & 0x80:  # a local table already: use it
        size = 3 * (2 ** ((descriptor[9] & 7) + 1))
        table, pos = data[pos:pos + size], pos + size
    end = _sub_blocks(data, pos + 1)  # LZW minimum code size, then the data sub-blocks
    bits = max(1, (len(table) // 3 - 1).bit_length()) - 1
    descriptor[9] = 0x80 | (descriptor[9] & 0x40) | bits
    return table, bytes(descriptor) + table + data[pos:end]


def gif_bytes(frames: Sequence[np.ndarray], fps: float, loop: int = 0, comment: Optional[str] = None) -> bytes:
    """An animated GIF of uint8 (H, W, 3) ``frames``: every frame kept.

    ``loop``: how many times the animation plays, 0 = forever, 1 = once (no loop block).
    """
    h, w = frames[0].shape[:2]
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", w, h, 0, 0, 0))
    if loop != 1:  # the NETSCAPE block counts repeats after the first play, 0 = forever
        out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", 0 if not loop else loop - 1) + b"\x00"
    if comment:
        text = comment.encode()
        out += b"\x21\xfe"
        for i in range(0, len(text), 255):
            out += bytes([len(text[i:i + 255])]) + text[i:i + 255]
        out += b"\x00"
    for frame, delay in zip(frames, _frame_delays(len(frames), fps, 0.01)):
        _, block = _gif_image_block(frame)
        out += b"\x21\xf9\x04" + bytes([1 << 2]) + struct.pack("<H", delay) + b"\x00\x00"  # keep the frame
        out += block
    out += b"\x3b"
    return bytes(out)


# ---------------------------------------------------------------------------------------------- WebP

def _chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) % 2 else b"")


def _webp_frame_chunks(frame: np.ndarray) -> bytes:
    """The VP8L chunk of one frame encoded alone, losslessly."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="WEBP", lossless=True, exact=True)
    data = buf.getvalue()
    pos, chunks = 12, b""
    while pos + 8 <= len(data):
        fourcc, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if fourcc in (b"VP8L", b"VP8 ", b"ALPH"):
            chunks += data[pos:pos + 8 + size + (size & 1)]
        pos += 8 + size + (size & 1)
    if not chunks:
        raise ValueError("no image chunk from the WebP encoder")
    return chunks


def webp_bytes(frames: Sequence[np.ndarray], fps: float, loop: int = 0, xmp: Optional[bytes] = None) -> bytes:
    """A lossless animated WebP of uint8 (H, W, 3) ``frames``: every frame kept (``loop`` 0 = forever)."""
    h, w = frames[0].shape[:2]
    flags = 0x02 | (0x04 if xmp else 0)
    body = _chunk(b"VP8X", bytes([flags, 0, 0, 0]) + _u24(w - 1) + _u24(h - 1))
    body += _chunk(b"ANIM", struct.pack("<IH", 0, int(loop)))
    for frame, ms in zip(frames, _frame_delays(len(frames), fps, 0.001)):
        header = _u24(0) + _u24(0) + _u24(w - 1) + _u24(h - 1) + _u24(ms) + bytes([0x02])  # no blending
        body += _chunk(b"ANMF", header + _webp_frame_chunks(frame))
    if xmp:
        body += _chunk(b"XMP ", xmp)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body
