"""Reading weights files safely: current zip checkpoints and PyTorch 0.x legacy files alike, tensors only.

Every file goes through ``torch.load(..., weights_only=True)``: its restricted unpickler builds tensors,
storages, ``OrderedDict`` and plain containers, and refuses any other global (a pickle that would import a
module or call a function, i.e. carry code). That unpickler reads the legacy (pre-1.6, non-zip) format too,
including files pickled under Python 2.7 (PyTorch 0.3 era): their byte strings are decoded as UTF-8, or as
Latin-1 when UTF-8 fails. Nothing is ever unpickled without that restriction.

When a file is refused, :func:`read_weights_file` scans its pickle opcodes (without executing them) to say
why: which globals outside the tensor allow-list it names.

PyTorch 0.3 saved ``running_mean``/``running_var`` buffers for every ``InstanceNorm`` layer, although the
library of the time never used them (instance statistics in training and evaluation alike); current
``InstanceNorm2d`` has no such buffers. :func:`drop_running_stats` removes them for architectures whose
only normalisation is instance norm (do not switch on ``track_running_stats``: that changes the function).

Example::

    state = read_weights_file("center_v3.pth")            # {'state_dict_G': OrderedDict(...)}
    sd = drop_running_stats(state["state_dict_G"])
"""

from __future__ import annotations

import io
import logging
import pickle
import pickletools
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Mapping

import torch

from blurtools.errors import BlurtoolsError

log = logging.getLogger(__name__)

__all__ = ["read_weights_file", "drop_running_stats", "strip_prefix", "pickle_globals"]

# globals a weights file may name: containers, tensor/storage rebuild functions, storage types, dtypes
_ALLOWED_GLOBALS = re.compile(
    r"^(collections\.OrderedDict|_codecs\.encode|torch\.Size|torch\.device|torch\.serialization\._get_layout"
    r"|torch\.nn\.parameter\.Parameter|torch\._utils\._rebuild_(tensor(_v[23])?|parameter(_with_state)?)"
    r"|torch\.(cuda\.)?[A-Za-z]*Storage|torch\.(float|int|uint|bfloat|complex|bool)\d*)$")
_MAX_PICKLES = 8            # a legacy file is a few pickles (magic, version, system info, object, keys), then raw data


def read_weights_file(path: "str | Path", map_location: "str | torch.device" = "cpu") -> Mapping[str, Any]:
    """The top-level mapping stored in a weights file, read with ``weights_only=True``.

    Args:
        path: a ``torch.save`` file: zip (PyTorch >= 1.6) or legacy (PyTorch 0.x, Python 2 or 3 pickles).
        map_location: where tensors go (files saved on a GPU load anywhere).

    Returns:
        The file's top-level mapping (a dict or OrderedDict), e.g. a bare state dict or
        ``{'state_dict_G': state_dict}``; tensors keep their stored dtypes and shapes.

    Raises:
        BlurtoolsError: one line naming the file and the problem: missing, not a PyTorch file, damaged,
            carrying code (with the globals it names), or holding something other than a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise BlurtoolsError(f"{path}: no such file" if not path.exists() else f"{path}: is not a file")
    try:
        try:
            obj = _load(path, map_location, "utf-8")
        except UnicodeDecodeError:
            obj = _load(path, map_location, "latin1")   # Python 2 byte strings that are not UTF-8
    except Exception as e:      # untrusted bytes: any parser failure is this file's problem, said in one line
        raise BlurtoolsError(_refusal(path, e)) from None
    if not isinstance(obj, Mapping):
        raise BlurtoolsError(f"{path}: holds a {type(obj).__name__}, not a mapping of weights (a state dict or a "
                             "dict holding one)")
    return obj


def _load(path: Path, map_location: Any, encoding: str) -> Any:
    with warnings.catch_warnings():
        # torch warns that ``encoding`` needs weights_only=False, yet its restricted unpickler does use it
        # (utf-8 is torch's own default); and it warns about pickle protocols other than 2, which it then reads
        warnings.filterwarnings("ignore", message="(pickle_load_args|Detected pickle protocol)")
        return torch.load(path, map_location=map_location, weights_only=True, encoding=encoding)


def _refusal(path: Path, error: Exception) -> str:
    """One line saying why ``path`` could not be read: the code it carries, or what torch reported."""
    try:
        unsafe = [g for g in pickle_globals(path) if not _ALLOWED_GLOBALS.match(g)]
    except (OSError, zipfile.BadZipFile):
        unsafe = []
    if unsafe:
        shown = ", ".join(sorted(set(unsafe))[:5])
        return (f"{path}: refused: the file carries code ({shown}), which a weights file never needs; "
                "blurtools loads tensors only and never runs code from a file")
    other = _foreign_content(path)
    if other:
        return f"{path}: not a PyTorch weights file: {other}"
    text = " ".join(str(error).split())
    reason = re.search(r"WeightsUnpickler error:\s*(.*?)\s*(Check the documentation|$)", text)
    detail = reason.group(1) if reason and reason.group(1) else text.split(". ")[-1]
    if "magic number" in text.lower() or isinstance(error, (EOFError, IndexError, zipfile.BadZipFile)):
        return f"{path}: not a PyTorch weights file, or truncated/damaged ({type(error).__name__}: {detail[:160]})"
    if "weights_only" in detail or "file an issue" in detail:   # torch's advice to unpickle code: never ours
        detail = "it holds objects other than tensors and plain containers"
    return f"{path}: cannot be read as weights with the safe loader ({type(error).__name__}: {detail[:200]})"


_SIGNATURES = ((b"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras/TensorFlow weights?)"), (b"\x89PNG", "a PNG image"),
               (b"\xff\xd8\xff", "a JPEG image"), (b"\x93NUMPY", "a NumPy array (.npy)"),
               (b"\x08", "a protocol-buffer file (ONNX?)"))


def _foreign_content(path: Path) -> str:
    """What a file that is neither a torch zip nor a pickle holds ("" when it may be a torch file)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return ""
    if not head:
        return "the file is empty"
    if zipfile.is_zipfile(path) and not any(n.endswith("data.pkl") for n in zipfile.ZipFile(path).namelist()):
        return "a zip archive without a PyTorch checkpoint inside"
    if head[:1] == b"\x80":          # a pickle (legacy torch files and zip members start with PROTO)
        return ""
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            return what
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    if text.isprintable() or all(c.isprintable() or c in "\r\n\t" for c in text):
        first = text.strip().splitlines()[0][:60] if text.strip() else ""
        return f"it holds text ({first!r}...)"
    return ""


def pickle_globals(path: "str | Path") -> List[str]:
    """Every global ("module.name") the pickles of a torch file name, read from opcodes, never executed.

    Zip checkpoints: the ``data.pkl`` inside; legacy files: the pickles at the start of the file (up to
    the raw storage bytes). A malformed pickle ends the scan.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith("data.pkl")]
            streams = [io.BytesIO(z.read(n)) for n in names[:1]]
    else:
        streams = [io.BytesIO(path.read_bytes())]
    found: List[str] = []
    for stream in streams:
        for _ in range(_MAX_PICKLES):
            if not _scan_one(stream, found):
                break
    return found


def _scan_one(stream: io.BytesIO, found: List[str]) -> bool:
    """Scan one pickle from ``stream`` into ``found``; False at the end of the pickles or on bad data."""
    strings: List[str] = []
    try:
        for op, arg, _ in pickletools.genops(stream):
            if op.name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, (str, bytes)) and ("STRING" in op.name or "UNICODE" in op.name):
                strings.append(arg.decode("latin1") if isinstance(arg, bytes) else str(arg))
    except (ValueError, EOFError, pickle.UnpicklingError, UnicodeDecodeError):
        return False
    return True


def drop_running_stats(state_dict: Mapping[str, Any]) -> Dict[str, Any]:
    """``state_dict`` without ``running_mean``/``running_var``/``num_batches_tracked`` entries.

    For architectures whose only normalisation is instance norm: PyTorch 0.3 stored running statistics
    for those layers that no version ever used at inference.
    """
    suffixes = (".running_mean", ".running_var", ".num_batches_tracked")
    return {k: v for k, v in state_dict.items() if not str(k).endswith(suffixes)}


def strip_prefix(state_dict: Mapping[str, Any], prefix: str = "module.") -> Dict[str, Any]:
    """``state_dict`` with ``prefix`` removed where every key has it (DataParallel's ``module.``)."""
    keys = [str(k) for k in state_dict]
    if keys and all(k.startswith(prefix) for k in keys):
        return {k[len(prefix):]: v for k, v in state_dict.items()}
    return dict(state_dict)
