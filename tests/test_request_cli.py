"""The command line is derived from the request objects: every field has exactly one flag with the field's
default and type, and every flag of a command is a field or one of the command's own few options."""

from __future__ import annotations

import dataclasses
import importlib
from typing import List

import pytest
import typer

from blurtools.cli import COMMAND_MODULES
from blurtools.cli.common import SHARED, cli_fields, given_flags, option_help
from blurtools.cli.main import app
from blurtools.request import describe_default, described_fields
from blurtools.train.config import TrainConfig, merge

# The flags a command has besides its requests' fields: (its own options, the shared options it takes).
OWN = {
    "train": ({"config", "resume"}, {"json_out", "quiet", "debug"}),
    "blur-synth": ({"sources", "output"}, {"json_out", "quiet", "debug"}),
    "phase-code": ({"sources", "output", "png"}, {"json_out", "quiet", "debug"}),
    "deblur": ({"inputs", "output"}, {"json_out", "quiet", "debug"}),
    "extract-video": ({"inputs", "output"}, {"json_out", "quiet", "debug"}),
}


def _command(name):
    return typer.main.get_command(app).commands[name]


def _requests(name):
    for mod_name in COMMAND_MODULES:
        mod = importlib.import_module(f"blurtools.cli.{mod_name}")
        if mod.COMMAND_NAME == name:
            return mod.command.requests, mod.command.layered
    raise KeyError(name)


def _check_field(f, p, layered):
    if f.info.shared:
        assert p.opts[0] == SHARED[f.info.shared][1].param_decls[0]
        assert p.default == f.default, f"{p.opts[0]}: the shared option's default is not the request's"
        return
    assert p.opts[0] == f.flag
    if f.info.items is not None:
        assert p.multiple and p.type_descriptor.annotation == List[str]
    elif f.kind is bool:
        assert p.is_flag and p.secondary_opts == ([f"--no-{f.flag[2:]}"] if f.info.negatable else [])
    else:
        assert p.type_descriptor.annotation is f.kind, f"{f.flag}: parsed as {p.type_descriptor.annotation}, the field is {f.kind}"
    if layered:
        assert p.default is None  # not given: the file layer or the request's default fills it in
        if f.info.items is None and f.default not in (None, ""):
            assert f"(default {describe_default(f.default)})" in p.help
    else:
        assert p.default == f.default, f"{f.flag}: CLI default {p.default!r}, request default {f.default!r}"
    assert p.help == option_help(f, layered)


@pytest.mark.parametrize("name", sorted(OWN))
def test_each_field_has_exactly_one_flag_with_its_default_and_type(name):
    requests, layered = _requests(name)
    params = {p.name: p for p in _command(name).params}
    flags = [opt for p in params.values() for opt in p.opts + p.secondary_opts]
    assert len(flags) == len(set(flags)), f"{name}: a flag is defined twice"
    fields = [f for cls in requests.values() for f in cli_fields(cls)]
    assert len({f.name for f in fields}) == len(fields), f"{name}: two requests share a field name"
    own, shared = OWN[name]
    assert set(params) == {f.name for f in fields} | own | shared, f"{name}: flags and request fields differ"
    for f in fields:
        _check_field(f, params[f.name], layered)


def test_train_without_flags_is_the_default_config():
    cmd = _command("train")
    assert merge(given_flags(TrainConfig, cmd.make_context("train", []).params)) == TrainConfig()
    ctx = cmd.make_context("train", ["--batch", "3", "--no-augment", "--model-arg", "width=4", "--lr", "2e-3"])
    assert merge(given_flags(TrainConfig, ctx.params)) == TrainConfig(batch=3, augment=False, model_args={"width": 4}, lr=2e-3)


def test_every_train_config_field_is_a_flag_or_a_file_only_knob():
    names = {f.name for f in described_fields(TrainConfig)}
    assert names == {f.name for f in dataclasses.fields(TrainConfig)}, "a TrainConfig field has no option() description"
    assert {f.name for f in described_fields(TrainConfig) if not f.info.cli} == {"adam_betas"}


def test_no_command_module_imports_another():
    import ast
    from pathlib import Path

    cli = Path(__file__).resolve().parents[1] / "blurtools" / "cli"
    commands = {f"blurtools.cli.{m}" for m in COMMAND_MODULES}
    found = []
    for mod in COMMAND_MODULES:
        tree = ast.parse((cli / f"{mod}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{mod} imports {n}" for n in names if n in commands and n != f"blurtools.cli.{mod}"]
    assert found == []
