"""What every subcommand shares: options, error-to-exit-code mapping, progress, output.

Options are derived from the library's request objects (see :mod:`blurtools.request`): a command declares
which requests it takes with :func:`with_requests`, and gets one flag per request field (its help, default,
type and short flag from the field) plus the shared options of SHARED (--json, --quiet, --debug...).

Exit status: 0 success, 1 failure of the work, 2 usage error, 130 interrupted. A failure prints
one ``error: ...`` line on stderr; ``--debug`` (or BLURTOOLS_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import sys
import traceback
import typing
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import typer
from typer.models import OptionInfo

from blurtools.errors import BlurtoolsError, Interrupted, UsageError, os_reason
from blurtools.request import Described, describe_default, described_fields
from blurtools.request import parse_shard  # noqa: F401  (commands parse --shard I/N with it)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

DeviceOption = typer.Option("auto", "--device", help="auto|cpu|cuda|cuda:N; auto takes the GPU when there is one.")
QuietOption = typer.Option(False, "--quiet", "-q", help="No progress bars or log lines on stderr.")
DebugOption = typer.Option(False, "--debug", help="Show the full traceback on failure.")
SeedOption = typer.Option(0, "--seed", help="Seed for every random choice (repeatable runs).")
ShardOption = typer.Option(None, "--shard", metavar="I/N", help="Process only shard I of N (0-based), to split work across machines.")
JsonOption = typer.Option(False, "--json", help="Print the result as JSON on stdout.")

# The options several commands share, by the parameter name a command receives them under.
SHARED: Dict[str, Tuple[Any, Any]] = {
    "device": (str, DeviceOption),
    "seed": (int, SeedOption),
    "shard": (Optional[str], ShardOption),
    "json_out": (bool, JsonOption),
    "quiet": (bool, QuietOption),
    "debug": (bool, DebugOption),
}


def setup_logging(quiet: bool = False, verbose: bool = False) -> None:
    """Log lines go to stderr: warnings only with --quiet, info otherwise."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    root = logging.getLogger("blurtools")
    root.setLevel(level)
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    for h in root.handlers:
        h.setLevel(level)


def fail(message: str, code: int = EXIT_FAILURE) -> "typer.Exit":
    """Print ``error: message`` on stderr and return the Exit to raise."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    return typer.Exit(code)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Map library exceptions to one ``error:`` line and the exit codes above."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug")) or os.environ.get("BLURTOOLS_DEBUG") == "1"
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except Interrupted as exc:
            raise fail(str(exc), EXIT_INTERRUPTED) from None
        except UsageError as exc:
            if debug:
                traceback.print_exc()
            raise fail(str(exc), EXIT_USAGE) from None
        except BlurtoolsError as exc:
            if debug:
                traceback.print_exc()
            raise fail(str(exc), EXIT_FAILURE) from None
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr, flush=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except MemoryError:
            raise fail("out of memory; try a smaller --tile or --batch", EXIT_FAILURE) from None
        except OSError as exc:
            if debug:
                traceback.print_exc()
            if exc.filename is None:  # no file to name: an unexpected failure after all
                raise fail(f"{type(exc).__name__}: {os_reason(exc)} (rerun with --debug for the traceback)") from None
            # writers name their output (OutputError); this catches folders made outside them
            raise fail(f"{exc.filename}: {os_reason(exc)}", EXIT_FAILURE) from None
        except Exception as exc:  # an unexpected failure still gets one line; --debug shows where
            if debug:
                traceback.print_exc()
            else:
                where = traceback.extract_tb(exc.__traceback__)[-1]
                print(f"error: internal error {type(exc).__name__}: {exc} (at {os.path.basename(where.filename)}:{where.lineno}; "
                      "rerun with --debug for the traceback)", file=sys.stderr, flush=True)
                raise typer.Exit(EXIT_FAILURE) from None
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


class _NullProgress:
    """The progress object when no bar is shown (stderr not a terminal, or --quiet): accepts and ignores."""

    def advance(self, n: int = 1) -> None:
        return None

    def update(self, **kwargs: Any) -> None:
        return None


class _RichProgress:
    def __init__(self, progress: Any, task: Any):
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)

    def update(self, **kwargs: Any) -> None:
        kwargs.pop("unit", None)
        self._progress.update(self._task, **kwargs)


@contextlib.contextmanager
def progress(total: Optional[int], description: str, quiet: bool = False, unit: str = "items") -> Iterator[Any]:
    """Progress on stderr unless ``quiet``: a bar on a terminal, else a plain line at a modest interval
    (:mod:`blurtools.cli.plain_progress`: done/total ``unit``, rate, ETA).

    Yields an object with ``advance(n=1)`` and ``update(description=..., total=..., completed=..., unit=...)``.
    """
    if quiet:
        yield _NullProgress()
        return
    if not stderr_is_terminal():
        from blurtools.cli.plain_progress import PlainProgress

        yield PlainProgress(description, total, unit)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield _RichProgress(bar, task)


@contextlib.contextmanager
def file_progress(total: int, description: str, quiet: bool = False) -> Iterator[Tuple[Any, Any]]:
    """Progress of a run over ``total`` files: yields (on_done, on_window) for the library's run functions.

    Many files: the bar counts files (on_done per file). One file: the bar counts its windows instead.
    """
    single = total == 1
    # the inputs are counted before any work (never "0/?"); one image counts its windows instead
    with progress(total, description, quiet, unit="images") as bar:
        if single:
            yield None, (lambda done, windows: bar.update(total=windows, completed=done, unit="windows"))
        else:
            yield (lambda job: bar.advance()), None


def run_standalone(command: Callable[..., Any], name: str) -> None:
    """Run one command as an executable of its own (``blur-synth``, ``extract-video``...)."""
    app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                      context_settings={"help_option_names": ["-h", "--help"]})
    from blurtools.cli.entry import run_command, with_version

    app.command(name=name)(with_version(command, name))
    run_command(typer.main.get_command(app), name)


# ------------------------------------------------------------------ options derived from request objects

def option_help(field: Described, layered: bool = False) -> str:
    """The help of a request field: its own text, the accepted names when it lists them, and (for a layered
    command, whose flags default to "not given") the default the request fills in."""
    text = field.info.help
    if field.info.choices is not None:
        text = text.rstrip(".") + ": " + ", ".join(field.info.choices()) + "."
    if layered and field.info.items is None and field.default not in (None, ""):
        text = text.rstrip(".") + f" (default {describe_default(field.default)})."
    return text


def cli_type(field: Described, layered: bool = False) -> Any:
    """The Python type typer parses the field's flag as."""
    if field.info.items is not None:
        return Optional[List[str]]
    return Optional[field.kind] if (layered or field.optional) else field.kind


def typer_option(field: Described, layered: bool = False) -> Any:
    """The typer.Option of one request field (flag, short flag, metavar, help, default)."""
    if field.info.shared is not None:
        return SHARED[field.info.shared][1]
    flag = field.flag + (f"/--no-{field.flag[2:]}" if field.info.negatable else "")
    names = [flag] + ([field.info.short] if field.info.short else [])
    default = None if (layered or field.info.items is not None) else field.default
    info = typer.Option(default, *names, help=field.info.help, metavar=field.info.metavar,
                        hidden=field.info.hidden, show_default=not layered)
    if field.info.choices is not None:  # listing the choices may load torch: when the command is built, not now
        info.__class__ = _ChoicesHelp
        info.make_help = functools.partial(option_help, field, layered)
    else:
        info.help = option_help(field, layered)
    return info


class _ChoicesHelp(OptionInfo):
    """A typer option whose help (listing the accepted names) is written when typer first reads it, building
    the command: importing a command module stays light (``train --model``'s names come from the models)."""

    make_help: Callable[[], str]

    @property  # type: ignore[override]
    def help(self) -> str:
        return self.make_help()

    @help.setter
    def help(self, value: str) -> None:
        self.plain_help = value  # what typer's constructor sets: the text without the names


def cli_fields(cls: type) -> List[Described]:
    """The fields of request ``cls`` that have a flag."""
    return [f for f in described_fields(cls) if f.info.cli]


def request_parameters(cls: type, layered: bool = False) -> List[inspect.Parameter]:
    """One keyword parameter per flagged field of request ``cls``, in declaration order."""
    return [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=typer_option(f, layered),
                              annotation=SHARED[f.info.shared][0] if f.info.shared else cli_type(f, layered))
            for f in cli_fields(cls)]


def given_flags(cls: type, values: Dict[str, Any]) -> Dict[str, Any]:
    """The flags of a layered command that were given (not None), repeatable ones parsed into their value."""
    out = {}
    for f in cli_fields(cls):
        value = values.get(f.name)
        if value is None or (f.info.items is not None and not value):
            continue
        out[f.name] = f.info.items(list(value), f.flag) if f.info.items is not None else value
    return out


def with_requests(requests: Optional[Dict[str, type]] = None, *, layered: bool = False,
                  shared: Sequence[str] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command the flags of its request objects and the shared options ``shared`` (names of SHARED).

    ``requests`` maps a parameter name of the command to a request class; the command receives under that
    name the request built from its flags (``cls(**values)``, which validates itself; with ``layered``: the
    dict of the flags that were given, for a command that layers them over a file), and each shared option
    under its own name. In ``--help`` the command's own positional-or-keyword parameters (its arguments, and
    options such as ``-o`` that lead) come first, then one flag per field of each request, then its own
    keyword-only options (those after ``*``), then the shared options.
    """
    requests = dict(requests or {})

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(func)
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in inspect.signature(func).parameters.values() if p.name not in requests and p.name not in shared]
        lead = [p for p in own if p.kind is not p.KEYWORD_ONLY]
        tail = [p for p in own if p.kind is p.KEYWORD_ONLY]
        fields = {name: request_parameters(cls, layered) for name, cls in requests.items()}
        extra = [inspect.Parameter(s, inspect.Parameter.KEYWORD_ONLY, default=SHARED[s][1], annotation=SHARED[s][0])
                 for s in shared]
        params = lead + [p for group in fields.values() for p in group] + tail + extra

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            for name, cls in requests.items():
                values = {p.name: kwargs.pop(p.name) for p in fields[name]}
                kwargs[name] = given_flags(cls, values) if layered else build_request(cls, values)
            return func(**kwargs)

        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        wrapper.requests, wrapper.layered = requests, layered  # type: ignore[attr-defined]
        return wrapper

    return decorate


def build_request(cls: type, values: Dict[str, Any]) -> Any:
    """The request ``cls`` from its flags' values (repeatable flags parsed into their field's value)."""
    values = dict(values)
    for f in cli_fields(cls):
        if f.info.items is not None:
            values[f.name] = f.info.items(list(values.get(f.name) or []), f.flag)
    return cls(**values)
