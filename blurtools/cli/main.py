"""The ``blurtools`` command: one subcommand per module in this package."""

from __future__ import annotations

import typer

from blurtools import __version__

app = typer.Typer(
    name="blurtools",
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


def _register() -> None:
    # Each command module exposes COMMAND_NAME and command(), or APP (a typer group of subcommands);
    # only built commands are listed here.
    from blurtools.cli import COMMAND_MODULES
    import importlib

    for mod_name in COMMAND_MODULES:
        mod = importlib.import_module(f"blurtools.cli.{mod_name}")
        if hasattr(mod, "APP"):
            app.add_typer(mod.APP, name=mod.COMMAND_NAME)
        else:
            app.command(name=mod.COMMAND_NAME, help=mod.command.__doc__)(mod.command)


_register()


def main() -> None:
    app(prog_name="blurtools")
