"""Outputs of the inference pipelines: images written atomically with their provenance.

Provenance: every PNG written carries two tEXt chunks, ``Software`` (``blurtools <version> <tool>``) and
``blurtools`` (JSON: tool, version, source, options, model); an output folder gets ``meta.json``
(``meta.shard-I-of-N.json`` for a shard) with the same record and the list of inputs and outputs.
Other formats (JPEG, TIFF...) carry no text; the folder's meta.json covers them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from blurtools import __version__
from blurtools.io.atomic import atomic_write_bytes, atomic_write_text
from blurtools.io.images import tensor_to_array, write_image
from blurtools.io.png16 import encode_png as _encode

log = logging.getLogger(__name__)

__all__ = ["encode_png", "provenance_text", "write_output_image", "write_meta"]


def encode_png(array: np.ndarray, text: Optional[Dict[str, str]] = None) -> bytes:
    """PNG bytes of a uint8 or uint16 (H, W) / (H, W, 3) array, with tEXt chunks ``text`` after IHDR."""
    return _encode(array, compress_level=6, text=text)


def provenance_text(tool: str, record: Dict[str, Any]) -> Dict[str, str]:
    """The PNG text chunks of an output: Software and the JSON record (ASCII)."""
    return {"Software": f"blurtools {__version__} {tool}", "blurtools": json.dumps(record, sort_keys=True, default=str)}


def write_output_image(path: Path, image: torch.Tensor, bits: int, text: Optional[Dict[str, str]] = None) -> None:
    """Write float (C, H, W) in [0, 1] atomically: PNG with provenance text, other extensions via imageio.

    16 bits only fit PNG; other formats are written with 8 (a warning says so).
    """
    if path.suffix.lower() == ".png":
        atomic_write_bytes(path, encode_png(tensor_to_array(image, bits), text))
        return
    if bits == 16:
        log.warning("%s: 16-bit input written with 8 bits (only .png holds 16)", path)
    write_image(path, image, bits=8)


def write_meta(folder: Path, tool: str, options: Dict[str, Any], model: Dict[str, Any], items: List[Dict[str, Any]],
               shard: Optional[Tuple[int, int]] = None, extra: Optional[Dict[str, Any]] = None) -> Path:
    """Write the output folder's ``meta.json`` (``meta.shard-I-of-N.json`` for a shard), atomically."""
    name = "meta.json" if shard is None else f"meta.shard-{shard[0]}-of-{shard[1]}.json"
    doc = {"format": "blurtools-results/1", "tool": f"blurtools {tool}", "version": __version__,
           "options": options, "model": model, "items": items, **(extra or {})}
    path = Path(folder) / name
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    return path
