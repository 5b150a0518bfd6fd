"""How argument and flag names read in ``--help`` and usage lines.

Typer (0.2x) shows every flag with a ``<bool>`` type, a list argument as ``<list[str]>`` and a required
repeated argument as ``{inputs}...`` in the usage line. :func:`install` makes them read the usual way:
flags without a type, ``INPUTS...`` for a required repeated argument, ``[NAME]`` for an optional one.
Called once when the command-line package is imported.
"""

from __future__ import annotations

from typing import Any, Optional

_installed = False


def _argument_usage(self: Any) -> str:
    name = self.display_name_raw
    name = name if self.metavar is not None else name.upper()
    if not self.required:
        name = f"[{name}]"
    return name + ("..." if self.nargs != 1 and not name.endswith("...") else "")


def install() -> None:
    """Patch Typer's help rendering (idempotent); a Typer without these hooks is left as it is."""
    global _installed
    if _installed:
        return
    _installed = True
    try:
        from typer.core import TyperArgument, TyperOption
    except ImportError:  # pragma: no cover - an older Typer: nothing to change
        return
    option_type = getattr(TyperOption, "display_type_rich", None)
    argument_type = getattr(TyperArgument, "display_type_rich", None)
    if option_type is not None:
        def flag_type(self: Any, ctx: Any) -> Optional[str]:
            return None if self.is_flag else option_type(self, ctx)

        TyperOption.display_type_rich = flag_type
    if argument_type is not None:
        def argument_display(self: Any, ctx: Any) -> Optional[str]:
            return None if self.nargs != 1 else argument_type(self, ctx)

        TyperArgument.display_type_rich = argument_display
    if hasattr(TyperArgument, "_usage_display_name"):
        TyperArgument._usage_display_name = _argument_usage
    if hasattr(TyperArgument, "get_error_hint"):  # "Missing argument 'PRED'", as in the usage line
        TyperArgument.get_error_hint = lambda self, *args: f"'{_argument_usage(self).strip('[]').rstrip('.')}'"
