"""Start-up: a command imports only its own module, help comes without torch, the command table is whole."""

import subprocess
import sys

import pytest

from blurtools.cli import COMMANDS

_PROBE = """
import sys
from blurtools.cli.main import main
sys.argv = ["blurtools", *{args!r}]
try:
    main()
except SystemExit:
    pass
print("TORCH" if "torch" in sys.modules else "NO-TORCH", file=sys.stderr)
"""


def _loads_torch(*args):
    out = subprocess.run([sys.executable, "-c", _PROBE.format(args=list(args))], capture_output=True, text=True)
    assert out.stderr.strip().splitlines()[-1] in ("TORCH", "NO-TORCH"), out.stderr
    return out.stderr.strip().splitlines()[-1] == "TORCH", out.stdout


def test_root_help_lists_every_command_without_loading_torch():
    torch_loaded, text = _loads_torch("--help")
    assert not torch_loaded
    for name in COMMANDS:
        assert f" {name} " in text


@pytest.mark.parametrize("name", [n for n in COMMANDS if n != "train"])
def test_command_help_without_torch(name):
    """Only ``train --help`` needs torch: it lists the models, which the model registry knows."""
    torch_loaded, text = _loads_torch(name, "--help")
    assert not torch_loaded and "Usage:" in text


def test_every_command_module_imports_without_torch():
    modules = ", ".join(f"blurtools.cli.{m}" for m in COMMANDS.values())
    code = f"import sys, {modules}; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_the_lazy_command_table_names_every_module_and_its_summary_matches():
    import importlib

    import typer

    from blurtools.cli.main import app, command_summary

    group = typer.main.get_command(app)
    assert list(group.commands) == list(COMMANDS)
    for name, module in COMMANDS.items():
        assert importlib.import_module(f"blurtools.cli.{module}").COMMAND_NAME == name
        built = group.get_command(None, name)
        assert built.name == name
        assert command_summary(name).help == built.help
    assert group.get_command(None, "no-such-command") is None


def test_train_help_still_lists_the_models():
    from typer.testing import CliRunner

    from blurtools.cli.main import app
    from blurtools.train.recipes import trainable_names

    text = " ".join(CliRunner().invoke(app, ["train", "--help"], terminal_width=200).output.split())
    assert all(name in text for name in trainable_names())
