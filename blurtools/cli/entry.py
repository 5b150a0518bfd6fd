"""Running a Typer app as an executable: usage errors as one ``error:`` line (exit 2), ``--version``.

Typer's own runner draws a multi-line box around a usage error; here the app runs with
``standalone_mode=False`` and every outcome becomes an exit status: 0, 1 (the command failed), 2 (bad
usage: ``error: <what is wrong> (see <prog> --help)``), 130 (interrupted).
"""

from __future__ import annotations

import sys
from typing import Any, Optional

from blurtools import __version__

try:  # typer >= 0.16 carries its own click
    from typer._click import exceptions as click_exceptions
    from typer._click.core import Option as ClickOption
except ImportError:  # pragma: no cover - older typer: the click package
    from click import exceptions as click_exceptions
    from click.core import Option as ClickOption


def _print_version(ctx: Any, param: Any, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        print(f"{ctx.info_name} (blurtools) {__version__}")
        ctx.exit(0)


def add_version_option(command: Any) -> Any:
    """Give a click command an eager ``--version`` that prints ``NAME (blurtools) VERSION``."""
    command.params.append(ClickOption(["--version"], is_flag=True, is_eager=True, expose_value=False,
                                      callback=_print_version, help="Print the version and exit."))
    return command


def _usage_line(exc: Any) -> str:
    message = exc.format_message().strip().replace("\n", " ")
    ctx = getattr(exc, "ctx", None)
    where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    return f"error: {message}{where}"


def run_command(command: Any, prog_name: str, args: Optional[list] = None) -> None:
    """Run a click command (``typer.main.get_command(app)``) and exit with its status (never returns)."""
    try:
        code = command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click_exceptions.NoArgsIsHelpError as exc:  # the bare command: its help, as asked
        print(exc.format_message())
        code = 0
    except click_exceptions.UsageError as exc:
        print(_usage_line(exc), file=sys.stderr, flush=True)
        code = 2
    except click_exceptions.Abort:
        print("error: interrupted", file=sys.stderr, flush=True)
        code = 130
    except click_exceptions.ClickException as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr, flush=True)
        code = exc.exit_code
    except click_exceptions.Exit as exc:
        code = exc.exit_code
    sys.stdout.flush()
    sys.exit(code if isinstance(code, int) else 0)
