"""The model contract: what every registered network states about itself, and its recorded arguments.

A model class derives from :class:`Model` and declares, as class attributes:

* ``kind``: ``"image"`` (one sharp image per blurry image: ``deblur``) or ``"video"`` (a sequence of sharp
  frames from one blurry image: ``extract-video``);
* ``frames``: video models: the number of frames ``forward`` makes (an instance built with another
  ``frames`` argument overrides it); image models: ``None``;
* ``pad_multiple``: the model reflect-pads its input sides to a multiple of this and crops back, so any
  H, W works (instances whose padding depends on their arguments override it);
* ``receptive_field``: the side in pixels of the input square one output pixel depends on (measured as
  the gradient support on the default architecture), or ``None`` when every output pixel depends on the
  whole input (instance norm, image-wide pooling): tiles then change the result slightly wherever they cut.

The arguments a model was constructed with are recorded on the instance as ``model_args`` (a plain dict of
every constructor argument, defaults included, tuples as lists), captured automatically from the
``__init__`` signature, so a checkpoint written from ``model_args`` always rebuilds the same network.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, ClassVar, Dict, Mapping, Optional

from torch import nn

__all__ = ["KINDS", "Model", "plain_args"]

KINDS = ("image", "video")
_CONTRACT = ("kind", "frames", "pad_multiple", "receptive_field")


def plain_args(value: Any) -> Any:
    """``value`` as plain data for a checkpoint: tuples become lists, mappings dicts (recursively)."""
    if isinstance(value, Mapping):
        return {str(k): plain_args(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_args(v) for v in value]
    return value


def _recording(init):
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        init(self, *args, **kwargs)
        given = {name: value for name, value in bound.arguments.items() if name != "self"}
        extra = given.pop(next((n for n, p in signature.parameters.items() if p.kind == p.VAR_KEYWORD), ""), {})
        # the outermost class's __init__ finishes last, so a subclass's arguments win over its base's
        self.model_args = type(self).recorded_args({**plain_args(given), **plain_args(extra)})

    return __init__


class Model(nn.Module):
    """Base class of registered networks: the contract attributes and automatic ``model_args``.

    Subclasses declare all four contract attributes themselves (a missing one is a TypeError at class
    creation); the values here only give the attributes their types.
    """

    kind: ClassVar[str] = ""
    frames: ClassVar[Optional[int]] = None
    pad_multiple: ClassVar[int] = 1
    receptive_field: ClassVar[Optional[int]] = None
    model_args: Dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [name for name in _CONTRACT if name not in vars(cls) and not any(
            name in vars(base) for base in cls.__mro__[1:] if base is not Model and issubclass(base, Model))]
        if missing:
            raise TypeError(f"model class {cls.__name__} does not declare {', '.join(missing)} (the model contract)")
        if cls.kind not in KINDS:
            raise TypeError(f"model class {cls.__name__}: kind must be one of {KINDS}, got {cls.kind!r}")
        if (cls.kind == "video") != (cls.frames is not None):
            raise TypeError(f"model class {cls.__name__}: frames must be an int for video models, None for image models")
        if "__init__" in vars(cls):
            cls.__init__ = _recording(vars(cls)["__init__"])

    @classmethod
    def recorded_args(cls, args: Dict[str, Any]) -> Dict[str, Any]:
        """The constructor arguments to record (all of them; a class may drop ones that do not apply)."""
        return args
