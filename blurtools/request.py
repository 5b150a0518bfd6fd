"""Request objects: one dataclass per pipeline whose fields describe themselves to every front end.

A pipeline's request (:class:`~blurtools.train.config.TrainConfig`, :class:`~blurtools.synth.request.SynthRequest`,
:class:`~blurtools.infer.request.DeblurRequest` ...) is an ordinary dataclass. Each field that a user may
set is declared with :func:`option`, which stores its help text and, where the flag is not simply
``--field-name``, the flag, a short flag, a metavar or a parser for repeated ``NAME=VALUE`` items in the
field's metadata. The default and the type stay where Python keeps them (the dataclass default and the
annotation), so each knob is written once; the command line (``blurtools.cli.common.request_options``)
and the file layers (:func:`coerce`) are derived from the same fields. The library never imports a CLI
package: this module only describes.

Example::

    @dataclass
    class Request:
        frames: int = option(7, help="Frames per window N (odd).", short="-n")
        crf: str = option("gamma:2.2", help="Camera response: linear, gamma, gamma:G or srgb.")

    fields = described_fields(Request)    # [(Described(name="frames", flag="--frames", ...)), ...]
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import MISSING, dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from blurtools.errors import UsageError

META_KEY = "blurtools.option"


@dataclass(frozen=True)
class OptionInfo:
    """How a field shows on the command line (everything but its default and type).

    Attributes:
        help: one sentence or two for people; never the default (front ends add it).
        flag: the long flag; None = ``--`` + the field name with ``_`` as ``-``.
        short: a one-letter alias such as ``-o``, or None.
        metavar: the value's placeholder in help (``WxH``, ``NAME=VALUE``), or None.
        negatable: a bool shown as ``--flag/--no-flag`` (else a plain switch that sets True).
        hidden: left out of help and man pages (test hooks).
        shared: the name of a front end's shared option this field takes its flag and help from
            (``device``, ``seed``, ``shard``); ``help`` is then ignored.
        cli: False for a knob that only a file layer (TOML) sets.
        items: a repeatable flag; ``items(list_of_texts, flag)`` turns its values into the field's value.
        choices: a function listing the accepted values, for help (checked by the request itself).
    """

    help: str = ""
    flag: Optional[str] = None
    short: Optional[str] = None
    metavar: Optional[str] = None
    negatable: bool = False
    hidden: bool = False
    shared: Optional[str] = None
    cli: bool = True
    items: Optional[Callable[[List[str], str], Any]] = None
    choices: Optional[Callable[[], Sequence[str]]] = None


def option(default: Any = MISSING, *, default_factory: Any = MISSING, help: str = "", **info: Any) -> Any:
    """A dataclass field with its command-line description (see :class:`OptionInfo` for ``info``)."""
    meta = {META_KEY: OptionInfo(help=help, **info)}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Described:
    """One described field of a request: its name, value type, default and :class:`OptionInfo`.

    ``kind`` is the field's type without ``Optional`` (int, float, str, bool, dict, tuple, ...);
    ``optional`` says whether None is a value of it; ``default`` is the dataclass default (the factory's
    value for mutable defaults).
    """

    name: str
    kind: Any
    optional: bool
    default: Any
    info: OptionInfo

    @property
    def flag(self) -> str:
        return self.info.flag or "--" + self.name.replace("_", "-")


def _unwrap(hint: Any) -> Tuple[Any, bool]:
    """(the type inside Optional, whether None is allowed)."""
    if typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else Any), True
    origin = typing.get_origin(hint)
    return (origin or hint), False


def described_fields(cls: type) -> List[Described]:
    """The fields of ``cls`` declared with :func:`option`, in declaration order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        info = f.metadata.get(META_KEY)
        if info is None:
            continue
        kind, optional = _unwrap(hints[f.name])
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        out.append(Described(f.name, kind, optional or default is None, default, info))
    return out


def describe_default(value: Any) -> str:
    """A default as help text shows it: ``on``/``off`` for switches, ``%g`` for numbers."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


_KIND_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def coerce(field: Described, value: Any) -> Any:
    """``value`` (from a TOML file or keyword arguments) as the field's type, checked the way the defaults
    are typed: an integer field takes 3 or 3.0 but not 3.5 or true; a switch takes only true/false.

    Raises:
        UsageError: ``name = value: expected an integer`` (a number, true or false).
    """
    if value is None or field.kind not in _KIND_WORDS:
        return value
    try:
        if field.kind is int:
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if field.kind is float:
            return float(value)
        if field.kind is bool:
            if not isinstance(value, bool):
                raise ValueError
            return value
        return str(value)
    except (TypeError, ValueError):
        raise UsageError(f"{field.name} = {value!r}: expected {_KIND_WORDS[field.kind]}") from None


def coerce_all(cls: type, values: Dict[str, Any]) -> Dict[str, Any]:
    """:func:`coerce` for every described field of ``cls`` named in ``values`` (others pass through)."""
    fields = {f.name: f for f in described_fields(cls)}
    return {k: coerce(fields[k], v) if k in fields else v for k, v in values.items()}


def parse_shard(text: Optional[str]) -> "Optional[tuple[int, int]]":
    """``"I/N"`` -> (I, N) with 0 <= I < N; None passes through."""
    if text is None:
        return None
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text}: expected I/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise UsageError(f"--shard {text}: need 0 <= I < N")
    return i, n
