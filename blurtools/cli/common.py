"""What every subcommand shares: options, error-to-exit-code mapping, progress, output.

Exit status (DESIGN.md): 0 success, 1 failure of the work, 2 usage error, 130 interrupted. A failure prints
one ``error: ...`` line on stderr; ``--debug`` (or BLURTOOLS_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import traceback
from typing import Any, Callable, Iterator, Optional

import typer

from blurtools.errors import BlurtoolsError, Interrupted, UsageError, os_reason

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

DeviceOption = typer.Option("auto", "--device", help="auto|cpu|cuda|cuda:N; auto takes the GPU when there is one.")
QuietOption = typer.Option(False, "--quiet", "-q", help="No progress bars or log lines on stderr.")
DebugOption = typer.Option(False, "--debug", help="Show the full traceback on failure.")
SeedOption = typer.Option(0, "--seed", help="Seed for every random choice (repeatable runs).")
ShardOption = typer.Option(None, "--shard", metavar="I/N", help="Process only shard I of N (0-based), to split work across machines.")


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
    """Map library exceptions to one ``error:`` line and the exit codes of DESIGN.md."""

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
        self._progress.update(self._task, **kwargs)


@contextlib.contextmanager
def progress(total: Optional[int], description: str, quiet: bool = False) -> Iterator[Any]:
    """A progress bar on stderr when it is a terminal and not ``quiet``; a no-op otherwise.

    Yields an object with ``advance(n=1)`` and ``update(description=..., total=...)``.
    """
    if quiet or not stderr_is_terminal():
        yield _NullProgress()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield _RichProgress(bar, task)


def run_standalone(command: Callable[..., Any], name: str) -> None:
    """Run one command as an executable of its own (``blur-synth``, ``extract-video``...)."""
    app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                      context_settings={"help_option_names": ["-h", "--help"]})
    app.command(name=name)(command)
    app(prog_name=name)
