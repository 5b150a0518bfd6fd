"""Reading blurtools checkpoints: ``torch.load(weights_only=True)``, never an arbitrary unpickle.

A blurtools checkpoint is a plain dict (``blurtools train`` writes it, see
:mod:`blurtools.train.checkpoint`)::

    {"format": "blurtools-weights/1" | "blurtools-train-state/1", "arch": "dm", "model_args": {...},
     "state_dict": {...}, "kind": "image" | "video", "frames": int | None, "config": {...},
     "version": "0.1.0", "tool": "blurtools train", "step": int, "metrics": {...}, ...}

Other files (the authors' published checkpoints) are whatever dict their release holds; the registry's
layouts recognise them (:mod:`blurtools.models.registry`), read by :mod:`blurtools.models.files`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping

import torch

from blurtools.errors import BlurtoolsError

__all__ = ["WEIGHTS_FORMAT", "STATE_FORMAT", "FORMATS", "read_file", "read_checkpoint", "is_blurtools", "describe"]

WEIGHTS_FORMAT = "blurtools-weights/1"
STATE_FORMAT = "blurtools-train-state/1"
FORMATS = (WEIGHTS_FORMAT, STATE_FORMAT)
REQUIRED = ("arch", "model_args", "state_dict", "kind")


def read_file(path: "str | Path", map_location: Any = "cpu") -> Any:
    """The object in ``path`` as ``torch.load(weights_only=True)`` reads it.

    Raises:
        BlurtoolsError: missing, unreadable, truncated or holding pickled objects; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise BlurtoolsError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated, foreign or pickled-object files all land here
        raise BlurtoolsError(f"{path}: not a readable checkpoint ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200]})") from None


def is_blurtools(obj: Any) -> bool:
    """Whether a loaded object is a blurtools checkpoint dict (by its ``format`` key)."""
    return isinstance(obj, dict) and obj.get("format") in FORMATS


def check_blurtools(obj: Any, path: "str | Path") -> Dict[str, Any]:
    """``obj`` when it is a complete blurtools checkpoint, else a BlurtoolsError naming ``path``."""
    if not is_blurtools(obj):
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise BlurtoolsError(f"{path}: not a blurtools checkpoint (format {found!r}, expected one of {', '.join(FORMATS)})")
    for key in REQUIRED:
        if key not in obj:
            raise BlurtoolsError(f"{path}: checkpoint lacks {key!r}")
    return obj


def read_checkpoint(path: "str | Path", map_location: Any = "cpu") -> Dict[str, Any]:
    """Load a blurtools checkpoint dict safely (weights_only=True) and check its keys.

    Raises:
        BlurtoolsError: missing, unreadable, not a dict, or not a blurtools checkpoint; the message names
            the file.
    """
    return check_blurtools(read_file(path, map_location), path)


def describe(obj: Any, names: int = 4) -> str:
    """What a loaded file looks like, for error messages: its top-level keys and a few parameter names."""
    if not isinstance(obj, Mapping):
        return f"a {type(obj).__name__}"
    keys = [str(k) for k in list(obj)[:8]]
    text = f"top-level keys {', '.join(keys) or '(none)'}" + (" ..." if len(obj) > 8 else "")
    tensors = [str(k) for k, v in obj.items() if isinstance(v, torch.Tensor)]
    if not tensors:
        inner = next((v for v in obj.values() if isinstance(v, Mapping)
                      and any(isinstance(t, torch.Tensor) for t in v.values())), None)
        tensors = [str(k) for k, v in (inner or {}).items() if isinstance(v, torch.Tensor)]
    if tensors:
        text += f"; parameters {', '.join(tensors[:names])}" + (" ..." if len(tensors) > names else "")
    return text
