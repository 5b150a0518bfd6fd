"""Writing PyTorch 0.3-era weights files in tests, without any third-party file.

``save_legacy(obj, path)`` writes ``obj`` in the legacy (non-zip) ``torch.save`` format the way PyTorch 0.3
under Python 2.7 did: strings as Python 2 byte strings (SHORT_BINSTRING), ``OrderedDict`` reduced to a
list of ``[key, value]`` lists, tensors rebuilt by ``torch._utils._rebuild_tensor(storage, offset, size,
stride)``, storages of ``torch.cuda.FloatStorage`` located on ``cuda:0`` (the released checkpoints were
saved from a GPU).

``seeded_state(shapes, seed)`` gives an OrderedDict of seeded random tensors of the given shapes, values
scaled so that deep networks stay in a sane range.
"""

from __future__ import annotations

import collections
import math
import pickle
import re
import struct
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

import torch


class _Py2Pickler(pickle._Pickler):
    dispatch = dict(pickle._Pickler.dispatch)

    def save_str(self, obj: str) -> None:
        data = obj.encode("latin1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_str

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is collections.OrderedDict:
            return collections.OrderedDict, ([[k, v] for k, v in obj.items()],)
        if type(obj) is torch.Tensor:
            return torch._utils._rebuild_tensor, (obj.storage(), obj.storage_offset(),
                                                  tuple(obj.size()), obj.stride())
        return NotImplemented


class _Py2PickleModule:
    Pickler = _Py2Pickler

    @staticmethod
    def dump(obj: Any, f: Any, protocol: int = 2) -> None:
        _Py2Pickler(f, protocol).dump(obj)


def save_legacy(obj: Any, path: "str | Path", location: str = "cuda:0") -> Path:
    """Write ``obj`` as PyTorch 0.3 under Python 2.7 wrote it (legacy format); returns the path."""
    import io
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # TypedStorage is deprecated; the legacy format is made of it
        torch.save(obj, buf, pickle_module=_Py2PickleModule, pickle_protocol=2, _use_new_zipfile_serialization=False)
    raw = buf.getvalue()
    if location != "cpu":                        # storages saved from a GPU: torch.cuda.FloatStorage on cuda:0
        new = location.encode()
        raw = raw.replace(pickle.SHORT_BINSTRING + b"\x03cpu", pickle.SHORT_BINSTRING + bytes([len(new)]) + new)
        raw = re.sub(rb"ctorch\n(\w+Storage)\n", rb"ctorch.cuda\n\1\n", raw)
    path = Path(path)
    path.write_bytes(raw)
    return path


def seeded_state(shapes: Mapping[str, Tuple[int, ...]], seed: int) -> "collections.OrderedDict[str, torch.Tensor]":
    """Seeded random tensors: conv weights ~ N(0, 1/fan_in), norm weights ~ 1 + N(0, 0.1), biases and
    other vectors ~ N(0, 0.1), running statistics zeros/ones as PyTorch 0.3 initialised them."""
    g = torch.Generator().manual_seed(seed)
    out: Dict[str, torch.Tensor] = collections.OrderedDict()
    for name, shape in shapes.items():
        if name.endswith("running_mean"):
            out[name] = torch.zeros(shape)
        elif name.endswith("running_var"):
            out[name] = torch.ones(shape)
        elif len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            out[name] = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        elif name.endswith("weight"):
            out[name] = 1 + 0.1 * torch.randn(shape, generator=g)
        else:
            out[name] = 0.1 * torch.randn(shape, generator=g)
    return collections.OrderedDict(out)
