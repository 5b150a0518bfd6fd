"""Running a Typer app as an executable: usage errors as one ``error:`` line (exit 2), ``--version``.

Typer's own runner draws a multi-line box around a usage error; here the app runs with
``standalone_mode=False`` and every outcome becomes an exit status: 0, 1 (the command failed), 2 (bad
usage: ``error: <what is wrong> (see <prog> --help)``), 130 (interrupted).
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional

from blurtools import __version__

import functools
import inspect

import typer

try:  # typer >= 0.16 carries its own click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer: the click package
    from click import exceptions as click_exceptions


def with_version(command: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``command`` with an eager ``--version`` that prints ``NAME (blurtools) VERSION`` and exits."""

    def show(value: bool) -> None:
        if value:
            print(f"{name} (blurtools) {__version__}")
            raise typer.Exit(0)

    @functools.wraps(command)
    def wrapper(*args: Any, _version: bool = False, **kwargs: Any) -> Any:
        return command(*args, **kwargs)

    sig = inspect.signature(command)
    flag = inspect.Parameter("_version", inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=typer.Option(
        False, "--version", callback=show, is_eager=True, help="Print the version and exit."))
    wrapper.__signature__ = sig.replace(parameters=[*sig.parameters.values(), flag])  # type: ignore[attr-defined]
    return wrapper


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
    except click_exceptions.ClickException as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr, flush=True)
        code = exc.exit_code
    except typer.Abort:
        print("error: interrupted", file=sys.stderr, flush=True)
        code = 130
    except typer.Exit as exc:
        code = exc.exit_code
    except BrokenPipeError:  # the reader went away (e.g. `| head`): nothing more to say
        code = 1
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    sys.exit(code if isinstance(code, int) else 0)
