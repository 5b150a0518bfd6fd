"""Contact sheets: a blurry image beside the frames extracted from it, for a person to look at.

One block per input: the blurry image first (framed in orange, labelled ``blurry``), then its frames in
time order (labelled 1..N), wrapping after ``columns`` cells; blocks are stacked top to bottom. Cells are
thumbnails of one height, so a sheet of many inputs stays a few megapixels.

Example::

    rows = [(thumbnail(blurry, 200), [thumbnail(f, 200) for f in frames])]
    sheet = contact_sheet(rows, titles=["photo.png"])       # uint8 (H, W, 3)
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from blurtools.errors import BlurtoolsError

__all__ = ["thumbnail", "contact_sheet", "to_rgb8"]

_BACKGROUND = (28, 28, 28)
_ACCENT = (255, 140, 0)
_TEXT = (230, 230, 230)
_LABEL_H = 16


def to_rgb8(image) -> np.ndarray:
    """uint8 (H, W, 3) from a uint8 (H, W, 3)/(H, W) array or a float tensor/array (C, H, W) in [0, 1]."""
    a = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if a.dtype != np.uint8:
        if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3):
            a = a.transpose(1, 2, 0)
        a = (np.clip(a.astype(np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
    elif a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise BlurtoolsError(f"contact sheet: expected an RGB or gray image, got shape {a.shape}")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a)


def thumbnail(image, height: int) -> np.ndarray:
    """The image scaled (Lanczos, aspect kept) to ``height`` pixels high: uint8 (height, w, 3).

    ``image``: uint8 (H, W, 3) or float (3, H, W) in [0, 1] (tensor or array). Never enlarges.
    """
    from PIL import Image

    a = to_rgb8(image)
    h, w = a.shape[:2]
    if h <= height:
        return a
    new_w = max(1, round(w * height / h))
    return np.asarray(Image.fromarray(a).resize((new_w, height), Image.LANCZOS))


def _cell(canvas: np.ndarray, img: np.ndarray, x: int, y: int, label: str, accent: bool, draw) -> None:
    h, w = img.shape[:2]
    if accent:
        canvas[y + _LABEL_H - 2:y + _LABEL_H + h + 2, x - 2:x + w + 2] = _ACCENT
    canvas[y + _LABEL_H:y + _LABEL_H + h, x:x + w] = img
    draw.append((x, y + 1, label, _ACCENT if accent else _TEXT))


def contact_sheet(rows: Sequence[Tuple[np.ndarray, Sequence[np.ndarray]]], columns: int = 8, gap: int = 8,
                  titles: Optional[Sequence[str]] = None) -> np.ndarray:
    """Compose blocks of (blurry thumbnail, frame thumbnails) into one uint8 (H, W, 3) image.

    Args:
        rows: one (blurry, frames) pair per input; uint8 (h, w, 3) thumbnails, ideally of one height.
        columns: cells per line (the blurry cell included); longer sequences wrap.
        gap: pixels between cells and around the edge.
        titles: one caption per block (e.g. the input's file name), printed above it.
    """
    if not rows:
        raise BlurtoolsError("contact sheet: nothing to show")
    columns = max(2, int(columns))
    blocks: List[Tuple[int, int, int, List[np.ndarray]]] = []     # (cell w, cell h, lines, cells)
    for blurry, frames in rows:
        cells = [to_rgb8(blurry)] + [to_rgb8(f) for f in frames]
        cw = max(c.shape[1] for c in cells)
        ch = max(c.shape[0] for c in cells)
        lines = -(-len(cells) // columns)
        blocks.append((cw, ch, lines, cells))
    title_h = _LABEL_H + 4 if titles else 0
    width = max(gap + min(columns, len(cells)) * (cw + gap) for cw, _, _, cells in blocks) + 4
    height = gap + sum(title_h + lines * (ch + _LABEL_H + gap) for _, ch, lines, _ in blocks) + 4
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = _BACKGROUND
    texts: List[Tuple[int, int, str, Tuple[int, int, int]]] = []
    y = gap
    for b, (cw, ch, lines, cells) in enumerate(blocks):
        if titles:
            texts.append((gap, y, str(titles[b]), _TEXT))
            y += title_h
        for i, img in enumerate(cells):
            line, col = divmod(i, columns)
            x = gap + 2 + col * (cw + gap)
            _cell(canvas, img, x, y + line * (ch + _LABEL_H + gap), "blurry" if i == 0 else str(i), i == 0, texts)
        y += lines * (ch + _LABEL_H + gap)
    return _draw_texts(canvas, texts)


def _draw_texts(canvas: np.ndarray, texts: Sequence[Tuple[int, int, str, Tuple[int, int, int]]]) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=12)
    except TypeError:  # older Pillow: the fixed bitmap font
        font = ImageFont.load_default()
    for x, y, text, colour in texts:
        draw.text((x, y), text, fill=colour, font=font)
    return np.asarray(img).copy()
