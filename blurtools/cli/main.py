"""The ``blurtools`` command: one subcommand per module in this package, each imported when it is used."""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Dict, Iterator, List, MutableMapping, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from blurtools import __version__
from blurtools.cli import COMMANDS


def build_command(name: str) -> Any:
    """The click command of subcommand ``name`` (a key of :data:`blurtools.cli.COMMANDS`), from its module."""
    module = importlib.import_module(f"blurtools.cli.{COMMANDS[name]}")
    if module.COMMAND_NAME != name:
        raise RuntimeError(f"blurtools.cli.{COMMANDS[name]} names its command {module.COMMAND_NAME!r}, not {name!r}")
    if hasattr(module, "APP"):
        command = typer.main.get_command(module.APP)
    else:
        one = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        one.command(name=name, help=module.command.__doc__)(module.command)
        command = typer.main.get_command(one)
    command.name = name
    return command


class _Commands(MutableMapping):
    """{name: click command} that builds a command on first access (click reads ``group.commands``)."""

    def __init__(self) -> None:
        self._built: Dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in COMMANDS:
                raise KeyError(name)
            self._built[name] = build_command(name)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter([*COMMANDS, *(n for n in self._built if n not in COMMANDS)])

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self._built))


def command_summary(name: str) -> Any:
    """A stand-in for subcommand ``name`` that carries only its help, for the root's list of commands.

    Building a command reads its options' help, and ``train --model``'s lists the models (torch, ~2 s); the
    list needs none of that, so ``blurtools --help`` shows it from the modules' help texts alone.
    """
    module = importlib.import_module(f"blurtools.cli.{COMMANDS[name]}")
    text = module.APP.info.help if hasattr(module, "APP") else module.command.__doc__
    return TyperCommand(name, help=inspect.cleandoc(text or ""))


class LazyGroup(TyperGroup):
    """The root group: lists every command by name, imports a command's module only when it is needed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        registered = dict(self.commands)
        self.commands = _Commands()
        self.commands.update(registered)
        self._listing = False

    def list_commands(self, ctx: Any) -> List[str]:
        return list(self.commands)

    def get_command(self, ctx: Any, cmd_name: str) -> Optional[Any]:
        if self._listing and cmd_name in COMMANDS:
            return command_summary(cmd_name)
        return self.commands.get(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="blurtools",
    cls=LazyGroup,
    help="Motion-blur toolchain: synthesise blur, pack data, train, deblur, extract video, score.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"blurtools {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")) -> None:
    """Motion-blur toolchain: synthesise blur, pack data, train, deblur, extract video, score."""


def main() -> None:
    from blurtools.cli.entry import run_command

    run_command(typer.main.get_command(app), "blurtools")
